"""SchNet's atomic energies with a hand-written backward pass, for inference.

Forces are -dE/dr all the same; only the bookkeeping differs. Autograd records every small operation
of the forward pass (about 450 forward and backward for six interactions) and also prepares the
parameter gradients; on a small molecule that overhead, not arithmetic, is most of a call. Here the
forward pass keeps what the backward needs (the filters, the sigmoid of each softplus input, the node
features of each interaction; gathered features and filter times envelope are recomputed, which
was faster than keeping them on 21 to 8,000 atoms) and the backward walks the interactions in reverse
with about a third as many operations, giving dE/d(pair length); autograd carries that on to
positions and strain as usual.

In float32 the filters come from tables (``filter_table``; ``SchNet.tabulated_filters``): per pair and interaction
a gathered cubic instead of two dense layers, 2.3 to 2.6x faster on 1,000 and 8,000 atoms, computed in blocks of
pairs small enough to stay in the cache.

Used by ``SchNet.forward`` in eval mode when no parameter needs a gradient (the ASE calculator
freezes its potential); training keeps the autograd path, which also gives the second derivatives of
the force loss. Asking this one for a graph of its derivative (``create_graph=True``) raises an error
rather than returning a wrong one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from chemzoo.potentials.filter_table import FilterTable
from chemzoo.potentials.layers import CACHE_BLOCK_BYTES, edge_blocks, folded_bias


class FusedSchNet(torch.autograd.Function):
    """``FusedSchNet.apply(lengths, net, plan, species, i, j)``: per-atom network outputs (N,) of ``net``,
    a SchNet, with one filter per pair (i, j) of the given lengths (Å) and messages both ways; ``plan``
    from ``Plan.of(net)``.

    The filters depend on the distances only, so those of all interactions are computed up front as
    one batch, and their backward waits until every interaction has handed back its filter gradient."""

    @staticmethod
    def forward(ctx, lengths, net, plan, species, i, j):
        n_layers, features = len(plan.layers), net.embedding.embedding_dim
        if plan.table is not None:
            return tabulated_forward(ctx, lengths, plan, net.embedding(species), i, j)
        slices = edge_blocks(len(lengths), 4 * n_layers * features, lengths.device)
        if len(slices) > 1:  # a large system: keep only each pair's first filter layer, recompute the rest
            return lean_forward(ctx, lengths, net, plan, species, i, j, slices)
        blocks = []
        # the per-pair tensors here span all interactions at once: blocks a quarter of the usual size
        # (4 MB per (pairs, layers * F) tensor) were 10 % faster on 1,000 and 8,000 atoms than 16 MB ones
        for b in slices:
            (rbf, drbf), (env, denv) = net.rbf.value_and_derivative(lengths[b]), net.envelope.value_and_derivative(lengths[b])
            a = torch.addmm(plan.filter_in_bias, rbf, plan.filter_in_t)  # (P, layers * F): every first filter layer
            by_layer = F.softplus(a).view(len(rbf), n_layers, features).transpose(0, 1)
            filt = torch.baddbmm(plan.filter_out_bias, by_layer, plan.filter_out_t)  # (layers, P, F)
            blocks.append(Block(drbf, env[:, None], denv, torch.cat([j[b], i[b]]), torch.cat([i[b], j[b]]),
                                torch.sigmoid(a), filt))
        energies, saved, sig_r = interactions(plan, net.embedding(species), blocks,
                                              lambda k, block: block.filt[k] * block.env)
        ctx.path, ctx.state = "batched", (plan, features, blocks, saved, sig_r)
        return energies

    @staticmethod
    def backward(ctx, grad):
        if torch.is_grad_enabled():  # create_graph=True: what follows has no derivative of its own
            raise RuntimeError("SchNet's inference path (frozen parameters) gives first derivatives only; for "
                               "second derivatives, unfreeze the parameters: potential.requires_grad_(True)")
        if ctx.path == "tabulated":
            return tabulated_backward(ctx, grad)
        if ctx.path == "lean":
            return lean_backward(ctx, grad)
        plan, features, blocks, saved, sig_r = ctx.state
        g = ((grad[:, None] * plan.readout_out) * sig_r) @ plan.readout_in  # dE/dh after the last interaction
        grad_w = [torch.empty_like(block.filt) for block in blocks]  # dE/d(filter * envelope), (layers, P, F)
        for k in reversed(range(len(plan.layers))):
            in2f, f2out_in, _, f2out_out, _ = plan.layers[k]
            x, sig_o = saved[k]
            grad_out = ((g @ f2out_out) * sig_o) @ f2out_in
            grad_x = torch.zeros_like(g)
            for block, g_w in zip(blocks, grad_w):
                grad_msg = grad_out.index_select(0, block.dst).view(2, -1, features)
                xs = x.index_select(0, block.src).view(2, -1, features)
                torch.addcmul(grad_msg[0] * xs[0], grad_msg[1], xs[1], out=g_w[k])
                grad_x.index_add_(0, block.src, (grad_msg * (block.filt[k] * block.env)).view(-1, features))
            g = torch.addmm(g, grad_x, in2f)  # h feeds the residual and x = in2f(h)
        grad_lengths = []
        for block, g_w in zip(blocks, grad_w):
            grad_env = torch.linalg.vecdot(g_w, block.filt).sum(0)
            grad_s = torch.bmm(g_w * block.env, plan.filter_out)  # (layers, P, F)
            grad_a = torch.empty_like(block.sig_a)
            n_pairs = len(grad_a)
            torch.mul(grad_s, block.sig_a.view(n_pairs, len(plan.layers), features).transpose(0, 1),
                      out=grad_a.view(n_pairs, len(plan.layers), features).transpose(0, 1))
            grad_lengths.append(((grad_a @ plan.filter_in) * block.drbf).sum(1) + grad_env * block.denv)
        return torch.cat(grad_lengths), None, None, None, None, None


def interactions(plan, h, blocks, weight):
    """The interactions and readout that every fused forward pass shares, from embeddings ``h`` (N, F):
    ``weight(k, block)`` is interaction ``k``'s filter x envelope (P, F) for a block of pairs (its messages go from
    ``block.src`` to ``block.dst``, both ways). Returns the per-atom outputs (N,), what the backward needs of each
    interaction (x, sigmoid of the update's first layer) and the sigmoid of the readout's first layer."""
    features, saved = h.shape[1], []
    for k, (in2f, f2out_in, f2out_in_bias, f2out_out, f2out_bias) in enumerate(plan.layers_t):
        x, out = h @ in2f, torch.zeros_like(h)
        for block in blocks:
            xs = x.index_select(0, block.src).view(2, -1, features)
            out.index_add_(0, block.dst, (xs * weight(k, block)).view(-1, features))
        o = torch.addmm(f2out_in_bias, out, f2out_in)
        h = h + torch.addmm(f2out_bias, F.softplus(o), f2out_out)
        saved.append((x, torch.sigmoid(o)))
    r = torch.addmm(plan.readout_in_bias, h, plan.readout_in.t())
    return F.softplus(r) @ plan.readout_out[0] + plan.readout_bias, saved, torch.sigmoid(r)


def lean_forward(ctx, lengths, net, plan, species, i, j, slices):
    """``FusedSchNet.forward`` for many pair blocks: per pair only the first filter layers' inputs ``a`` (P, layers x
    F) are kept, not the filters (layers, P, F) and their gradients, which the backward recomputes layer by layer
    (the same arithmetic as the batched path, a third of its memory; 8,000 atoms: 3.2 -> under 2 GB)."""
    features = net.embedding.embedding_dim
    blocks = []
    for b in slices:
        (rbf, drbf), (env, denv) = net.rbf.value_and_derivative(lengths[b]), net.envelope.value_and_derivative(lengths[b])
        a = torch.addmm(plan.filter_in_bias, rbf, plan.filter_in_t)  # (P, layers * F) -> (layers, P, F), contiguous
        blocks.append(LeanBlock(drbf, env[:, None], denv, torch.cat([j[b], i[b]]), torch.cat([i[b], j[b]]),
                                a.view(len(a), -1, features).transpose(0, 1).contiguous()))
    energies, saved, sig_r = interactions(plan, net.embedding(species), blocks,
                                          lambda k, block: _filter(plan, block, k, features) * block.env)
    ctx.path, ctx.state = "lean", (plan, features, blocks, saved, sig_r)
    return energies


def lean_backward(ctx, grad):
    plan, features, blocks, saved, sig_r = ctx.state
    g = ((grad[:, None] * plan.readout_out) * sig_r) @ plan.readout_in
    grad_rbf = [torch.zeros_like(block.drbf) for block in blocks]  # dE/d(basis), (P, K)
    grad_env = [torch.zeros(len(block.denv), dtype=g.dtype, device=g.device) for block in blocks]
    for k in reversed(range(len(plan.layers))):
        in2f, f2out_in, _, f2out_out, _ = plan.layers[k]
        x, sig_o = saved[k]
        grad_out = ((g @ f2out_out) * sig_o) @ f2out_in
        grad_x = torch.zeros_like(g)
        layer = slice(k * features, (k + 1) * features)
        for block, g_rbf, g_env in zip(blocks, grad_rbf, grad_env):
            filt = _filter(plan, block, k, features)
            grad_msg = grad_out.index_select(0, block.dst).view(2, -1, features)
            xs = x.index_select(0, block.src).view(2, -1, features)
            g_w = torch.addcmul(grad_msg[0] * xs[0], grad_msg[1], xs[1])  # dE/d(filter x envelope), (P, F)
            grad_x.index_add_(0, block.src, (grad_msg * (filt * block.env)).view(-1, features))
            g_env.add_(torch.linalg.vecdot(g_w, filt))
            grad_a = ((g_w * block.env) @ plan.filter_out[k]) * torch.sigmoid(block.a[k])
            g_rbf.addmm_(grad_a, plan.filter_in[layer])
        g = torch.addmm(g, grad_x, in2f)
    grad_lengths = [(g_rbf * block.drbf).sum(1) + g_env * block.denv
                    for block, g_rbf, g_env in zip(blocks, grad_rbf, grad_env)]
    return torch.cat(grad_lengths), None, None, None, None, None


def tabulated_forward(ctx, lengths, plan, h, i, j):
    """``FusedSchNet.forward`` with the filters looked up in ``plan.table`` (``filter_table``): per pair block
    only the grid interval and position of each length are kept; filters and their slopes are looked up again
    in the backward, interaction by interaction."""
    table, features = plan.table, h.shape[1]
    blocks = []
    # 1 MB per (pairs, F) float32 tensor: 1.7x faster than 4 MB on 1k-8k atoms
    for b in edge_blocks(len(lengths), features, lengths.device, cpu_bytes=CACHE_BLOCK_BYTES):
        index, t = table.locate(lengths[b])
        blocks.append(TableBlock(index, t, torch.cat([j[b], i[b]]), torch.cat([i[b], j[b]])))
    energies, saved, sig_r = interactions(plan, h, blocks, lambda k, block: table.value(k, block.index, block.t))
    ctx.path, ctx.state = "tabulated", (plan, features, blocks, saved, sig_r)
    return energies


def tabulated_backward(ctx, grad):
    plan, features, blocks, saved, sig_r = ctx.state
    table = plan.table
    g = ((grad[:, None] * plan.readout_out) * sig_r) @ plan.readout_in
    grad_lengths = [torch.zeros(len(block.index), dtype=g.dtype, device=g.device) for block in blocks]
    for k in reversed(range(len(plan.layers))):
        in2f, f2out_in, _, f2out_out, _ = plan.layers[k]
        x, sig_o = saved[k]
        grad_out = ((g @ f2out_out) * sig_o) @ f2out_in
        grad_x = torch.zeros_like(g)
        for block, g_len in zip(blocks, grad_lengths):
            src, dst = block.src, block.dst
            w, slope = table.value_and_slope(k, block.index, block.t)  # slope per grid interval
            grad_msg = grad_out.index_select(0, dst).view(2, -1, features)
            xs = x.index_select(0, src).view(2, -1, features)
            g_w = torch.addcmul(grad_msg[0] * xs[0], grad_msg[1], xs[1])  # dE/d(filter x envelope), (P, F)
            grad_x.index_add_(0, src, (grad_msg * w).view(-1, features))
            g_len.add_(torch.linalg.vecdot(g_w, slope))
        g = torch.addmm(g, grad_x, in2f)
    return torch.cat(grad_lengths).div_(table.spacing), None, None, None, None, None


def _filter(plan, block, k: int, features: int) -> torch.Tensor:
    """Interaction ``k``'s filters (P, F) of a lean block, from its first-layer inputs."""
    return torch.addmm(plan.filter_out_bias[k, 0], F.softplus(block.a[k]), plan.filter_out_t[k])


