"""PyTorch Geometric in: chemzoo potentials take PyG ``Data`` / ``Batch`` objects, for inference and training.

A PyG structure holds ``z`` (N,) atomic numbers and ``pos`` (N, 3) in Å; a ``Batch`` adds ``batch`` (N,);
periodic ones add ``cell`` (3, 3) Å per structure (a batch: (S, 3, 3)) and ``pbc`` (3,) per structure. For
training, labels as PyG's MD17 names them: ``energy`` (eV, one per structure; ``y`` is read when there is no
``energy``) and ``force`` or ``forces`` (N, 3) eV/Å. Edges are always rebuilt (vesin) at the potential's own
cutoff: an ``edge_index`` made for another model or cutoff is never used.
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from chemzoo.errors import ChemzooError
from chemzoo.potentials.graph import Graph, build_graph, collate


def is_pyg(data) -> bool:
    """Is ``data`` a PyG ``Data`` / ``Batch``? (One can exist only once torch_geometric is imported: it is
    never imported here.)"""
    module = sys.modules.get("torch_geometric.data")
    return module is not None and isinstance(data, module.data.BaseData)


def graph_from_pyg(data, cutoff: float) -> Graph:
    """chemzoo's graph of a PyG ``Data`` or ``Batch`` (neighbours within ``cutoff`` Å, periodic where ``pbc``)."""
    z, pos = getattr(data, "z", None), getattr(data, "pos", None)
    if z is None or pos is None:
        raise ChemzooError("a PyG structure for a chemzoo potential needs `z` (atomic numbers) and `pos` (Å)")
    n_structures = int(getattr(data, "num_graphs", 1) or 1)
    batch = getattr(data, "batch", None)
    if batch is None:
        batch = torch.zeros(len(z), dtype=torch.long, device=z.device)
    cell, pbc = getattr(data, "cell", None), getattr(data, "pbc", None)
    cells = None if cell is None else cell.detach().cpu().double().numpy().reshape(n_structures, 3, 3)
    pbcs = np.zeros((n_structures, 3), dtype=bool) if pbc is None else pbc.cpu().numpy().reshape(n_structures, 3)
    numbers, positions = z.detach().cpu().numpy(), pos.detach().cpu().double().numpy()
    owner = batch.cpu().numpy()
    graphs = []
    for s in range(n_structures):
        rows = np.flatnonzero(owner == s)
        graphs.append(build_graph(numbers[rows], positions[rows], cutoff, None if cells is None else cells[s],
                                  pbcs[s], dtype=pos.dtype))
    return (graphs[0] if n_structures == 1 else collate(graphs)).to(device=pos.device)


def labels_from_pyg(data) -> tuple[torch.Tensor, torch.Tensor]:
    """(energy (S,) eV, forces (N, 3) eV/Å) of a PyG ``Data`` / ``Batch`` (MD17 names: ``energy``, ``force``)."""
    energy = getattr(data, "energy", None)
    if energy is None:
        energy = getattr(data, "y", None)
    forces = getattr(data, "force", None)
    if forces is None:
        forces = getattr(data, "forces", None)
    if energy is None or forces is None:
        raise ChemzooError("a PyG structure for training needs `energy` (or `y`, eV) and `force` (or `forces`, eV/Å)")
    return energy.reshape(-1), forces.reshape(-1, 3)
