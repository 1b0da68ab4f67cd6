"""Training speed estimation: rank training configurations from the first part of their loss curves.

Ru et al. (NeurIPS 2021, "Speedy performance estimation for neural architecture search") showed
that the sum of training losses over the first epochs ranks configurations by their final
validation loss; Frey et al. 2023 used it to tune ChemGPT and the potentials, cutting tuning cost
by up to 90 %. (Not Optuna's "TPE", an unrelated sampler.)

From a run's per-step training losses l_1 .. l_S over the first ``fraction`` of its planned steps,
with B steps per epoch:

- TSE      = (1/B) sum_s l_s                      the epochs' mean losses, summed (area under the curve)
- TSE-E    = (1/B) sum over the last E*B steps    the last E epochs of the window (E = 1)
- TSE-EMA  = sum_s g^(S-s) l_s / sum_s g^(S-s)    an exponential moving average of the step losses (g = 0.999)

Lower is better for all three. A run folder holds ``curve.csv`` (chemzoo's training records) or
Lightning's ``logs/metrics.csv`` (and the ``metrics.part*.csv`` of resumed attempts), with
``step``, ``epoch``, ``train_loss`` and per-epoch ``val_loss`` columns, and ``run.json`` (epochs).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chemzoo.scaling.table import ScalingDataError

ESTIMATORS = ("tse", "tse-e", "tse-ema")


def read_logs(logs: Path) -> list[dict]:
    """Rows of Lightning's ``metrics.csv`` and the ``metrics.part*.csv`` of earlier, interrupted attempts,
    one per step and kind (train/val), later rows winning: a resumed run relogs the steps after its
    last checkpoint."""
    return _merge([*sorted(Path(logs).glob("metrics.part*.csv")), Path(logs) / "metrics.csv"])


def read_curve(run_dir: Path) -> list[dict]:
    """A run's loss log: its ``curve.csv`` (written when it finished) or else its Lightning logs."""
    run_dir = Path(run_dir)
    return _merge([run_dir / "curve.csv"]) if (run_dir / "curve.csv").exists() else read_logs(run_dir / "logs")


def _merge(parts: list[Path]) -> list[dict]:
    by_key: dict[tuple, dict] = {}
    for part in parts:
        if not part.exists():
            continue
        with open(part) as f:
            for row in csv.DictReader(f):
                kind = "val" if row.get("val_loss") else "train"
                by_key[(int(float(row["step"])), kind)] = {k: v for k, v in row.items() if v not in ("", None)}
    return [by_key[k] for k in sorted(by_key)]


@dataclass
class RunCurve:
    """A run's training losses by step, its plan and its final validation loss (None while running)."""

    name: str
    steps: np.ndarray
    epochs: np.ndarray
    train_loss: np.ndarray
    steps_per_epoch: int
    planned_steps: int
    final_val_loss: float | None
    wall_time_s: float | None = None  # as recorded in metrics.json
    cpu_time_s: float | None = None

    @classmethod
    def from_dir(cls, run_dir: str | Path) -> "RunCurve":
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise ScalingDataError(f"{run_dir}: no such run folder")
        rows = read_curve(run_dir)
        train = [r for r in rows if "train_loss" in r]
        if not train:
            raise ScalingDataError(f"{run_dir}: no per-step training losses (curve.csv or logs/metrics.csv)")
        steps = np.array([int(float(r["step"])) for r in train])
        epochs = np.array([int(float(r["epoch"])) for r in train])
        loss = np.array([float(r["train_loss"]) for r in train])
        if not np.isfinite(loss).all():
            k = int(np.flatnonzero(~np.isfinite(loss))[0])
            raise ScalingDataError(f"{run_dir}: training loss at step {steps[k]} is {loss[k]}; a diverged run "
                                   "cannot be ranked (drop it or rank it last)")
        run = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
        per_epoch = _steps_per_epoch(run, epochs)
        if per_epoch is None:
            raise ScalingDataError(f"{run_dir}: its first epoch has not ended and run.json gives no n_train and "
                                   "batch_size: cannot tell the steps per epoch")
        planned = len(steps)
        if run.get("max_steps", -1) and run.get("max_steps", -1) > 0:
            planned = int(run["max_steps"])
        elif run.get("epochs"):
            planned = int(run["epochs"]) * per_epoch
        val = [float(r["val_loss"]) for r in rows if "val_loss" in r]
        finished = len(steps) >= planned
        metrics = run_dir / "metrics.json"
        recorded = json.loads(metrics.read_text())["metrics"] if metrics.exists() else {}
        times = [float(recorded[k]) if recorded.get(k) else None for k in ("wall_time_s", "cpu_time_s")]
        return cls(run.get("name", run_dir.name), steps, epochs, loss, per_epoch, planned,
                   val[-1] if (val and finished) else None, *times)

    def window(self, fraction: float) -> np.ndarray:
        """Training losses of the first ``fraction`` of the planned steps."""
        if not 0 < fraction <= 1:
            raise ScalingDataError(f"fraction {fraction!r}: give a number in (0, 1]")
        n = window_steps(fraction, self.planned_steps)
        if len(self.train_loss) < n:
            raise ScalingDataError(f"{self.name}: {len(self.train_loss)} steps logged, {n} needed for the first "
                                   f"{fraction:.0%} of its {self.planned_steps} planned steps")
        return self.train_loss[:n]


