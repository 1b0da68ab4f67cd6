"""PaiNN (Schütt et al. 2021): scalar and vector features, rotationally equivariant message passing."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from chemzoo.potentials.layers import BesselBasis, PolynomialCutoff, edge_blocks, inference_with_forces
from chemzoo.potentials.painn_fused import FusedMessage, Workspace, edge_basis, filter_weight


# the inference path's edge blocks on a CPU: 2 MB per (edges, 3F) float32 tensor (1,365 edges at F = 128) stay in
# cache; against 16 MB blocks 1.6-2x faster on 1k-8k atoms and batches of molecules (`python -m benchmarks.edge_blocks`)
LEAN_BLOCK_BYTES = 2 * 2**20


class Message(nn.Module):
    def __init__(self, features: int, num_basis: int):
        super().__init__()
        self.phi = nn.Sequential(nn.Linear(features, features), nn.SiLU(), nn.Linear(features, 3 * features))
        self.w = nn.Linear(num_basis, 3 * features)

    def forward(self, s, v, blocks):
        """blocks: (rbf, envelope, unit vector, i, j) per block of edges, or a ``LeanEdges`` (inference: the
        hand-written backward of ``painn_fused``, no per-edge tensor kept for it). ``v`` None: the vector
        features are still zero (the first interaction), so only the unit-vector part of the messages is made."""
        phi = self.phi(s)  # messages read the features before this update
        if isinstance(blocks, LeanEdges):
            e = blocks
            ds, dv = FusedMessage.apply(phi, v, e.basis, filter_weight(self.w), e.unit, e.i, e.j, e.slices, e.work)
            return s + ds, dv if v is None else v + dv
        s_out = s
        v_out = s.new_zeros(s.shape[0], 3, s.shape[1]) if v is None else v
        for rbf, envelope, unit, i, j in blocks:
            ds, dvv, dvs = (phi.index_select(0, j) * (self.w(rbf) * envelope[:, None])).chunk(3, dim=-1)
            dv = unit[:, :, None] * dvs[:, None, :]
            if v is not None:
                dv = dv + v.index_select(0, j) * dvv[:, None, :]
            s_out, v_out = s_out.index_add(0, i, ds), v_out.index_add(0, i, dv)
        return s_out, v_out


class Update(nn.Module):
    def __init__(self, features: int):
        super().__init__()
        self.u = nn.Linear(features, features, bias=False)
        self.v = nn.Linear(features, features, bias=False)
        self.mlp = nn.Sequential(nn.Linear(2 * features, features), nn.SiLU(), nn.Linear(features, 3 * features))

    def forward(self, s, v):
        uv, vv = F.linear(v, torch.cat([self.u.weight, self.v.weight])).chunk(2, dim=-1)  # U v and V v in one product
        norm = torch.sqrt((vv**2).sum(dim=1) + 1e-8)
        a_vv, a_sv, a_ss = self.mlp(torch.cat([s, norm], dim=-1)).chunk(3, dim=-1)
        return s + a_ss + a_sv * (uv * vv).sum(dim=1), v + a_vv[:, None, :] * uv


@dataclass
class LeanEdges:
    """All edges at once (``painn_fused.edge_basis`` (E, K + 1), unit vectors (E, 3), i, j), the blocks to
    process them in, and the work buffers they share: the inference path."""

    basis: torch.Tensor
    unit: torch.Tensor
    i: torch.Tensor
    j: torch.Tensor
    slices: list[slice]
    work: Workspace


class PaiNN(nn.Module):
    """Per-atom energies (N,); vector features (N, 3, F) rotate with the molecule."""

    def __init__(self, num_elements: int = 36, features: int = 128, interactions: int = 3, cutoff: float = 5.0,
                 num_basis: int = 20):
        super().__init__()
        self.features = features
        self.embedding = nn.Embedding(num_elements, features)
        self.rbf, self.envelope = BesselBasis(cutoff, num_basis), PolynomialCutoff(cutoff)
        self.messages = nn.ModuleList(Message(features, num_basis) for _ in range(interactions))
        self.updates = nn.ModuleList(Update(features) for _ in range(interactions))
        self.readout = nn.Sequential(nn.Linear(features, features // 2), nn.SiLU(), nn.Linear(features // 2, 1))

    def forward(self, species, vectors, lengths, edge_index):
        s, v = self.embedding(species), None  # v: (N, 3, F) vector features, zero until the first message
        i, j = edge_index
        if inference_with_forces(self):  # at any size: fewer and in-place operations than autograd
            slices = edge_blocks(len(lengths), 3 * self.features, lengths.device, cpu_bytes=LEAN_BLOCK_BYTES)
            blocks = LeanEdges(edge_basis(self.rbf(lengths), self.envelope(lengths)), vectors / lengths[:, None], i, j,
                               slices, Workspace())
        else:
            slices = edge_blocks(len(lengths), 3 * self.features, lengths.device)
            blocks = [(self.rbf(lengths[b]), self.envelope(lengths[b]), vectors[b] / lengths[b, None], i[b], j[b])
                      for b in slices]
        for message, update in zip(self.messages, self.updates):
            s, v = message(s, v, blocks)
            s, v = update(s, v)
        return self.readout(s).squeeze(-1)
