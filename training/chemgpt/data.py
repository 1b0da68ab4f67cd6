"""ChemGPT training data: MOSES SMILES -> SELFIES -> token ids, and a resumable data module.

Training molecules are a seeded random subset of MOSES train (the first ``n_train`` of a seeded
permutation, so a larger subset contains every smaller one); validation molecules a seeded subset
of MOSES test. A run continued from a checkpoint trained on the first ``skip`` molecules trains on
the next ``n_train - skip`` of the same permutation.

Batches are drawn from a permutation fixed by (seed, epoch) and sharded
by rank, so a run resumed mid-epoch sees exactly the batches the uninterrupted run would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import selfies as sf
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from chemzoo.lm.tokenizer import PAD_ID, encode
from training import moses
from training.common import ShardedDataModule


@dataclass
class Corpus:
    """``train_smiles``: every molecule the model has been trained on (novelty is measured against it);
    ``train_selfies``: the molecules this run trains on (all of them unless it continues a checkpoint)."""

    train_smiles: list[str]
    train_selfies: list[str]
    val_selfies: list[str]


def _subset(smiles: list[str], n: int, seed: int, skip: int = 0) -> list[str]:
    """Molecules ``skip`` to ``n`` of a seeded permutation, in file order."""
    if n > len(smiles):
        raise ValueError(f"asked for {n} molecules but the split has {len(smiles)}")
    idx = np.random.default_rng(seed).permutation(len(smiles))[skip:n]
    return [smiles[i] for i in sorted(idx)]


def _to_selfies(smiles: list[str], what: str) -> list[str]:
    return [sf.encoder(s, strict=True) for s in tqdm(smiles, desc=f"SMILES -> SELFIES ({what})", mininterval=2)]


def load_corpus(n_train: int, n_val: int, seed: int, cache: Path | None = None, skip: int = 0) -> Corpus:
    """A seeded MOSES subset as SELFIES, cached as text files next to the molsets wheel. With ``skip``
    (the molecules a continued checkpoint was trained on), this run's SELFIES are molecules ``skip`` to
    ``n_train`` of the permutation, while ``train_smiles`` holds all ``n_train``."""
    if not 0 <= skip < n_train:
        raise ValueError(f"a run continuing a checkpoint trained on {skip} molecules needs n_train > {skip}, got {n_train}")
    cache = cache or moses.default_cache()
    out = cache / (f"chemgpt-moses-n{n_train}-v{n_val}-seed{seed}" + (f"-skip{skip}" if skip else ""))
    files = {k: out / f"{k}.txt" for k in ("train_smiles", "train_selfies", "val_selfies")}
    if not all(f.exists() for f in files.values()):
        all_train = moses.read_smiles("train", cache)
        train = _subset(all_train, n_train, seed)
        new = _subset(all_train, n_train, seed, skip) if skip else train
        val = _subset(moses.read_smiles("test", cache), n_val, seed)
        texts = {"train_smiles": train, "train_selfies": _to_selfies(new, "train"), "val_selfies": _to_selfies(val, "val")}
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


class ChemGPTDataModule(ShardedDataModule):
    def __init__(self, corpus: Corpus, tokenizer, batch_size: int, seed: int):
        super().__init__(batch_size, seed, pad_batch)
        self.corpus, self.tokenizer = corpus, tokenizer

    def setup(self, stage: str) -> None:
        if not hasattr(self, "train_set"):
            self.train_set = TokenizedMolecules(self.corpus.train_selfies, self.tokenizer)
            self.val_set = TokenizedMolecules(self.corpus.val_selfies, self.tokenizer)
