"""xTB structures -> neighbour graphs, the per-element reference energies and the energy scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from chemzoo.potentials.datasets import load_dataset
from chemzoo.potentials.graph import build_graph, collate
from training.common import ShardedDataModule


class Structures(Dataset):
    """(graph, energy eV, forces eV/Å) for every structure of one split, graphs built once."""

    def __init__(self, data: dict[str, np.ndarray], split: str, cutoff: float, limit: int | None = None, seed: int = 0):
        starts = np.concatenate([[0], np.cumsum(data["n_atoms"])])
        index = np.flatnonzero(data["split"] == split)
        if limit is not None and limit < len(index):
            index = np.sort(np.random.default_rng(seed).permutation(index)[:limit])
        self.items = []
        for k in tqdm(index, desc=f"graphs ({split})", mininterval=2, disable=len(index) < 5000):
            a, b = starts[k], starts[k + 1]
            graph = build_graph(data["numbers"][a:b].astype(np.int64), data["positions"][a:b], cutoff)
            self.items.append((graph, torch.tensor(data["energy"][k], dtype=torch.float32),
                               torch.as_tensor(data["forces"][a:b], dtype=torch.float32)))
        self.molecules = np.unique(data["mol_index"][index])

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def collate_structures(items):
    graphs, energies, forces = zip(*items)
    return collate(list(graphs)), torch.stack(energies), torch.cat(forces)


def fit_reference_energies(structures: Structures, elements: list[int]) -> tuple[list[float], float]:
    """Least-squares per-element energies (eV) from composition, and the force RMS (eV/Å) as energy scale."""
    column = {z: c for c, z in enumerate(elements)}
    counts = np.zeros((len(structures), len(elements)))
    energies = np.zeros(len(structures))
    force_sq, n_force = 0.0, 0
    for row, (graph, energy, forces) in enumerate(structures.items):
        for z in graph.numbers.tolist():
            counts[row, column[z]] += 1
        energies[row] = float(energy)
        force_sq, n_force = force_sq + float(forces.pow(2).sum()), n_force + forces.numel()
    ref, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    return ref.tolist(), float(np.sqrt(force_sq / n_force))


def closest_contacts(structures: Structures) -> dict[str, float]:
    """The shortest distance (Å) of every element pair ("C-H", symbols sorted) among the structures' edges."""
    from ase.data import chemical_symbols

    best = np.full(119 * 119, np.inf)  # by lo * 119 + hi of the two atomic numbers
    for graph, _, _ in structures.items:
        i, j = graph.edge_index
        d = (graph.positions[j] - graph.positions[i] + graph.shifts).norm(dim=1).numpy()
        zi, zj = graph.numbers[i].numpy(), graph.numbers[j].numpy()
        np.minimum.at(best, np.minimum(zi, zj) * 119 + np.maximum(zi, zj), d)
    return {"-".join(sorted((chemical_symbols[code // 119], chemical_symbols[code % 119]))): round(float(best[code]), 4)
            for code in np.flatnonzero(np.isfinite(best))}


def load_datasets(folders: list[Path]) -> dict[str, np.ndarray]:
    """Several dataset folders as one. They must split molecules alike (builds of one ``--seed`` do): a molecule
    in the train split of one and the test split of another would leak."""
    parts = [load_dataset(f) for f in folders]
    data = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    split_of = {}
    for m, s in zip(data["mol_index"].tolist(), data["split"].tolist()):
        if split_of.setdefault(m, s) != s:
            raise ValueError(f"molecule {m} is in the {split_of[m]} split of one folder and the {s} split of another "
                             f"({', '.join(map(str, folders))}): build them with the same --seed")
    return data


class PotentialDataModule(ShardedDataModule):
    def __init__(self, folders: list[Path], cutoff: float, n_train: int | None, batch_size: int, seed: int):
        super().__init__(batch_size, seed, collate_structures)
        data = load_datasets(folders)
        self.train_set = Structures(data, "train", cutoff, limit=n_train, seed=seed)
        self.val_set = Structures(data, "val", cutoff)
        self.test_set = Structures(data, "test", cutoff)
        assert not set(self.train_set.molecules) & set(self.test_set.molecules), "a molecule in two splits"
