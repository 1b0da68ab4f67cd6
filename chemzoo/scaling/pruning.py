"""Training speed estimation while training: a Lightning callback that stops a configuration early when
its TSE, after the first ``fraction`` of its planned steps, does not rank among the ``keep`` best of the
sweep so far (needs ``lightning``: ``pip install chemzoo[train]``).

    rivals = []                                   # TSEs of the sweep's earlier runs at the same fraction
    for config in sweep:
        pruning = TrainingSpeedPruning(rivals, fraction=0.1, keep=2)
        trainer = lightning.Trainer(..., callbacks=[pruning])
        trainer.fit(module, loader)
        rivals.append(pruning.estimate)           # pruning.pruned: stopped after 10 % of its steps

With configurations run one after another this is the pruner of a sequential search (as Optuna's are):
the first ``keep`` runs always finish, and a later run trains on only while its estimate is among the
best ``keep`` seen. TSE, TSE-E and TSE-EMA are ``chemzoo.scaling.tse.estimates`` on the per-step
training losses the module logs as ``train_loss`` (or returns as its loss).
"""

from __future__ import annotations

import math

import lightning as L
import numpy as np

from chemzoo.scaling.table import ScalingDataError
from chemzoo.scaling.tse import ESTIMATORS, RunCurve, estimates, window_steps


class TrainingSpeedPruning(L.Callback):
    """Stop training after ``fraction`` of the planned steps unless this run's training speed estimate is
    among the ``keep`` lowest of ``rivals`` and itself. After the decision: ``estimate`` (this run's value)
    and ``pruned`` (whether it was stopped)."""

    def __init__(self, rivals, fraction: float = 0.1, keep: int = 2, estimator: str = "tse", gamma: float = 0.999,
                 monitor: str = "train_loss"):
        if estimator not in ESTIMATORS:
            raise ScalingDataError(f"unknown estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}")
        if not 0 < fraction < 1 or keep < 1:
            raise ScalingDataError(f"fraction must be in (0, 1) and keep >= 1, got {fraction!r} and {keep!r}")
        self.rivals, self.fraction, self.keep = [float(r) for r in rivals], fraction, keep
        self.estimator, self.gamma, self.monitor = estimator, gamma, monitor
        self.losses: list[float] = []
        self.estimate: float | None = None
        self.pruned = False

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.estimate is not None:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is None:
            loss = trainer.callback_metrics.get(self.monitor)
        self.losses.append(float(loss))
        planned = int(trainer.estimated_stepping_batches)
        if len(self.losses) < window_steps(self.fraction, planned):
            return
        per_epoch = max(1, int(trainer.num_training_batches)) if math.isfinite(trainer.num_training_batches) else 1
        steps = np.arange(len(self.losses))
        curve = RunCurve("this run", steps, steps // per_epoch, np.array(self.losses), per_epoch, planned, None)
        self.estimate = estimates(curve, self.fraction, self.gamma)[self.estimator]
        rank = sum(r < self.estimate for r in self.rivals)  # how many rivals did better
        if rank >= self.keep:
            self.pruned = True
            trainer.should_stop = True
