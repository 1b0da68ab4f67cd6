"""Pieces every training run shares: its config file, resumable batches, the Lightning trainer.

A run lives in one folder: ``run.json`` (its config; a rerun with another config is refused),
``logs/metrics.csv`` (Lightning's CSVLogger; parts of interrupted attempts kept beside it),
``ckpt/last.ckpt`` (atomic checkpoints: Lightning writes through an fsspec transaction, i.e. a
temporary file moved into place), resumed mid-epoch on the same batches.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
import lightning as L
import numpy as np
from lightning.fabric.utilities.rank_zero import _get_rank
from lightning.pytorch.callbacks import ModelCheckpoint, Timer
from torch.utils.data import DataLoader


def start_run(out: Path, run: dict) -> None:
    """Create the run folder and record its config; refuse to mix two configs in one folder."""
    out.mkdir(parents=True, exist_ok=True)
    run_file = out / "run.json"
    if run_file.exists() and json.loads(run_file.read_text()) != run:
        raise click.UsageError(f"{out} holds a run with another config ({run_file}); use a new --out")
    run_file.write_text(json.dumps(run, indent=2) + "\n")


class WallClock(L.Callback):
    """Wall time and this process's CPU time (all its threads), each summed over resumed attempts and kept in
    the Lightning checkpoint (seconds). CPU time is the compute a CPU run used, whatever else shared the machine
    or however long the run was paused; it is unknown (None) for a run resumed from a checkpoint without it."""

    def __init__(self):
        self.before, self.start = 0.0, time.time()
        self.cpu_before, self.cpu_start = 0.0, time.process_time()

    def elapsed(self) -> float:
        return self.before + time.time() - self.start

    def cpu(self) -> float | None:
        return None if self.cpu_before is None else self.cpu_before + time.process_time() - self.cpu_start

    def state_dict(self):
        return {"elapsed": self.elapsed(), "cpu": self.cpu()}

    def load_state_dict(self, state):
        self.before, self.start = state["elapsed"], time.time()
        self.cpu_before, self.cpu_start = state.get("cpu"), time.process_time()


class EpochBatchSampler:
    """Batches of a (seed, epoch) permutation, this rank's shard, skipping batches already trained on."""

    def __init__(self, n, batch_size, seed, rank=0, world_size=1, shuffle=True, epoch=lambda: 0):
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.epoch, self.skip = epoch, 0  # epoch: a callable giving the current epoch

    def __len__(self) -> int:
        if self.shuffle:  # equal whole batches on every rank (DDP needs the same step count)
            return self.n // self.world_size // self.batch_size
        return -(-len(range(self.rank, self.n, self.world_size)) // self.batch_size)

    def __iter__(self):
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch()]).permutation(self.n)
            order = order[: len(self) * self.batch_size * self.world_size]
        else:
            order = np.arange(self.n)
        shard = order[self.rank :: self.world_size]
        skip, self.skip = self.skip, 0
        for b in range(skip, len(self)):
            yield shard[b * self.batch_size : (b + 1) * self.batch_size].tolist()


class ResumableLoader(DataLoader):
    """A DataLoader whose position inside the epoch is saved in Lightning checkpoints.

    ``progress`` returns (epoch, batches processed in it); on load, the sampler skips those.
    """

    def __init__(self, dataset, batch_sampler: EpochBatchSampler, progress, collate_fn):
        super().__init__(dataset, batch_sampler=batch_sampler, collate_fn=collate_fn)
        self.progress = progress

    def state_dict(self) -> dict:
        epoch, done = self.progress()
        return {"epoch": epoch, "batches_done": done}

    def load_state_dict(self, state: dict) -> None:
        self.batch_sampler.skip = state["batches_done"] % max(len(self.batch_sampler), 1)


class ShardedDataModule(L.LightningDataModule):
    """Train/val loaders over in-memory datasets, sharded by rank, resumable mid-epoch."""

    def __init__(self, batch_size: int, seed: int, collate_fn):
        super().__init__()
        self.batch_size, self.seed, self.collate_fn = batch_size, seed, collate_fn

    def _rank(self) -> tuple[int, int]:
        return (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)

    def _progress(self) -> tuple[int, int]:
        return self.trainer.current_epoch, self.trainer.fit_loop.epoch_loop.batch_progress.current.processed

    def train_dataloader(self) -> ResumableLoader:
        rank, world = self._rank()
        epoch = (lambda: self.trainer.current_epoch) if self.trainer else (lambda: 0)
        sampler = EpochBatchSampler(len(self.train_set), self.batch_size, self.seed, rank, world, epoch=epoch)
        return ResumableLoader(self.train_set, sampler, self._progress, self.collate_fn)

    def val_dataloader(self) -> DataLoader:
        rank, world = self._rank()
        sampler = EpochBatchSampler(len(self.val_set), self.batch_size, self.seed, rank, world, shuffle=False)
        return DataLoader(self.val_set, batch_sampler=sampler, collate_fn=self.collate_fn)


class FlushLogsOnCheckpoint(L.Callback):
    """Write buffered CSV rows whenever a checkpoint is taken, so a killed run loses no logged step."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        if trainer.logger is not None:
            trainer.logger.save()


def start_log_part(logs: Path) -> None:
    """Lightning's CSVLogger rewrites metrics.csv on resume: keep the earlier part beside it."""
    current = logs / "metrics.csv"
    if current.exists():
        parts = sorted(logs.glob("metrics.part*.csv"))
        current.replace(logs / f"metrics.part{len(parts):03d}.csv")