def _steps_per_epoch(run: dict, epochs: np.ndarray) -> int | None:
    """From the plan (molecules or structures per epoch over the global batch), else from the log."""
    if run.get("n_train") and run.get("batch_size"):
        return max(1, int(run["n_train"]) // (int(run["batch_size"]) * int(run.get("devices") or 1)))
    complete = [e for e in np.unique(epochs) if (epochs > e).any()]
    return int(max((epochs == e).sum() for e in complete)) if complete else None


def window_steps(fraction: float, planned_steps: int) -> int:
    """How many first steps the estimates read: ``fraction`` of the planned steps, at least one."""
    return max(1, int(np.floor(fraction * planned_steps)))


def estimates(curve: RunCurve, fraction: float = 0.2, gamma: float = 0.999, last_epochs: int = 1) -> dict[str, float]:
    """TSE, TSE-E and TSE-EMA of a run over the first ``fraction`` of its training (lower is better)."""
    losses = curve.window(fraction)
    b = curve.steps_per_epoch
    weights = gamma ** np.arange(len(losses) - 1, -1, -1, dtype=float)
    return {"tse": float(losses.sum() / b),
            "tse-e": float(losses[-last_epochs * b:].sum() / b),
            "tse-ema": float((weights * losses).sum() / weights.sum())}


@dataclass
class Ranking:
    """Runs ordered by an estimator, and how that order agrees with the final validation losses."""

    estimator: str
    fraction: float
    rows: list[dict]  # name, tse, tse-e, tse-ema, final_val_loss, cost, in order (best first)
    spearman: float | None  # rank correlation of the estimator with the final validation loss
    best_in_top: bool | None  # the finally best run is among the ``keep`` first
    compute_saved: float | None  # fraction of the sweep's cost saved by training only the ``keep`` first on
    keep: int = 2
    cost_unit: str = "steps"  # what "cost" counts: "cpu_s", "wall_s" or "steps" (the same for every run)


def sweep_costs(curves: list[RunCurve]) -> tuple[str, list[float]]:
    """Each run's cost in one unit for the whole sweep: CPU seconds where every run recorded them (a CPU sweep:
    unaffected by pauses or other jobs), else wall seconds, else planned steps."""
    if all(c.cpu_time_s for c in curves):
        return "cpu_s", [c.cpu_time_s for c in curves]
    if all(c.wall_time_s for c in curves):
        return "wall_s", [c.wall_time_s for c in curves]
    return "steps", [float(c.planned_steps) for c in curves]


def rank_runs(run_dirs, fraction: float = 0.2, estimator: str = "tse", gamma: float = 0.999, last_epochs: int = 1,
              keep: int = 2) -> Ranking:
    """Rank runs by a training speed estimate after ``fraction`` of their training."""
    if estimator not in ESTIMATORS:
        raise ScalingDataError(f"unknown estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}")
    curves = [RunCurve.from_dir(d) for d in run_dirs]
    if len(curves) < 2:
        raise ScalingDataError("give at least two run folders to rank")
    unit, costs = sweep_costs(curves)
    rows = [{"name": c.name, **estimates(c, fraction, gamma, last_epochs), "final_val_loss": c.final_val_loss,
             "cost": cost} for c, cost in zip(curves, costs)]
    rows.sort(key=lambda r: r[estimator])
    finals = [r["final_val_loss"] for r in rows]
    spearman = best_in_top = saved = None
    if all(v is not None for v in finals):
        from scipy.stats import spearmanr

        if len(rows) >= 3:
            spearman = float(spearmanr([r[estimator] for r in rows], finals).statistic)
        best_in_top = int(np.argmin(finals)) < keep
        total = sum(r["cost"] for r in rows)
        spent = sum(fraction * r["cost"] for r in rows) + sum((1 - fraction) * r["cost"] for r in rows[:keep])
        saved = 1 - spent / total
    return Ranking(estimator, fraction, rows, spearman, best_in_top, saved, keep, unit)
