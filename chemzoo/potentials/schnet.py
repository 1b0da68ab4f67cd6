"""SchNet (Schütt et al. 2018): invariant continuous-filter convolutions over interatomic distances."""

from __future__ import annotations

from torch import nn

from chemzoo.potentials.layers import BesselBasis, PolynomialCutoff, ShiftedSoftplus, scatter_sum


class Interaction(nn.Module):
    def __init__(self, features: int, num_basis: int):
        super().__init__()
        self.filter = nn.Sequential(nn.Linear(num_basis, features), ShiftedSoftplus(), nn.Linear(features, features))
        self.in2f = nn.Linear(features, features, bias=False)
        self.f2out = nn.Sequential(nn.Linear(features, features), ShiftedSoftplus(), nn.Linear(features, features))

    def forward(self, h, rbf, envelope, edge_index):
        i, j = edge_index
        w = self.filter(rbf) * envelope[:, None]
        return self.f2out(scatter_sum(self.in2f(h)[j] * w, i, h.shape[0]))


class SchNet(nn.Module):
    """Per-atom energies (N,) from atomic numbers and edge vectors; invariant by construction."""

    def __init__(self, num_elements: int = 36, features: int = 128, interactions: int = 6, cutoff: float = 5.0,
                 num_basis: int = 20):
        super().__init__()
        self.embedding = nn.Embedding(num_elements, features)
        self.rbf, self.envelope = BesselBasis(cutoff, num_basis), PolynomialCutoff(cutoff)
        self.interactions = nn.ModuleList(Interaction(features, num_basis) for _ in range(interactions))
        self.readout = nn.Sequential(nn.Linear(features, features // 2), ShiftedSoftplus(), nn.Linear(features // 2, 1))

    def forward(self, species, vectors, lengths, edge_index):
        h = self.embedding(species)
        rbf, env = self.rbf(lengths), self.envelope(lengths)
        for interaction in self.interactions:
            h = h + interaction(h, rbf, env, edge_index)
        return self.readout(h).squeeze(-1)
