"""PaiNN's message step with a hand-written backward pass, for inference.

Autograd keeps every per-edge tensor of the message step for the backward pass: on 8,000 atoms (445k
edges, 128 features) that is ~15 GB. Here a block of edges keeps only its inputs (node features and
the per-edge basis), and the backward recomputes the per-edge products it needs, block by block, in
work buffers that are allocated once per call and reused by every block and interaction (fresh
tensors per block fragment the C heap: peak memory then grows with the number of blocks even though
little is alive). Forces are the same; memory grows with the atoms and the edge basis only. On a small
molecule it is faster too: fewer, in-place operations than autograd's, and the first interaction (zero
vector features) makes only the unit-vector part of its messages.

Used by ``PaiNN`` outside training (``Potential.frozen()``, the calculator) at every size; training (which
needs the derivative of the forces) keeps autograd. Asking this one for a second derivative raises an error.
"""

from __future__ import annotations

import torch


class Workspace:
    """Reusable flat buffers, one per name, grown when a larger one is asked for."""

    def __init__(self):
        self.buffers: dict[str, torch.Tensor] = {}

    def take(self, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        n = 1
        for d in shape:
            n *= d
        buf = self.buffers.get(name)
        if buf is None or buf.numel() < n or buf.dtype != like.dtype or buf.device != like.device:
            buf = self.buffers[name] = torch.empty(n, dtype=like.dtype, device=like.device)
        return buf[:n].view(shape)


def dot3(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out`` = the sum over the Cartesian axis (dim 1, size 3) of ``a * b`` (``b`` may broadcast): three
    fused multiply-adds, ~2.5x faster than ``torch.linalg.vecdot`` on (E, 3, F) blocks on CPU."""
    torch.mul(a[:, 0], b[:, 0], out=out)
    return out.addcmul_(a[:, 1], b[:, 1]).addcmul_(a[:, 2], b[:, 2])


def edge_basis(rbf: torch.Tensor, envelope: torch.Tensor) -> torch.Tensor:
    """(E, K + 1): the radial basis times the envelope, and the envelope. A filter layer's output times the
    envelope, (rbf W^T + b) * envelope, is then one matrix product with ``filter_weight(layer)``: no pass over
    the (E, 3F) filter to apply the envelope, forward or backward."""
    return torch.cat([rbf * envelope[:, None], envelope[:, None]], dim=1)


def filter_weight(layer: torch.nn.Linear) -> torch.Tensor:
    """(3F, K + 1): a filter layer's weight with its bias as the last column (pairs with ``edge_basis``)."""
    return torch.cat([layer.weight, layer.bias[:, None]], dim=1)


class FusedMessage(torch.autograd.Function):
    """``FusedMessage.apply(phi, v, basis, weight, unit, i, j, blocks, work)``: PaiNN's messages summed onto
    their receivers ``i``, as (N, F) scalar and (N, 3, F) vector updates. ``phi`` (N, 3F) is the message
    network's output, ``v`` (N, 3, F) the vector features (None: still zero, the first interaction), ``basis``
    (E, K + 1) the ``edge_basis``, ``weight`` (3F, K + 1) the ``filter_weight``, ``unit`` (E, 3) the unit
    vectors from i to j; the edges are processed in ``blocks`` (slices), each in the ``work`` buffers."""

    @staticmethod
    def forward(ctx, phi, v, basis, weight, unit, i, j, blocks, work):
        features = phi.shape[1] // 3
        s_sum, v_sum = phi.new_zeros(phi.shape[0], features), phi.new_zeros(phi.shape[0], 3, features)
        for b in blocks:
            n_edges = b.stop - b.start
            a = torch.index_select(phi, 0, j[b], out=work.take("a", (n_edges, 3 * features), phi))
            g = torch.mm(basis[b], weight.t(), out=work.take("g", (n_edges, 3 * features), phi))  # filter x envelope
            ds, dvv, dvs = a.chunk(3, dim=-1)
            dv = work.take("vj", (n_edges, 3, features), phi)
            if v is None:  # zero vector features: the unit-vector part only (no dvv needed)
                ds.mul_(g[:, :features])
                dvs.mul_(g[:, 2 * features:])
                torch.mul(unit[b, :, None], dvs[:, None, :], out=dv)
            else:
                a.mul_(g)
                torch.index_select(v, 0, j[b], out=dv).mul_(dvv[:, None, :]).addcmul_(unit[b, :, None], dvs[:, None, :])
            s_sum.index_add_(0, i[b], ds)
            v_sum.index_add_(0, i[b], dv)
        ctx.save_for_backward(phi, v, basis, weight, unit, i, j)
        ctx.blocks, ctx.work = blocks, work
        return s_sum, v_sum

    @staticmethod
    def backward(ctx, grad_s, grad_v):
        if torch.is_grad_enabled():
            raise RuntimeError("PaiNN's inference path gives first derivatives only; for second derivatives "
                               "use the potential in training mode (potential.train())")
        phi, v, basis, weight, unit, i, j = ctx.saved_tensors
        work, features = ctx.work, phi.shape[1] // 3
        grad_phi, grad_v_in = torch.zeros_like(phi), None if v is None else torch.zeros_like(v)
        grad_basis, grad_unit = torch.empty_like(basis), torch.empty_like(unit)
        grad_weight = torch.zeros_like(weight) if ctx.needs_input_grad[3] else None
        for b in ctx.blocks:
            n_edges, jb = b.stop - b.start, j[b]
            g = torch.mm(basis[b], weight.t(), out=work.take("g", (n_edges, 3 * features), phi))  # filter x envelope
            a = torch.index_select(phi, 0, jb, out=work.take("a", (n_edges, 3 * features), phi))
            if v is None:  # the messages' dvs part only
                dvs = torch.mul(a[:, 2 * features:], g[:, 2 * features:], out=work.take("m", (n_edges, features), phi))
            else:
                m = torch.mul(a[:, features:], g[:, features:], out=work.take("m", (n_edges, 2 * features), phi))
                dvv, dvs = m.chunk(2, dim=-1)
            gm = work.take("gm", (n_edges, 3 * features), phi)  # dE/d(message): its scalar, dvv and dvs parts
            torch.index_select(grad_s, 0, i[b], out=gm[:, :features])
            gdv = torch.index_select(grad_v, 0, i[b], out=work.take("gdv", (n_edges, 3, features), phi))
            dot3(gdv, unit[b, :, None], out=gm[:, 2 * features:])
            grad_unit[b] = torch.linalg.vecdot(gdv, dvs[:, None, :].expand(-1, 3, -1), dim=2)
            if v is None:  # the messages did not depend on dvv
                gm[:, features:2 * features] = 0
            else:
                vj = torch.index_select(v, 0, jb, out=work.take("vj", (n_edges, 3, features), v))
                dot3(gdv, vj, out=gm[:, features:2 * features])
                grad_v_in.index_add_(0, jb, gdv.mul_(dvv[:, None, :]))  # dE/d(v[j])
            grad_phi.index_add_(0, jb, g.mul_(gm))  # dE/d(phi[j]); g is not needed again
            gm.mul_(a)  # dE/d(filter x envelope)
            torch.mm(gm, weight, out=grad_basis[b])
            if grad_weight is not None:
                grad_weight.addmm_(gm.t(), basis[b])
        return grad_phi, grad_v_in, grad_basis, grad_weight, grad_unit, None, None, None, None
