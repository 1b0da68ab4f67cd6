"""Train one ChemGPT (one preset, one number of training molecules, one seed) on MOSES.

    python -m training.chemgpt.train --preset small-l6-h192 --n-train 250000 --epochs 3 --out runs/x

Writes into ``--out``: ``run.json`` (the full config), ``logs/metrics.csv`` (per-step train loss,
per-epoch validation loss, nats/token), ``ckpt/last.ckpt`` (atomic Lightning checkpoints; a rerun
of the same command resumes from it on the same curve), and at the end ``checkpoint/`` (the
Hugging Face folder), ``curve.csv`` and ``metrics.json`` plus one row in ``results.csv``.
"""

from __future__ import annotations

from pathlib import Path

import click
import lightning as L

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
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
def main(preset, n_train, n_val, epochs, max_steps, batch_size, lr, seed, devices, ckpt_every, name, out):
    """Train (or resume) one ChemGPT run."""
    name = name or f"chemgpt-{preset}-n{n_train}-s{seed}"
    run = dict(family="chemgpt", name=name, preset=preset, n_train=n_train, n_val=n_val, epochs=epochs,
               max_steps=max_steps, batch_size=batch_size, lr=lr, seed=seed, devices=devices, ckpt_every=ckpt_every)
    train(run, out)


def train(run: dict, out: Path, callbacks: tuple = ()) -> dict | None:
    """Train or resume the run described by ``run`` in folder ``out``; returns its metrics (rank 0)."""
    start_run(out, run)
    L.seed_everything(run["seed"], workers=True)
    corpus = load_corpus(run["n_train"], run["n_val"], run["seed"])
    tokenizer = build_tokenizer(corpus.train_selfies + corpus.val_selfies)
    config = chemgpt_config(run["preset"], tokenizer.vocab_size).to_dict()
    steps_per_epoch = run["n_train"] // (run["batch_size"] * run["devices"])
    total = run["max_steps"] if run["max_steps"] > 0 else run["epochs"] * steps_per_epoch
    module = ChemGPTModule(config, lr=run["lr"], total_steps=total, warmup_steps=min(500, max(1, total // 10)))
    data = ChemGPTDataModule(corpus, tokenizer, run["batch_size"], run["seed"])
    trainer, clock = fit(module, data, run, out, callbacks, gradient_clip_val=1.0)
    if trainer.interrupted or not trainer.is_global_zero:
        return None
    return finish_run(out, run, module.model, tokenizer, corpus.train_smiles, clock.elapsed(), clock.cpu())


if __name__ == "__main__":
    main()
