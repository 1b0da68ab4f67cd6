"""Log-likelihood of molecules under a ChemGPT (nats, and nats per token).

Each SMILES is canonicalized by RDKit, written as SELFIES and scored as ``[CLS] ... [SEP]``; the
likelihood covers every predicted token including the closing ``[SEP]``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from chemzoo.errors import InvalidMoleculeError, InvalidSettingError
from chemzoo.lm.model import ChemGPT
from chemzoo.lm.molecules import canonical_smiles, smiles_to_selfies
from chemzoo.lm.tokenizer import CLS_ID, PAD_ID, SEP_ID, out_of_vocabulary


@dataclass
class Score:
    """One molecule's score; ``error`` is set (and the numbers are None) when it could not be scored."""

    smiles: str
    selfies: str | None = None
    log_likelihood: float | None = None  # nats
    num_tokens: int | None = None
    error: str | None = None
    n_unk: int = 0  # SELFIES symbols outside the model's vocabulary, scored as [UNK]

    @property
    def log_likelihood_per_token(self) -> float | None:
        return None if self.log_likelihood is None else self.log_likelihood / self.num_tokens


@torch.inference_mode()
def _batch_log_likelihood(model, ids: list[list[int]]) -> list[float]:
    x = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in ids], batch_first=True, padding_value=PAD_ID)
    mask = x != PAD_ID
    for i, s in enumerate(ids):  # a real [PAD] inside a sequence is impossible: ids come from the tokenizer
        mask[i, len(s):] = False
    logits = model(input_ids=x.to(model.device), attention_mask=mask.long().to(model.device)).logits.float()
    logp = -F.cross_entropy(logits[:, :-1].transpose(1, 2), x[:, 1:].to(model.device), reduction="none")
    return (logp * mask[:, 1:].to(logp.device)).sum(1).tolist()


def sequence_log_likelihood(chemgpt: ChemGPT, sequences: list[list[int]], batch_size: int = 256) -> list[float]:
    """Log-likelihood (nats) under the model (temperature 1, no truncation of the distribution) of token
    sequences as sampled (ids without [CLS]/[SEP], e.g. ``sample_tokens``'s): ``[CLS] ids [SEP]``, or
    ``[CLS] ids`` for a sequence cut at the model's length."""
    max_positions = chemgpt.model.config.max_position_embeddings
    wrapped = [[CLS_ID, *ids, SEP_ID][:max_positions] for ids in sequences]
    order = sorted(range(len(wrapped)), key=lambda k: len(wrapped[k]))  # similar lengths together
    out = [0.0] * len(wrapped)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        for k, ll in zip(chunk, _batch_log_likelihood(chemgpt.model, [wrapped[k] for k in chunk])):
            out[k] = ll
    return out


def score(chemgpt: ChemGPT, smiles: list[str], batch_size: int = 256, progress: bool = False,
          strip_stereo: bool = False) -> list[Score]:
    """Score every SMILES; invalid ones come back with ``error`` set instead of raising.

    SELFIES symbols outside the vocabulary are scored as ``[UNK]`` (counted in ``n_unk``) and a warning
    names them; a molecule longer than the model's positions comes back with ``error`` set.
    ``strip_stereo`` scores the flat graph (stereocentres and double-bond geometry dropped), for models
    whose vocabulary has no stereo symbols (MOSES has none).
    """
    if isinstance(smiles, str):
        raise TypeError("score() takes a list of SMILES; for one molecule use score(model, [smiles])")
    if batch_size < 1:
        raise InvalidSettingError(f"batch_size must be a positive integer, got {batch_size!r}")
    max_positions = chemgpt.model.config.max_position_embeddings
    rows = [Score(s) for s in smiles]
    todo: list[tuple[Score, list[int]]] = []
    unknown: set[str] = set()
    for row in rows:
        try:
            canonical = canonical_smiles(row.smiles, isomeric=not strip_stereo)
            if canonical is None:
                raise InvalidMoleculeError(f"invalid SMILES {row.smiles!r}")
            row.selfies = smiles_to_selfies(canonical)
        except InvalidMoleculeError as exc:
            row.error = str(exc)
            continue
        ids = chemgpt.tokenizer(row.selfies)["input_ids"]
        if len(ids) > max_positions:
            row.error = (f"{len(ids)} tokens, longer than the {max_positions} positions {chemgpt.name} was built "
                         "for; not scored")
            continue
        oov = out_of_vocabulary(chemgpt.tokenizer, row.selfies)
        row.n_unk = len(oov)
        unknown.update(oov)
        todo.append((row, ids))
    if unknown:
        stereo = any("@" in sym or sym.startswith(("[/", "[\\")) for sym in unknown)  # chirality, E/Z bonds
        advice = "; score the flat graph with strip_stereo=True (--strip-stereo)" if stereo else ""
        warnings.warn(f"SELFIES symbols not in {chemgpt.name}'s vocabulary: {', '.join(sorted(unknown))}; "
                      f"they were scored as [UNK] (counted per molecule in n_unk){advice}", stacklevel=2)
    todo.sort(key=lambda t: len(t[1]))  # similar lengths together: less padding
    for start in tqdm(range(0, len(todo), batch_size), desc="scoring", unit="batch", disable=not progress):
        chunk = todo[start : start + batch_size]
        for (row, ids), ll in zip(chunk, _batch_log_likelihood(chemgpt.model, [ids for _, ids in chunk])):
            row.log_likelihood, row.num_tokens = ll, len(ids) - 1
    return rows
