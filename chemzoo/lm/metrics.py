"""Generation metrics as MOSES defines them: validity, unique@k, novelty, internal diversity."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator


def validity(smiles: Sequence[str | None]) -> float:
    """Fraction of samples that are valid molecules (canonical SMILES not None)."""
    return sum(s is not None for s in smiles) / max(len(smiles), 1)


def uniqueness(smiles: Sequence[str | None], k: int | None = None) -> float:
    """unique@k: distinct valid molecules among the first k samples' valid ones, over their number."""
    valid = [s for s in smiles[:k] if s is not None]
    return len(set(valid)) / max(len(valid), 1)


def novelty(smiles: Sequence[str | None], in_training_set: Callable[[list[str]], np.ndarray]) -> float:
    """Fraction of distinct valid molecules not in the training set (MOSES: over unique valid)."""
    unique = sorted({s for s in smiles if s is not None})
    if not unique:
        return 0.0
    return float(1.0 - np.mean(in_training_set(unique)))


def morgan_fingerprints(smiles: Sequence[str], radius: int = 2, n_bits: int = 1024) -> np.ndarray:
    """Morgan bit vectors (MOSES: radius 2, 1024 bits) as a (n, n_bits) uint8 array."""
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
    out = np.zeros((len(smiles), n_bits), dtype=np.uint8)
    for i, s in enumerate(smiles):
        DataStructs.ConvertToNumpyArray(gen.GetFingerprint(Chem.MolFromSmiles(s)), out[i])
    return out


def internal_diversity(smiles: Sequence[str | None], chunk: int = 2048) -> float:
    """IntDiv1 = 1 - mean Tanimoto similarity over all pairs of valid samples (self-pairs included, as MOSES)."""
    valid = [s for s in smiles if s is not None]
    if not valid:
        return 0.0
    fps = morgan_fingerprints(valid).astype(np.float32)
    counts = fps.sum(1)
    total = 0.0
    for start in range(0, len(fps), chunk):
        inter = fps[start : start + chunk] @ fps.T
        union = counts[start : start + chunk, None] + counts[None, :] - inter
        total += np.where(union > 0, inter / np.maximum(union, 1), 1.0).sum()
    return float(1.0 - total / len(fps) ** 2)


def summarize(smiles: Sequence[str | None], in_training_set: Callable[[list[str]], np.ndarray] | None = None) -> dict:
    """validity, uniqueness (unique@len), novelty (when the training set is known), IntDiv1."""
    out = {"n": len(smiles), "validity": validity(smiles), "uniqueness": uniqueness(smiles)}
    if in_training_set is not None:
        out["novelty"] = novelty(smiles, in_training_set)
    out["intdiv"] = internal_diversity(smiles)
    return out
