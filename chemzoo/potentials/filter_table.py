"""SchNet's filters as tables: each interaction's filter network times the envelope is a function of the pair
distance alone, so a frozen SchNet can look it up instead of evaluating two dense layers per pair.

The table holds, per interaction, w(r) = filter(basis(r)) * envelope(r) (F features) as piecewise cubic Hermite
polynomials on a uniform grid of ``spacing`` Å from 0 to the cutoff, with values and slopes taken exactly (in
float64) at the knots. The interpolant is C1, and its slope is the exact derivative of the interpolant itself, so
forces stay the negative gradient of the energy that is computed (energy is conserved in MD). The interpolation
error falls as spacing^4: at the default 0.005 Å it is below float32 rounding (measured in the tests).

This is the technique molecular-dynamics codes use for pair potentials (LAMMPS ``pair_style table``); for SchNet it
replaces (basis -> F -> F) matrix products per pair and interaction, most of SchNet's arithmetic on large systems,
by one gathered row of 4 F numbers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from chemzoo.potentials.layers import folded_bias

DEFAULT_SPACING = 0.005  # Å


class FilterTable:
    """Per-interaction tables of a frozen SchNet's filter times envelope, in ``dtype`` on ``device``.

    ``coefficients`` (layers, knots, 4, F): per grid interval the polynomial A + B t + C t^2 + D t^3 in the
    interval's own coordinate t in [0, 1)."""

    def __init__(self, net, spacing: float = DEFAULT_SPACING, dtype: torch.dtype = torch.float32,
                 device: torch.device | str = "cpu"):
        cutoff = float(net.rbf.cutoff)
        self.spacing = spacing
        self.intervals = math.ceil(cutoff / spacing)
        # knots in float64; r = 0 itself is replaced by a tiny distance (the Bessel basis is 0/0 there)
        r = torch.arange(self.intervals + 1, dtype=torch.float64, device=device) * spacing
        r[0] = 1e-6
        with torch.no_grad():
            value, slope = filter_and_slope(net, r)  # (layers, knots, F) each, per Å for the slope
        v0, v1 = value[:, :-1], value[:, 1:]
        d0, d1 = slope[:, :-1] * spacing, slope[:, 1:] * spacing  # slopes per interval length
        a, b = v0, d0
        c = 3 * (v1 - v0) - 2 * d0 - d1
        d = 2 * (v0 - v1) + d0 + d1
        self.coefficients = torch.stack([a, b, c, d], dim=2).to(dtype).contiguous()  # (layers, M, 4, F)
        self.features = self.coefficients.shape[-1]
        self.by_layer = [layer.reshape(self.intervals, -1) for layer in self.coefficients]  # (M, 4F) views

    def locate(self, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each length's grid interval (P,) and position in it, t (P, 1) in [0, 1]."""
        x = lengths.detach() / self.spacing
        index = x.floor().long().clamp_(0, self.intervals - 1)
        # beyond the last knot (lengths at or past the cutoff) t stops at 1, where filter and slope are zero
        return index, (x - index).clamp_(max=1.0)[:, None].to(self.coefficients.dtype)

    def value(self, k: int, index: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Interaction ``k``'s filter times envelope (P, F) at the located lengths."""
        a, b, c, d = self.by_layer[k].index_select(0, index).view(len(index), 4, self.features).unbind(1)
        return torch.addcmul(a, torch.addcmul(b, torch.addcmul(c, d, t), t), t)

    def value_and_slope(self, k: int, index: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The value (P, F) and its derivative in t (P, F), from one gather: divide by ``spacing`` for the
        derivative per Å (left to the caller, who can do it once on a reduced tensor)."""
        a, b, c, d = self.by_layer[k].index_select(0, index).view(len(index), 4, self.features).unbind(1)
        slope = torch.addcmul(b, torch.addcmul(c, d, t, value=1.5), t, value=2.0)
        return torch.addcmul(a, torch.addcmul(b, torch.addcmul(c, d, t), t), t), slope

    @property
    def nbytes(self) -> int:
        return self.coefficients.numel() * self.coefficients.element_size()


def filter_and_slope(net, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every interaction's filter times envelope (layers, R, F) at lengths ``r`` (Å) and its derivative in r
    (per Å), exactly, in ``r``'s dtype, with the chain rule written out (no autograd)."""
    (rbf, drbf), (env, denv) = net.rbf.value_and_derivative(r), net.envelope.value_and_derivative(r)
    values, slopes = [], []
    for layer in net.interactions:
        first, last = layer.filter[0], layer.filter[2]
        w1, b1 = first.weight.to(r.dtype), first.bias.to(r.dtype)
        w2, b2 = last.weight.to(r.dtype), folded_bias(last).to(r.dtype)
        a = F.linear(rbf, w1, b1)
        filt = F.linear(F.softplus(a), w2, b2)
        dfilt = F.linear(torch.sigmoid(a) * (drbf @ w1.t()), w2)
        values.append(filt * env[:, None])
        slopes.append(dfilt * env[:, None] + filt * denv[:, None])
    return torch.stack(values), torch.stack(slopes)
