"""An E(3)-equivariant tensor-product potential in the NequIP style, built from e3nn.

Node features are irreps (scalars 0e, vectors 1o, and 2e when ``lmax`` = 2); each interaction
takes the tensor product of neighbour features with the spherical harmonics of the edge direction,
weighted per edge by a radial MLP (depthwise "uvu" paths, then a linear mix), and a gated
nonlinearity. The energy reads the scalars only, so it is invariant and forces are equivariant.
"""

from __future__ import annotations

import torch
from e3nn import o3
from e3nn.nn import FullyConnectedNet, Gate
from torch import nn
from torch.utils.checkpoint import checkpoint

from chemzoo.potentials.layers import BesselBasis, PolynomialCutoff, edge_blocks, recompute_edges, release_free_memory


def depthwise_tensor_product(irreps_in: o3.Irreps, irreps_edge: o3.Irreps, irreps_target: o3.Irreps):
    """A "uvu" tensor product keeping each input channel, restricted to irreps present in the target."""
    wanted = {ir for _, ir in irreps_target}
    mid, instructions = [], []
    for i, (mul, ir_in) in enumerate(irreps_in):
        for j, (_, ir_edge) in enumerate(irreps_edge):
            for ir_out in ir_in * ir_edge:
                if ir_out in wanted:
                    instructions.append((i, j, len(mid), "uvu", True))
                    mid.append((mul, ir_out))
    mid = o3.Irreps(mid)
    mid_sorted, perm, _ = mid.sort()
    instructions = [(a, b, perm[c], mode, train) for a, b, c, mode, train in instructions]
    tp = o3.TensorProduct(irreps_in, irreps_edge, mid_sorted, instructions, shared_weights=False, internal_weights=False)
    return tp, mid_sorted


class Interaction(nn.Module):
    def __init__(self, irreps_in, irreps_hidden, irreps_sh, num_basis, radial_hidden, avg_neighbours):
        super().__init__()
        scalars = o3.Irreps([(m, ir) for m, ir in irreps_hidden if ir.l == 0])
        gated = o3.Irreps([(m, ir) for m, ir in irreps_hidden if ir.l > 0])
        self.gate = Gate(scalars, [nn.functional.silu], o3.Irreps(f"{gated.num_irreps}x0e"), [torch.sigmoid], gated)
        self.tp, mid = depthwise_tensor_product(irreps_in, irreps_sh, self.gate.irreps_in)
        self.radial = FullyConnectedNet([num_basis, radial_hidden, self.tp.weight_numel], nn.functional.silu)
        self.mix = o3.Linear(mid.simplify(), self.gate.irreps_in)
        self.skip = o3.Linear(irreps_in, self.gate.irreps_in)
        self.norm = avg_neighbours**-0.5
        self.irreps_out = self.gate.irreps_out

    def forward(self, x, blocks, recompute: bool = False):
        """blocks: (spherical harmonics, rbf, envelope, i, j) per block of edges.

        ``recompute`` (set by ``NequIP.forward`` outside training with several blocks, which then sorts the edges
        by receiver): each block's per-edge tensors are recomputed in the backward pass instead of kept
        (activation checkpointing): memory grows with the atoms, not with the edges times the irreps; the
        forces are the same."""
        messages = x.new_zeros(x.shape[0], self.tp.irreps_out.dim)
        for sh, rbf, envelope, i, j in blocks:
            if recompute:  # edges sorted by receiver (NequIP.forward): a block fills rows i[0] .. i[-1] only
                lo, hi = int(i[0]), int(i[-1]) + 1  # in place on the whole tensor, not on a slice view (whose
                rows = torch.arange(lo, hi, device=i.device)  # backward would copy all N rows per block)
                messages.index_add_(0, rows, checkpoint(self.summed_messages, x, sh, rbf, envelope, i - lo, j, hi - lo,
                                                        use_reentrant=False))
            else:
                messages.index_add_(0, i, self.edge_messages(x, sh, rbf, envelope, j))
        return self.gate(self.mix(messages * self.norm) + self.skip(x))

    def edge_messages(self, x, sh, rbf, envelope, j):
        """Per-edge messages (E, irreps) from the sources ``j``."""
        return self.tp(x.index_select(0, j), sh, self.radial(rbf) * envelope[:, None])

    def summed_messages(self, x, sh, rbf, envelope, i, j, size):
        """One block's messages summed onto their receivers ``i`` (counted from the block's first receiver):
        (size, irreps). Runs in the forward pass and again in the backward pass (recomputed), each time after
        giving the heap's free pages back. Only the block's rows: a full (N, irreps) tensor per block made the
        cost grow as N^2 (10x from 1,000 to 8,000 atoms)."""
        release_free_memory()
        messages = self.edge_messages(x, sh, rbf, envelope, j)
        return messages.new_zeros(size, messages.shape[1]).index_add_(0, i, messages)


class NequIP(nn.Module):
    """Per-atom energies (N,) from an E(3)-equivariant network (``lmax`` >= 1)."""

    def __init__(self, num_elements: int = 36, features: int = 32, interactions: int = 3, lmax: int = 1,
                 cutoff: float = 5.0, num_basis: int = 8, radial_hidden: int = 64, avg_neighbours: float = 12.0):
        super().__init__()
        if lmax < 1:
            raise ValueError("an equivariant model needs lmax >= 1")
        self.irreps_sh = o3.Irreps.spherical_harmonics(lmax)
        hidden = o3.Irreps("+".join(f"{features}x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(lmax + 1)))
        self.embedding = nn.Embedding(num_elements, features)
        self.rbf, self.envelope = BesselBasis(cutoff, num_basis), PolynomialCutoff(cutoff)
        irreps = o3.Irreps(f"{features}x0e")
        layers = []
        for _ in range(interactions):
            layer = Interaction(irreps, hidden, self.irreps_sh, num_basis, radial_hidden, avg_neighbours)
            layers.append(layer)
            irreps = layer.irreps_out
        self.interactions = nn.ModuleList(layers)
        self.readout = o3.Linear(irreps, "1x0e")

    def forward(self, species, vectors, lengths, edge_index):
        x = self.embedding(species)
        i, j = edge_index
        width = max(layer.tp.irreps_out.dim for layer in self.interactions)
        slices = edge_blocks(len(lengths), width, lengths.device)
        recompute = recompute_edges(self, len(slices))
        if recompute:  # blocks recomputed one by one: sort the edges by receiver
            order = torch.argsort(i, stable=True)
            vectors, lengths, i, j = vectors[order], lengths[order], i[order], j[order]
        blocks = [(o3.spherical_harmonics(self.irreps_sh, vectors[b], normalize=True, normalization="component"),
                   self.rbf(lengths[b]), self.envelope(lengths[b]), i[b], j[b]) for b in slices]
        for layer in self.interactions:
            x = layer(x, blocks, recompute)
        return self.readout(x).squeeze(-1)
