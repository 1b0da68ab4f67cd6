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

    def forward(self, x, edges, slices: list[slice], recompute: bool = False):
        """edges: (spherical harmonics, rbf, envelope, i, j) of all edges, taken in blocks of ``slices``.

        ``recompute`` (set by ``NequIP.forward`` outside training with several blocks, which then sorts the edges
        by receiver): the message step is ``BlockedMessages``, which keeps no per-edge tensor for the backward
        pass and recomputes each block there: memory grows with the atoms, not with the edges times the irreps;
        the forces are the same."""
        if recompute:
            messages = BlockedMessages.apply(x, *edges, self, slices)
        else:
            messages = x.new_zeros(x.shape[0], self.tp.irreps_out.dim)
            for b in slices:
                sh, rbf, envelope, i, j = (t[b] for t in edges)
                messages.index_add_(0, i, self.edge_messages(x.index_select(0, j), sh, rbf, envelope))
        return self.gate(self.mix(messages * self.norm) + self.skip(x))

    def edge_messages(self, sources, sh, rbf, envelope):
        """Per-edge messages (E, irreps) from the source atoms' features ``sources`` (E, irreps in)."""
        return self.tp(sources, sh, self.radial(rbf) * envelope[:, None])


class BlockedMessages(torch.autograd.Function):
    """An interaction's messages summed onto their receivers, (N, irreps), one edge block at a time, with a
    hand-written backward that recomputes each block: no per-edge tensor is kept between the passes.

    The edges are sorted by receiver, so a block adds into the rows of its own receivers only, and the
    backward gathers each block's slice of the incoming gradient, differentiates the block's messages by
    its gathered sources and edge tensors, and adds the source gradient into one (N, irreps) buffer:
    work proportional to the block, not to N per block (autograd through per-block checkpoints made a
    dense (N, irreps) gradient of x for every block, a cost growing as N^2). First derivatives only, and
    only of the inputs (positions through x and the edge tensors): the inference path with forces."""

    @staticmethod
    def forward(ctx, x, sh, rbf, envelope, i, j, layer, slices):
        messages = x.new_zeros(x.shape[0], layer.tp.irreps_out.dim)
        for b in slices:
            release_free_memory()  # between large per-block tensors: see layers.release_free_memory
            lo, hi = int(i[b][0]), int(i[b][-1]) + 1
            messages[lo:hi].index_add_(0, i[b] - lo, layer.edge_messages(x.index_select(0, j[b]), sh[b], rbf[b], envelope[b]))
        ctx.save_for_backward(x, sh, rbf, envelope, i, j)
        ctx.layer, ctx.slices = layer, slices
        return messages

    @staticmethod
    def backward(ctx, grad):
        if torch.is_grad_enabled():
            raise RuntimeError("the e3nn model's large-system inference path gives first derivatives only; for "
                               "second derivatives use the potential in training mode (potential.train())")
        x, sh, rbf, envelope, i, j = ctx.saved_tensors
        layer = ctx.layer
        grad_x, grad_sh = torch.zeros_like(x), torch.empty_like(sh)
        grad_rbf, grad_envelope = torch.empty_like(rbf), torch.empty_like(envelope)
        for b in ctx.slices:
            release_free_memory()
            with torch.enable_grad():
                inputs = (x.index_select(0, j[b]).requires_grad_(), sh[b].detach().requires_grad_(),
                          rbf[b].detach().requires_grad_(), envelope[b].detach().requires_grad_())
                messages = layer.edge_messages(*inputs)
                grads = torch.autograd.grad(messages, inputs, grad.index_select(0, i[b]))
            grad_x.index_add_(0, j[b], grads[0])
            grad_sh[b], grad_rbf[b], grad_envelope[b] = grads[1:]
        return grad_x, grad_sh, grad_rbf, grad_envelope, None, None, None, None


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
        edges = (o3.spherical_harmonics(self.irreps_sh, vectors, normalize=True, normalization="component"),
                 self.rbf(lengths), self.envelope(lengths), i, j)
        for layer in self.interactions:
            x = layer(x, edges, slices, recompute)
        return self.readout(x).squeeze(-1)
