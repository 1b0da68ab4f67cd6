"""chemzoo's labelled-structure datasets: reading them (building them is ``training/potentials/dataset.py``).

A dataset is a folder of ``chunk-NNNNN.npz`` files (and a ``README.md`` card), concatenated on load. Per
structure (S): ``mol_index``, ``split`` ("train" / "val" / "test", by molecule), ``n_atoms``, ``energy``
(eV), ``temperature`` (K, the recipe's nominal one); per atom over all structures (A): ``numbers``,
``positions`` (Å), ``forces`` (eV/Å). The xTB MOSES builds, their packed ladder subsets and the
out-of-distribution drug set (``tests/data/xtb-drugs-ood``) all read this way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from chemzoo.errors import ChemzooError

SPLITS = ("train", "val", "test")


def load_dataset(folder: str | Path) -> dict[str, np.ndarray]:
    """All chunks of a dataset folder concatenated (positions Å, energy eV, forces eV/Å)."""
    parts = [np.load(p) for p in sorted(Path(folder).glob("chunk-*.npz")) if ".tmp" not in p.name]
    if not parts:
        raise ChemzooError(f"no chunk-*.npz in {folder}: not a chemzoo dataset folder")
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0].files}


def atom_offsets(data: dict[str, np.ndarray]) -> np.ndarray:
    """(S + 1,) where each structure's atoms start in the per-atom arrays (the last entry: all atoms)."""
    return np.concatenate([[0], np.cumsum(data["n_atoms"])])


def structure(data: dict[str, np.ndarray], k: int, offsets: np.ndarray | None = None, labels: bool = True) -> Atoms:
    """Structure ``k`` as ASE ``Atoms`` (Å); with ``labels`` its reference energy (eV) and forces (eV/Å) as a
    single-point calculator, and ``info`` ``mol_index``, ``split``."""
    offsets = atom_offsets(data) if offsets is None else offsets
    a, b = int(offsets[k]), int(offsets[k + 1])
    atoms = Atoms(numbers=data["numbers"][a:b].astype(int), positions=data["positions"][a:b])
    atoms.info.update(mol_index=int(data["mol_index"][k]), split=str(data["split"][k]))
    if labels:
        atoms.calc = SinglePointCalculator(atoms, energy=float(data["energy"][k]), forces=data["forces"][a:b].copy())
    return atoms


def structures(data: dict[str, np.ndarray], indices=None, labels: bool = True) -> list[Atoms]:
    """``structure`` of each index (default: all), sharing one offset table."""
    offsets = atom_offsets(data)
    indices = range(len(data["n_atoms"])) if indices is None else indices
    return [structure(data, int(k), offsets, labels) for k in indices]


def split_indices(data: dict[str, np.ndarray], split: str) -> np.ndarray:
    """Indices of the structures of one split."""
    if split not in SPLITS:
        raise ChemzooError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    return np.flatnonzero(data["split"] == split)


def first_of_each_molecule(data: dict[str, np.ndarray], split: str) -> np.ndarray:
    """Index of the first structure of every molecule of a split, in molecule order."""
    rows = split_indices(data, split)
    _, first = np.unique(data["mol_index"][rows], return_index=True)
    return rows[first]


def label_errors(calc, data: dict[str, np.ndarray], indices, batch_size: int = 32) -> dict:
    """A potential's (``chemzoo.calculator``) energy MAE (meV/atom: each structure's error over its atoms) and
    force MAE (meV/Å, over Cartesian components) against the labels of structures ``indices``."""
    indices = np.asarray(indices, dtype=int)
    if not len(indices):
        return {"energy_mae_meV_per_atom": None, "force_mae_meV_per_A": None, "n_structures": 0, "n_atoms": 0}
    frames = structures(data, indices, labels=False)
    results = calc.evaluate(frames, batch_size=batch_size)
    offsets = atom_offsets(data)
    e_err = [abs(r["energy"] - data["energy"][k]) / len(a) for r, k, a in zip(results, indices, frames)]
    f_err = np.concatenate([np.abs(r["forces"] - data["forces"][offsets[k]:offsets[k + 1]]).ravel()
                            for r, k in zip(results, indices)])
    return {"energy_mae_meV_per_atom": 1000 * float(np.mean(e_err)), "force_mae_meV_per_A": 1000 * float(f_err.mean()),
            "n_structures": len(indices), "n_atoms": int(data["n_atoms"][indices].sum())}