class FitStepsToBudget(L.Callback):
    """With a wall-time budget, plan the run's steps after ``measure`` steps from their pace: training then stops
    at ``planned_steps`` (at most ``max_steps``) instead of being cut by the clock, so a schedule over the planned
    steps (cosine) ends annealed. Every ``measure`` steps after that the plan is checked against the slower of the
    pace so far and the last ``measure`` steps' pace, and shortened if it would overrun the budget (never
    lengthened: the schedule only bends when the machine slows down; each change is printed and kept in
    ``replans``). Modules read ``planned_steps`` (None until planned); the plan is kept in the checkpoint and
    broadcast from rank 0. ``--max-steps planned_steps`` without a budget repeats a run that was not re-planned
    free of the clock (the first ``measure`` steps' rates then differ in the fourth digit)."""

    MARGIN = 0.9  # of the time left: a slower pace later, the final save

    def __init__(self, minutes: float, measure: int = 50):
        self.minutes, self.measure = minutes, measure
        self.planned_steps: int | None = None
        self.replans: list[list[int]] = []  # [at step, new plan] for each shortening
        self._start_step = self._start_time = self._last_step = self._last_time = None

    def _apply(self, trainer, pl_module):
        pl_module.planned_steps = self.planned_steps
        if self.planned_steps is not None:
            trainer.fit_loop.epoch_loop.max_steps = self.planned_steps

    def on_train_start(self, trainer, pl_module):
        self._apply(trainer, pl_module)
        self._start_step = self._last_step = trainer.global_step
        self._start_time = self._last_time = time.time()

    def _fitting(self, trainer, per_step: float) -> int:
        timer = next(c for c in trainer.callbacks if isinstance(c, Timer))  # Lightning's clock (max_time), kept over resumes
        left = timer.time_remaining("train") or 0.0
        planned = trainer.global_step + max(0, int(self.MARGIN * left / per_step))
        return min(planned, trainer.max_steps) if trainer.max_steps > 0 else planned

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step, now = trainer.global_step, time.time()
        if step - self._last_step < self.measure:
            return
        overall = (now - self._start_time) / (step - self._start_step)
        recent = (now - self._last_time) / (step - self._last_step)
        self._last_step, self._last_time = step, now
        if self.planned_steps is None:
            self.planned_steps = int(trainer.strategy.broadcast(self._fitting(trainer, overall), src=0))
            click.echo(f"{overall:.2f} s a step: planned {self.planned_steps} steps within the "
                       f"{self.minutes:g}-minute budget (--max-steps {self.planned_steps} repeats it without the "
                       "clock)", err=True)
        else:
            pace = max(overall, recent)
            shorter = int(trainer.strategy.broadcast(min(self._fitting(trainer, pace), self.planned_steps), src=0))
            if shorter >= self.planned_steps:
                return
            self.planned_steps = shorter
            self.replans.append([step, shorter])
            click.echo(f"{pace:.2f} s a step now: plan shortened to {shorter} steps at step {step} "
                       "to end annealed within the budget", err=True)
        self._apply(trainer, pl_module)

    def state_dict(self):
        return {"planned_steps": self.planned_steps, "replans": self.replans}

    def load_state_dict(self, state):
        self.planned_steps = state.get("planned_steps")
        self.replans = state.get("replans", [])


def fit(module: L.LightningModule, data: L.LightningDataModule, run: dict, out: Path, callbacks=(),
        **trainer_kwargs) -> tuple[L.Trainer, WallClock]:
    """Train (resuming from ``out/ckpt/last.ckpt`` if present) with CSV logs and periodic checkpoints.

    ``run`` may name ``accelerator`` ("cpu", "gpu", "auto"; default cpu) and ``max_minutes`` (a wall-time
    budget: the steps that fit it are planned after the first 50 and shortened if the pace slows
    (``FitStepsToBudget``), and the clock stops training cleanly if the plan still overruns; the run is finished as
    if its epochs were done).
    """
    if (_get_rank() or 0) == 0:  # before the logger exists: it deletes a metrics.csv it finds
        start_log_part(out / "logs")
    clock = WallClock()
    ckpt = ModelCheckpoint(dirpath=out / "ckpt", save_last=True, save_top_k=0,
                           every_n_train_steps=run["ckpt_every"], save_on_train_epoch_end=True)
    accelerator = run.get("accelerator", "cpu")
    max_minutes = run.get("max_minutes")
    if max_minutes is not None:
        callbacks = (FitStepsToBudget(max_minutes), *callbacks)
    trainer = L.Trainer(
        max_epochs=run["epochs"], max_steps=run.get("max_steps", -1),
        max_time=None if max_minutes is None else {"minutes": max_minutes},
        accelerator=accelerator, devices=run["devices"],
        strategy="ddp" if run["devices"] > 1 else "auto", use_distributed_sampler=False,
        logger=L.pytorch.loggers.CSVLogger(out, name="", version="logs", flush_logs_every_n_steps=50),
        callbacks=[ckpt, clock, FlushLogsOnCheckpoint(), *callbacks], log_every_n_steps=1,
        # CPU runs are bitwise reproducible; on GPUs the atomic adds of scatter/index_add are not.
        deterministic=accelerator == "cpu",
        enable_model_summary=False, num_sanity_val_steps=0, **trainer_kwargs,
    )
    last = out / "ckpt" / "last.ckpt"
    trainer.fit(module, datamodule=data, ckpt_path=last if last.exists() else None)
    return trainer, clock
