"""Neighbour graphs from vesin: the step before a potential, not inside it (positions in Å).

A graph is the edge list (i, j) of pairs closer than the cutoff, each with the periodic shift of
``j`` (a Cartesian vector in Å, zero for molecules), so that ``r_ij = r_j - r_i + shift``.
Gradients flow through positions (and a strain, for stress); edges are fixed per geometry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from vesin import NeighborList


@dataclass
class Graph:
    """One or several structures batched together.

    numbers (N,), positions (N, 3) Å, edge_index (2, E), shifts (E, 3) Å, batch (N,) structure index,
    cell (S, 3, 3) Å (zeros for molecules), n_structures S.
    """

    numbers: torch.Tensor
    positions: torch.Tensor
    edge_index: torch.Tensor
    shifts: torch.Tensor
    batch: torch.Tensor
    cell: torch.Tensor
    n_structures: int

    def to(self, device=None, dtype=None) -> "Graph":
        f = dict(device=device, dtype=dtype)
        return Graph(self.numbers.to(device), self.positions.to(**f), self.edge_index.to(device), self.shifts.to(**f),
                     self.batch.to(device), self.cell.to(**f), self.n_structures)


def neighbour_pairs(positions: np.ndarray, cutoff: float, cell: np.ndarray | None = None,
                    pbc: np.ndarray | bool = False) -> tuple[np.ndarray, np.ndarray]:
    """All ordered pairs (i, j), i != j or periodic images, within ``cutoff`` Å, and integer cell shifts."""
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    box = np.zeros((3, 3)) if cell is None or not pbc.any() else np.asarray(cell, dtype=np.float64)
    if not pbc.any():
        pbc = np.zeros(3, dtype=bool)
    nl = NeighborList(cutoff=cutoff, full_list=True)
    i, j, s = nl.compute(points=positions, box=box, periodic=pbc, quantities="ijS")
    return np.stack([i, j]).astype(np.int64), s.astype(np.float64)


def build_graph(numbers, positions, cutoff: float, cell=None, pbc=False, dtype=torch.float32,
                neighbours: tuple[np.ndarray, np.ndarray] | None = None) -> Graph:
    """The graph of one structure (numbers, positions in Å, optional cell and pbc); ``neighbours``: the
    output of ``neighbour_pairs`` at exactly this ``cutoff``, when already at hand."""
    positions = np.asarray(positions, dtype=np.float64)
    edges, int_shifts = neighbours or neighbour_pairs(positions, cutoff, cell, pbc)
    box = np.zeros((3, 3)) if cell is None else np.asarray(cell, dtype=np.float64)
    return Graph(
        numbers=torch.as_tensor(np.asarray(numbers), dtype=torch.long),
        positions=torch.as_tensor(positions, dtype=dtype),
        edge_index=torch.as_tensor(edges),
        shifts=torch.as_tensor(int_shifts @ box, dtype=dtype),
        batch=torch.zeros(len(positions), dtype=torch.long),
        cell=torch.as_tensor(box, dtype=dtype)[None],
        n_structures=1,
    )


def collate(graphs: list[Graph]) -> Graph:
    """Batch graphs into one (node indices of later graphs are offset)."""
    offsets = np.cumsum([0] + [len(g.numbers) for g in graphs[:-1]])
    return Graph(
        numbers=torch.cat([g.numbers for g in graphs]),
        positions=torch.cat([g.positions for g in graphs]),
        edge_index=torch.cat([g.edge_index + int(o) for g, o in zip(graphs, offsets)], dim=1),
        shifts=torch.cat([g.shifts for g in graphs]),
        batch=torch.cat([torch.full((len(g.numbers),), k, dtype=torch.long) for k, g in enumerate(graphs)]),
        cell=torch.cat([g.cell for g in graphs]),
        n_structures=len(graphs),
    )
