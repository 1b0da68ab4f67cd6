"""Power-law fits of loss against model and data size, with bootstrap confidence intervals.

Three forms (x: parameters or training-set size; L: a loss, lower is better):

- ``power``:  L(x) = a x^-alpha
- ``offset``: L(x) = c + a x^-alpha                (an irreducible loss c)
- ``joint``:  L(N, D) = E + A N^-alpha + B D^-beta  (Hoffmann et al. 2022)

Every form is fitted in log space, log L = LSE(terms), by minimising a Huber loss of the log
residuals (``delta`` = 1e-3, as Hoffmann et al. and Besiroglu et al. 2024) with
``scipy.optimize.least_squares`` from several starting points, keeping the best. Confidence
intervals (95 % by default) are percentiles of the parameters refitted on bootstrap resamples of the
runs (rows drawn with replacement), and a prediction's band is the same percentile of the resampled
fits' predictions.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from chemzoo.scaling.table import ScalingDataError

DELTA = 1e-3  # Huber threshold on log residuals
PARAMS = {"power": ("a", "alpha"), "offset": ("c", "a", "alpha"), "joint": ("E", "A", "alpha", "B", "beta")}


def _log_model(form: str, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """log L for internal parameters ``theta`` (logs of the scale parameters, exponents as they are)."""
    if form == "power":
        log_a, alpha = theta
        return log_a - alpha * np.log(x)
    if form == "offset":
        log_c, log_a, alpha = theta
        return np.logaddexp(log_c, log_a - alpha * np.log(x))
    log_e, log_a, alpha, log_b, beta = theta
    n, d = x
    return np.logaddexp(np.logaddexp(log_e, log_a - alpha * np.log(n)), log_b - beta * np.log(d))


def _to_params(form: str, theta: np.ndarray) -> np.ndarray:
    """Internal parameters -> reported ones, in ``PARAMS[form]`` order (scales un-logged)."""
    theta = np.asarray(theta, dtype=float)
    out = theta.copy()
    logs = {"power": [0], "offset": [0, 1], "joint": [0, 1, 3]}[form]
    out[logs] = np.exp(theta[logs])
    return out


def _starts(form: str, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """Starting points: for each exponent guess, scales that put the curve through the data."""
    log_y = np.log(y)
    if form == "power":
        slope, intercept = np.polyfit(np.log(x), log_y, 1)
        return [np.array([intercept, -slope]), np.array([log_y.mean(), 0.1]), np.array([log_y.mean(), 1.0])]
    if form == "offset":
        out = []
        for frac, alpha in itertools.product((0.3, 0.8, 0.98), (0.1, 0.3, 1.0)):
            c = frac * y.min()
            a = max(float(np.median((y - c) * x**alpha)), 1e-300)
            out.append(np.array([np.log(c), np.log(a), alpha]))
        return out
    n, d = x
    out = []
    for frac, alpha, beta in itertools.product((0.3, 0.8), (0.1, 0.3, 0.7), (0.1, 0.3, 0.7)):
        e = frac * y.min()
        rest = max(float(np.median(y - e)), 1e-12) / 2
        a = rest * float(np.exp(np.median(np.log(n)))) ** alpha
        b = rest * float(np.exp(np.median(np.log(d)))) ** beta
        out.append(np.array([np.log(e), np.log(a), alpha, np.log(b), beta]))
    return out


def _solve(form: str, x: np.ndarray, y: np.ndarray, starts: list[np.ndarray], delta: float) -> np.ndarray | None:
    log_y = np.log(y)
    best, best_cost = None, np.inf
    n_exp = {"power": [1], "offset": [2], "joint": [2, 4]}[form]
    lower = np.full(len(starts[0]), -np.inf)
    upper = np.full(len(starts[0]), np.inf)
    lower[n_exp], upper[n_exp] = 0.0, 5.0  # exponents: losses fall, and not faster than x^-5
    upper[[i for i in range(len(lower)) if i not in n_exp]] = 700.0  # exp() stays finite
    for start in starts:
        start = np.clip(start, lower + 1e-9, upper - 1e-9)
        try:
            sol = least_squares(lambda t: _log_model(form, t, x) - log_y, start, loss="huber", f_scale=delta,
                                bounds=(lower, upper), method="trf", max_nfev=2000)
        except (ValueError, FloatingPointError):
            continue
        if np.isfinite(sol.cost) and sol.cost < best_cost:
            best, best_cost = sol.x, sol.cost
    return best


@dataclass
class Fit:
    """A fitted power law: ``params`` (name -> value), ``ci`` (name -> (low, high)), the bootstrap draws."""

    form: str
    params: dict[str, float]
    ci: dict[str, tuple[float, float]]
    n_points: int
    level: float = 0.95
    draws: np.ndarray = field(default=None, repr=False)  # (n_boot, n_params), reported parametrisation
    x_range: tuple = ()  # (min, max) of x, or of (N, D) for the joint form

    def predict(self, x, y=None) -> np.ndarray:
        """L at x (or at N = x, D = y for the joint form)."""
        return self._predict(np.array([self.params[k] for k in PARAMS[self.form]]), x, y)

    def _predict(self, p: np.ndarray, x, y=None) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        if self.form == "power":
            return p[0] * x ** -p[1]
        if self.form == "offset":
            return p[0] + p[1] * x ** -p[2]
        if y is None:
            raise ValueError("the joint form needs both N and D")
        return p[0] + p[1] * x ** -p[2] + p[3] * np.asarray(y, dtype=float) ** -p[4]

    def band(self, x, y=None) -> tuple[np.ndarray, np.ndarray]:
        """The ``level`` band of the prediction at x (or (N, D)), from the bootstrap fits."""
        preds = np.array([self._predict(p, x, y) for p in self.draws])
        q = 100 * (1 - self.level) / 2
        return np.percentile(preds, q, axis=0), np.percentile(preds, 100 - q, axis=0)

    def to_dict(self) -> dict:
        out = {"form": self.form, "n_points": self.n_points, "level": self.level, "n_bootstrap": len(self.draws)}
        for name in PARAMS[self.form]:
            out[name] = self.params[name]
            out[f"{name}_ci"] = list(self.ci[name])
        return out


def fit(x, y, form: str = "power", n_boot: int = 1000, level: float = 0.95, seed: int = 0,
        delta: float = DELTA, where: str = "data", x_name: str = "x") -> Fit:
    """Fit ``form`` to runs (x, y) - for the joint form x is (N, D) - with bootstrap CIs over runs.

    ``where`` names the data and ``x_name`` the size variable in error messages. Needs positive, finite values and at least 3
    distinct x values (for the joint form, 3 distinct N and 3 distinct D, and 6 runs).
    """
    if form not in PARAMS:
        raise ValueError(f"unknown form {form!r}; choose one of {', '.join(PARAMS)}")
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    if form == "joint":
        if x.ndim != 2 or x.shape[0] != 2:
            raise ValueError("the joint form needs x = (N, D)")
        for name, values in zip(("N", "D"), x):
            _check(values, name, where)
        if len(y) < 6:
            raise ScalingDataError(f"{where}: {len(y)} runs; the joint fit has 5 parameters and needs at least 6")
    else:
        _check(x, x_name, where)
    _check(y, "y", where, distinct=False)
    best = _solve(form, x, y, _starts(form, x, y), delta)
    if best is None:
        raise ScalingDataError(f"{where}: the {form} fit did not converge from any starting point")
    rng = np.random.default_rng(seed)
    draws = []
    n = len(y)
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        xb = x[:, idx] if form == "joint" else x[idx]
        if any(len(np.unique(v)) < 3 for v in (xb if form == "joint" else [xb])):
            continue  # a resample without 3 distinct sizes pins nothing down; draw again
        theta = _solve(form, xb, y[idx], [best], delta)
        if theta is not None:
            draws.append(_to_params(form, theta))
    if len(draws) < max(10, n_boot // 2):
        raise ScalingDataError(f"{where}: too few usable bootstrap resamples ({len(draws)} of {n_boot}); add runs")
    draws = np.array(draws)
    q = 100 * (1 - level) / 2
    names = PARAMS[form]
    point = _to_params(form, best)
    ci = {k: (float(np.percentile(draws[:, i], q)), float(np.percentile(draws[:, i], 100 - q))) for i, k in enumerate(names)}
    x_range = tuple((float(v.min()), float(v.max())) for v in x) if form == "joint" else (float(x.min()), float(x.max()))
    return Fit(form, dict(zip(names, map(float, point))), ci, n, level, draws, x_range)


def _check(values: np.ndarray, name: str, where: str, distinct: bool = True) -> None:
    if values.ndim != 1 or len(values) == 0:
        raise ScalingDataError(f"{where}: {name} must be a non-empty list of numbers")
    bad = ~np.isfinite(values) | (values <= 0)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ScalingDataError(f"{where}: {name}[{k}] = {float(values[k])}; a power law needs positive, finite values")
    if distinct and len(np.unique(values)) < 3:
        raise ScalingDataError(f"{where}: {name} has {len(np.unique(values))} distinct value(s); a power-law fit "
                               "needs at least 3")


@dataclass
class Allocation:
    """Compute-optimal model size N, data D and the loss predicted there, each with its band."""

    budget: float
    n: float
    d: float
    loss: float
    n_band: tuple[float, float]
    d_band: tuple[float, float]
    loss_band: tuple[float, float]


def compute_optimal(joint: Fit, budget: float, flops_per_param_and_unit: float = 6.0) -> Allocation:
    """Minimise E + A/N^alpha + B/D^beta subject to C = k N D (k = ``flops_per_param_and_unit``;
    6 per parameter and training token for a transformer, so D in tokens or k = 6 x tokens per unit
    of D). Closed form (Hoffmann et al. eq. 4): N = G (C/k)^(beta/(alpha+beta)), G = (alpha A / (beta B))^(1/(alpha+beta))."""
    if joint.form != "joint":
        raise ValueError("compute_optimal needs a joint fit")
    if not np.isfinite(budget) or budget <= 0:
        raise ScalingDataError(f"budget {budget!r}: give a positive number of FLOPs")
    units = budget / flops_per_param_and_unit

    def solve(p):
        e, a, alpha, b, beta = p
        g = (alpha * a / (beta * b)) ** (1 / (alpha + beta))
        n = g * units ** (beta / (alpha + beta))
        d = units / n
        return n, d, e + a * n**-alpha + b * d**-beta

    with np.errstate(all="ignore"):
        point = solve(np.array([joint.params[k] for k in PARAMS["joint"]]))
        draws = np.array([solve(p) for p in joint.draws])
    draws = draws[np.isfinite(draws).all(axis=1)]
    q = 100 * (1 - joint.level) / 2
    lo, hi = np.percentile(draws, q, axis=0), np.percentile(draws, 100 - q, axis=0)
    return Allocation(budget, float(point[0]), float(point[1]), float(point[2]), (lo[0], hi[0]), (lo[1], hi[1]),
                      (lo[2], hi[2]))
