"""Train one ChemGPT (one preset, one number of training molecules, one seed) on MOSES.

    python -m training.chemgpt.train --preset small-l6-h192 --n-train 250000 --epochs 3 --out runs/x

Continue a finished checkpoint on more molecules (its weights and tokenizer; a fresh optimiser):

    python -m training.chemgpt.train --init hub_upload/kept/chemgpt-2.7m-moses --n-train 750000 \
        --epochs 1 --lr 5e-4 --out runs/y

trains on molecules 250,000 to 750,000 of the seeded MOSES permutation whose first 250,000 the
checkpoint saw (its seed must be the run's), so the result has seen the plain 750,000-molecule subset.

Writes into ``--out``: ``run.json`` (the full config), ``logs/metrics.csv`` (per-step train loss,
per-epoch validation loss, nats/token), ``ckpt/last.ckpt`` (atomic Lightning checkpoints; a rerun
of the same command resumes from it on the same curve), and at the end ``checkpoint/`` (the
Hugging Face folder), ``curve.csv`` and ``metrics.json`` plus one row in ``results.csv``.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import lightning as L

from chemzoo.lm.model import load_chemgpt
from chemzoo.lm.presets import PRESETS, chemgpt_config
from chemzoo.lm.tokenizer import build_tokenizer
from training.chemgpt.data import ChemGPTDataModule, load_corpus
from training.chemgpt.module import ChemGPTModule
from training.common import fit, start_run
from training.results import finish_run


@click.command()
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="small-l6-h192", show_default=True)
@click.option("--n-train", type=click.IntRange(min=1), default=250_000, show_default=True, help="Training molecules (MOSES train).")
@click.option("--n-val", type=click.IntRange(min=1), default=10_000, show_default=True, help="Validation molecules (MOSES test).")
@click.option("--epochs", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--max-steps", type=int, default=-1, show_default=True, help="Stop after this many optimizer steps (-1: epochs decide).")
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True, help="Molecules per step per process.")
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--devices", type=click.IntRange(min=1), default=1, show_default=True, help="Processes (DDP when > 1).")
@click.option("--ckpt-every", type=click.IntRange(min=1), default=200, show_default=True, help="Steps between checkpoints.")
@click.option("--name", default=None, help="Model name recorded in the checkpoint (default: chemgpt-<preset>-n<n_train>-s<seed>).")
@click.option("--init", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Continue this ChemGPT checkpoint folder (its preset, weights and tokenizer) on the molecules after the ones it saw.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
def main(preset, n_train, n_val, epochs, max_steps, batch_size, lr, seed, devices, ckpt_every, name, init, out):
    """Train (or resume) one ChemGPT run."""
    extra = {}
    if init is not None:
        start = continued_run(init, seed, n_train)
        preset, extra = start["preset"], {"init": str(init), "init_name": start["name"], "init_n_train": start["n_train"]}
    name = name or f"chemgpt-{preset}-n{n_train}-s{seed}"
    run = dict(family="chemgpt", name=name, preset=preset, n_train=n_train, n_val=n_val, epochs=epochs,
               max_steps=max_steps, batch_size=batch_size, lr=lr, seed=seed, devices=devices, ckpt_every=ckpt_every,
               **extra)
    train(run, out)


def continued_run(init: Path, seed: int, n_train: int) -> dict:
    """The metadata of a checkpoint a run continues; refuses one this run's data cannot extend."""
    meta_file = init / "chemzoo.json"
    if not meta_file.exists():
        raise click.UsageError(f"--init {init} has no chemzoo.json: only a chemzoo ChemGPT checkpoint records the molecules it saw")
    meta = json.loads(meta_file.read_text())
    if meta.get("family") != "chemgpt" or meta.get("training_data") != "MOSES train (random subset)":
        raise click.UsageError(f"--init {init} is not a ChemGPT trained on a MOSES train subset")
    if meta["seed"] != seed:
        raise click.UsageError(f"--init {init} saw the MOSES subset of seed {meta['seed']}; pass --seed {meta['seed']}")
    if n_train <= meta["n_train"]:
        raise click.UsageError(f"--init {init} already saw {meta['n_train']:,} molecules; --n-train must be larger")
    return meta


def train(run: dict, out: Path, callbacks: tuple = ()) -> dict | None:
    """Train or resume the run described by ``run`` in folder ``out``; returns its metrics (rank 0)."""
    start_run(out, run)
    L.seed_everything(run["seed"], workers=True)
    skip = run.get("init_n_train", 0)
    corpus = load_corpus(run["n_train"], run["n_val"], run["seed"], skip=skip)
    if run.get("init"):  # the checkpoint's own token ids; a molecule outside them is an error when tokenizing
        start = load_chemgpt(run["init"])
        tokenizer, config = start.tokenizer, start.model.config.to_dict()
    else:
        tokenizer = build_tokenizer(corpus.train_selfies + corpus.val_selfies)
        config = chemgpt_config(run["preset"], tokenizer.vocab_size).to_dict()
    steps_per_epoch = len(corpus.train_selfies) // (run["batch_size"] * run["devices"])
    total = run["max_steps"] if run["max_steps"] > 0 else run["epochs"] * steps_per_epoch
    module = ChemGPTModule(config, lr=run["lr"], total_steps=total, warmup_steps=min(500, max(1, total // 10)))
    if run.get("init"):  # a resumed attempt then loads its own state from ckpt/last.ckpt over this
        module.model.load_state_dict(start.model.state_dict())
    data = ChemGPTDataModule(corpus, tokenizer, run["batch_size"], run["seed"])
    trainer, clock = fit(module, data, run, out, callbacks, gradient_clip_val=1.0)
    if trainer.interrupted or not trainer.is_global_zero:
        return None
    return finish_run(out, run, module.model, tokenizer, corpus.train_smiles, clock.elapsed(), clock.cpu())


if __name__ == "__main__":
    main()
