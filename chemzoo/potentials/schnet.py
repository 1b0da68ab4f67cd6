"""SchNet (Schütt et al. 2018): invariant continuous-filter convolutions over interatomic distances."""

from __future__ import annotations

import torch
from torch import nn

from chemzoo.potentials.layers import BesselBasis, PolynomialCutoff, ShiftedSoftplus, edge_blocks, ssp_mlp
from chemzoo.potentials.schnet_fused import FusedSchNet, Plan


class Interaction(nn.Module):
    def __init__(self, features: int, num_basis: int):
        super().__init__()
        self.filter = nn.Sequential(nn.Linear(num_basis, features), ShiftedSoftplus(), nn.Linear(features, features))
        self.in2f = nn.Linear(features, features, bias=False)
        self.f2out = nn.Sequential(nn.Linear(features, features), ShiftedSoftplus(), nn.Linear(features, features))


    def forward(self, h, blocks, both_ways: bool = False):
        """blocks: (rbf, envelope, i, j) per block of edges. ``both_ways``: each edge stands for the pair,
        so its filter (a function of the distance only) serves the messages j -> i and i -> j."""
        x, out = self.in2f(h), h.new_zeros(h.shape)
        for rbf, envelope, i, j in blocks:
            w = ssp_mlp(rbf, self.filter) * envelope[:, None]
            out.index_add_(0, i, x.index_select(0, j) * w)  # in place: no copy of the node features per block
            if both_ways:
                out.index_add_(0, j, x.index_select(0, i) * w)
        return ssp_mlp(out, self.f2out)


class SchNet(nn.Module):
    """Per-atom energies (N,) from atomic numbers and edge vectors; invariant by construction.

    ``fused``: inference through the hand-written backward (``schnet_fused``), switched on by
    ``Potential.frozen()``; it also needs eval mode and frozen parameters, else autograd is used.
    ``tabulated_filters``: whether that path looks its filters up in tables (``filter_table``, error below
    float32 rounding); None (the default) does so in float32 only, True or False always or never."""

    fused = False
    tabulated_filters: bool | None = None  # the fused path's filter tables: None = in float32 only

    def __init__(self, num_elements: int = 36, features: int = 128, interactions: int = 6, cutoff: float = 5.0,
                 num_basis: int = 20):
        super().__init__()
        self.embedding = nn.Embedding(num_elements, features)
        self.rbf, self.envelope = BesselBasis(cutoff, num_basis), PolynomialCutoff(cutoff)
        self.interactions = nn.ModuleList(Interaction(features, num_basis) for _ in range(interactions))
        self.readout = nn.Sequential(nn.Linear(features, features // 2), ShiftedSoftplus(), nn.Linear(features // 2, 1))

    def pair_edges(self, edge_index: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
        """Indices of one edge per atom pair of a full neighbour list (``one_per_pair``). ``Potential``
        passes SchNet only these: each filter is computed once per pair and its messages go both ways."""
        return one_per_pair(shifts, *edge_index).nonzero().squeeze(1)

    def forward(self, species, vectors, lengths, edge_index, pairs: bool = False):
        """A full neighbour list (every directed edge), or with ``pairs=True`` one edge per atom pair
        (``pair_edges``, what ``Potential`` passes) whose message goes both ways: the filter network is most
        of SchNet's cost, so this nearly halves it. Both give the same numbers for their own edge lists."""
        i, j = edge_index
        if pairs and self.fused and not self.training:
            plan = Plan.of(self)
            if plan is not None:  # inference (eval mode, frozen parameters): the hand-written backward
                return FusedSchNet.apply(lengths, self, plan, species, i, j)
        h = self.embedding(species)
        blocks = [(self.rbf(lengths[b]), self.envelope(lengths[b]), i[b], j[b])
                  for b in edge_blocks(len(lengths), max(h.shape[1], self.rbf.freq.numel()), lengths.device)]
        for interaction in self.interactions:
            h = h + interaction(h, blocks, both_ways=pairs)
        return ssp_mlp(h, self.readout).squeeze(-1)


def one_per_pair(shifts: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    """Mask keeping one of the two directed edges of every pair in a full neighbour list: i < j, and for
    an atom and its own periodic image (i == j; the edge vector is the lattice shift) the positive shift."""
    x, y, z = shifts.detach().unbind(-1)
    positive = (x > 0) | ((x == 0) & ((y > 0) | ((y == 0) & (z > 0))))
    return (i < j) | ((i == j) & positive)
