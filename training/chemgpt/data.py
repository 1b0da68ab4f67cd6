"""ChemGPT training data: MOSES SMILES -> SELFIES -> token ids, and a resumable data module.

Training molecules are a seeded random subset of MOSES train; validation molecules a seeded
subset of MOSES test. Batches are drawn from a permutation fixed by (seed, epoch) and sharded
by rank, so a run resumed mid-epoch sees exactly the batches the uninterrupted run would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import selfies as sf
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from chemzoo.lm.tokenizer import PAD_ID, encode
from training import moses


@dataclass
class Corpus:
    train_smiles: list[str]
    train_selfies: list[str]
    val_selfies: list[str]


def _subset(smiles: list[str], n: int, seed: int) -> list[str]:
    if n > len(smiles):
        raise ValueError(f"asked for {n} molecules but the split has {len(smiles)}")
    idx = np.random.default_rng(seed).permutation(len(smiles))[:n]
    return [smiles[i] for i in sorted(idx)]


def _to_selfies(smiles: list[str], what: str) -> list[str]:
    return [sf.encoder(s, strict=True) for s in tqdm(smiles, desc=f"SMILES -> SELFIES ({what})", mininterval=2)]


def load_corpus(n_train: int, n_val: int, seed: int, cache: Path | None = None) -> Corpus:
    """A seeded MOSES subset as SELFIES, cached as text files next to the molsets wheel."""
    cache = cache or moses.default_cache()
    out = cache / f"chemgpt-moses-n{n_train}-v{n_val}-seed{seed}"
    files = {k: out / f"{k}.txt" for k in ("train_smiles", "train_selfies", "val_selfies")}
    if not all(f.exists() for f in files.values()):
        train = _subset(moses.read_smiles("train", cache), n_train, seed)
        val = _subset(moses.read_smiles("test", cache), n_val, seed)
        texts = {"train_smiles": train, "train_selfies": _to_selfies(train, "train"), "val_selfies": _to_selfies(val, "val")}
        out.mkdir(parents=True, exist_ok=True)
        for k, f in files.items():
            tmp = f.with_suffix(".tmp")
            tmp.write_text("\n".join(texts[k]) + "\n")
            tmp.replace(f)
    read = {k: f.read_text().split("\n")[:-1] for k, f in files.items()}
    return Corpus(**read)


class TokenizedMolecules(Dataset):
    """Token ids ``[CLS] ... [SEP]`` of SELFIES strings; unknown symbols are an error here."""

    def __init__(self, selfies: list[str], tokenizer):
        self.ids = [torch.tensor(encode(tokenizer, s, strict=True)) for s in tqdm(selfies, desc="tokenizing", mininterval=2)]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.ids[i]


def pad_batch(seqs: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Right-pad with [PAD]; labels are -100 on padding so the loss ignores it."""
    ids = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True, padding_value=PAD_ID)
    mask = torch.nn.utils.rnn.pad_sequence([torch.ones_like(s) for s in seqs], batch_first=True)
    labels = ids.masked_fill(mask == 0, -100)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


class EpochBatchSampler:
    """Batches of a (seed, epoch) permutation, this rank's shard, skipping batches already trained on."""

    def __init__(self, n, batch_size, seed, rank=0, world_size=1, shuffle=True, epoch=lambda: 0):
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.epoch, self.skip = epoch, 0  # epoch: a callable giving the current epoch

    def __len__(self) -> int:
        per_rank = self.n // self.world_size if self.shuffle else -(-self.n // self.world_size)
        return per_rank // self.batch_size if self.shuffle else -(-per_rank // self.batch_size)

    def __iter__(self):
        if self.shuffle:  # equal whole batches on every rank (DDP needs the same step count)
            order = np.random.default_rng([self.seed, self.epoch()]).permutation(self.n)
            order = order[: len(self) * self.batch_size * self.world_size]
        else:
            order = np.arange(self.n)
        shard = order[self.rank :: self.world_size]
        skip, self.skip = self.skip, 0
        for b in range(skip, len(self)):
            yield shard[b * self.batch_size : (b + 1) * self.batch_size].tolist()


class ResumableLoader(DataLoader):
    """A DataLoader whose position inside the epoch is saved in Lightning checkpoints.

    ``progress`` returns (epoch, batches completed in it); on load, the sampler skips those.
    """

    def __init__(self, dataset, batch_sampler: EpochBatchSampler, progress):
        super().__init__(dataset, batch_sampler=batch_sampler, collate_fn=pad_batch)
        self.progress = progress

    def state_dict(self) -> dict:
        epoch, done = self.progress()
        return {"epoch": epoch, "batches_done": done}

    def load_state_dict(self, state: dict) -> None:
        self.batch_sampler.skip = state["batches_done"] % max(len(self.batch_sampler), 1)


class ChemGPTDataModule(L.LightningDataModule):
    def __init__(self, corpus: Corpus, tokenizer, batch_size: int, seed: int):
        super().__init__()
        self.corpus, self.tokenizer, self.batch_size, self.seed = corpus, tokenizer, batch_size, seed

    def setup(self, stage: str) -> None:
        if not hasattr(self, "train_set"):
            self.train_set = TokenizedMolecules(self.corpus.train_selfies, self.tokenizer)
            self.val_set = TokenizedMolecules(self.corpus.val_selfies, self.tokenizer)

    def _rank(self) -> tuple[int, int]:
        return (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)

    def _progress(self) -> tuple[int, int]:
        loop = self.trainer.fit_loop.epoch_loop
        return self.trainer.current_epoch, loop.batch_progress.current.processed

    def train_dataloader(self) -> ResumableLoader:
        rank, world = self._rank()
        epoch = (lambda: self.trainer.current_epoch) if self.trainer else (lambda: 0)
        sampler = EpochBatchSampler(len(self.train_set), self.batch_size, self.seed, rank, world, epoch=epoch)
        return ResumableLoader(self.train_set, sampler, self._progress)

    def val_dataloader(self) -> DataLoader:
        rank, world = self._rank()
        sampler = EpochBatchSampler(len(self.val_set), self.batch_size * 2, self.seed, rank, world, shuffle=False)
        return DataLoader(self.val_set, batch_sampler=sampler, collate_fn=pad_batch)
