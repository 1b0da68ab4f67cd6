"""PaiNN's message step with a hand-written backward pass, for inference on large systems.

Autograd keeps every per-edge tensor of the message step for the backward pass: on 8,000 atoms (445k
edges, 128 features) that is ~15 GB. Here a block of edges keeps only its inputs (node features and
the per-edge basis), and the backward recomputes the per-edge products it needs, block by block, in
work buffers that are allocated once per call and reused by every block and interaction (fresh
tensors per block fragment the C heap: peak memory then grows with the number of blocks even though
little is alive). Forces are the same; memory grows with the atoms and the edge basis only.

Used by ``PaiNN`` outside training when a call has several edge blocks; training (which needs the
derivative of the forces) keeps autograd. Asking this one for a second derivative raises an error.
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


class FusedMessage(torch.autograd.Function):
    """``FusedMessage.apply(phi, v, rbf, envelope, unit, weight, bias, i, j, blocks, work)``: PaiNN's messages
    summed onto their receivers ``i``, as (N, F) scalar and (N, 3, F) vector updates. ``phi`` (N, 3F) is the
    message network's output, ``v`` (N, 3, F) the vector features, ``rbf`` (E, K) the edge basis, ``envelope``
    (E,), ``unit`` (E, 3) the unit vectors from i to j, ``weight``/``bias`` the filter layer; the edges are
    processed in ``blocks`` (slices), each in the ``work`` buffers."""

    @staticmethod
    def forward(ctx, phi, v, rbf, envelope, unit, weight, bias, i, j, blocks, work):
        features = v.shape[2]
        s_sum, v_sum = phi.new_zeros(v.shape[0], features), torch.zeros_like(v)
        for b in blocks:
            n_edges = b.stop - b.start
            a = torch.index_select(phi, 0, j[b], out=work.take("a", (n_edges, 3 * features), phi))
            f = torch.addmm(bias, rbf[b], weight.t(), out=work.take("f", (n_edges, 3 * features), phi))
            ds, dvv, dvs = a.mul_(f.mul_(envelope[b, None])).chunk(3, dim=-1)
            dv = torch.index_select(v, 0, j[b], out=work.take("vj", (n_edges, 3, features), v))
            dv.mul_(dvv[:, None, :]).addcmul_(unit[b, :, None], dvs[:, None, :])
            s_sum.index_add_(0, i[b], ds)
            v_sum.index_add_(0, i[b], dv)
        ctx.save_for_backward(phi, v, rbf, envelope, unit, weight, bias, i, j)
        ctx.blocks, ctx.work = blocks, work
        return s_sum, v_sum

    @staticmethod
    def backward(ctx, grad_s, grad_v):
        if torch.is_grad_enabled():
            raise RuntimeError("PaiNN's inference path gives first derivatives only; for second derivatives "
                               "use the potential in training mode (potential.train())")
        phi, v, rbf, envelope, unit, weight, bias, i, j = ctx.saved_tensors
        work, features = ctx.work, v.shape[2]
        grad_phi, grad_v_in = torch.zeros_like(phi), torch.zeros_like(v)
        grad_rbf, grad_envelope, grad_unit = torch.empty_like(rbf), torch.empty_like(envelope), torch.empty_like(unit)
        grad_weight = torch.zeros_like(weight) if ctx.needs_input_grad[5] else None
        grad_bias = torch.zeros_like(bias) if ctx.needs_input_grad[6] else None
        for b in ctx.blocks:
            n_edges, jb, env = b.stop - b.start, j[b], envelope[b, None]
            f = torch.addmm(bias, rbf[b], weight.t(), out=work.take("f", (n_edges, 3 * features), phi))  # filter
            a = torch.index_select(phi, 0, jb, out=work.take("a", (n_edges, 3 * features), phi))
            g = torch.mul(f, env, out=work.take("g", (n_edges, 3 * features), phi))
            dvv, dvs = torch.mul(a, g, out=work.take("m", (n_edges, 3 * features), phi)).chunk(3, dim=-1)[1:]
            gm = work.take("gm", (n_edges, 3 * features), phi)  # dE/d(message): its scalar, dvv and dvs parts
            gm[:, :features] = torch.index_select(grad_s, 0, i[b], out=work.take("gs", (n_edges, features), phi))
            gdv = torch.index_select(grad_v, 0, i[b], out=work.take("gdv", (n_edges, 3, features), v))
            vj = torch.index_select(v, 0, jb, out=work.take("vj", (n_edges, 3, features), v))
            gm[:, features:2 * features] = torch.linalg.vecdot(gdv, vj, dim=1)
            gm[:, 2 * features:] = torch.linalg.vecdot(gdv, unit[b, :, None].expand(-1, -1, features), dim=1)
            grad_unit[b] = torch.linalg.vecdot(gdv, dvs[:, None, :].expand(-1, 3, -1), dim=2)
            grad_v_in.index_add_(0, jb, gdv.mul_(dvv[:, None, :]))  # dE/d(v[j])
            grad_phi.index_add_(0, jb, torch.mul(gm, g, out=g))  # dE/d(phi[j]); g is not needed again
            gm.mul_(a)  # dE/d(filter x envelope)
            grad_envelope[b] = torch.linalg.vecdot(gm, f, dim=1)
            gm.mul_(env)  # dE/d(filter)
            torch.mm(gm, weight, out=grad_rbf[b])
            if grad_weight is not None:
                grad_weight.addmm_(gm.t(), rbf[b])
            if grad_bias is not None:
                grad_bias.add_(gm.sum(0))
        return grad_phi, grad_v_in, grad_rbf, grad_envelope, grad_unit, grad_weight, grad_bias, None, None, None, None