@dataclass
class TableBlock:
    """A block of pairs in the tabulated pass: each length's grid interval (P,) and position in it (P, 1), message
    sources and destinations (2P,)."""

    index: torch.Tensor
    t: torch.Tensor
    src: torch.Tensor
    dst: torch.Tensor


@dataclass
class LeanBlock:
    """A block of pairs in the lean fused pass: basis slope (P, K), envelope (P, 1) and its slope (P,), message
    sources and destinations (2P,), and the first filter layers' inputs (layers, P, F)."""

    drbf: torch.Tensor
    env: torch.Tensor
    denv: torch.Tensor
    src: torch.Tensor
    dst: torch.Tensor
    a: torch.Tensor


@dataclass
class Block:
    """A block of pairs in the fused pass: basis slope (P, K), envelope (P, 1) and its slope (P,) per Å,
    message sources and destinations (2P,), sigmoid of the first filter layers (P, layers * F) and the
    filters (layers, P, F)."""

    drbf: torch.Tensor
    env: torch.Tensor
    denv: torch.Tensor
    src: torch.Tensor
    dst: torch.Tensor
    sig_a: torch.Tensor
    filt: torch.Tensor


class Plan:
    """The weights of a frozen SchNet as the fused pass uses them: the filter layers of all interactions
    stacked, softplus shifts folded into biases. Rebuilt when a parameter changes."""

    def __init__(self, net):
        layers = net.interactions
        self.filter_in = torch.cat([layer.filter[0].weight for layer in layers])
        self.filter_in_t = self.filter_in.t().contiguous()  # (in, out) weights: torch.mm is cheaper than F.linear
        self.filter_in_bias = torch.cat([layer.filter[0].bias for layer in layers])
        self.filter_out = torch.stack([layer.filter[2].weight for layer in layers])
        self.filter_out_t = self.filter_out.transpose(1, 2).contiguous()
        self.filter_out_bias = torch.stack([folded_bias(layer.filter[2]) for layer in layers])[:, None]
        self.layers = [(layer.in2f.weight, layer.f2out[0].weight, layer.f2out[0].bias, layer.f2out[2].weight,
                        folded_bias(layer.f2out[2])) for layer in layers]
        self.layers_t = [(w_in.t().contiguous(), f_in.t().contiguous(), b_in, f_out.t().contiguous(), b_out)
                         for w_in, f_in, b_in, f_out, b_out in self.layers]
        self.readout_in, self.readout_in_bias = net.readout[0].weight, net.readout[0].bias
        self.readout_out, self.readout_bias = net.readout[2].weight, folded_bias(net.readout[2])
        weight, tabulate = self.filter_in, net.tabulated_filters
        if tabulate is None:  # by default in float32, where the table's error is below the rounding
            tabulate = weight.dtype == torch.float32
        self.table = FilterTable(net, dtype=weight.dtype, device=weight.device) if tabulate else None

    @classmethod
    def of(cls, net) -> "Plan | None":
        """The plan of ``net`` (cached; rebuilt when a weight changes in place, moves or changes dtype), or
        None when a parameter needs a gradient (training). ``Potential.frozen()`` clears the cache."""
        cached = getattr(net, "_fused_plan", None)
        parameters = cached[2] if cached is not None else all_parameters(net)  # the module walk, once
        if any(p.requires_grad for p in parameters):
            return None
        key = (net.tabulated_filters, *((p.data_ptr(), p._version, p.dtype) for p in parameters))
        if cached is None or cached[0] != key:
            cached = (key, cls(net), parameters)
            object.__setattr__(net, "_fused_plan", cached)  # not a submodule, not in the state dict
        return cached[1]


def all_parameters(module: torch.nn.Module) -> list[torch.Tensor]:
    """``list(module.parameters())`` (order aside) in a fifth of the time: no names, no memo."""
    found, stack = [], [module]
    while stack:
        m = stack.pop()
        found.extend(p for p in m._parameters.values() if p is not None)
        stack.extend(m._modules.values())
    return found
