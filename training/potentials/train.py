"""Train one potential (architecture, width, depth, number of training structures, seed) on xTB data.

    python -m training.potentials.train --data data/xtb-moses --architecture painn --features 64 \\
        --interactions 3 --n-train 80000 --epochs 30 --out runs/painn-64x3

Writes into ``--out`` what every run writes (see training/common.py) and at the end
``checkpoint/`` (config.json + model.safetensors + chemzoo.json + README.md card) with the test-split
energy MAE (meV/atom) and force MAE (meV/Å), plus ``metrics.json`` and a row of ``results.csv``.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import lightning as L
import torch

from chemzoo.potentials.model import ARCHITECTURES
from training.cards import render_card
from training.common import fit, start_run
from training.potentials.data import PotentialDataModule, collate_structures, fit_reference_energies
from training.potentials.dataset import ELEMENTS
from training.potentials.module import PotentialModule
from training.results import record_run


def test_errors(module: PotentialModule, test_set, batch_size: int = 16) -> dict:
    """Energy MAE (meV/atom) and force MAE (meV/Å) on the test split."""
    module.eval()
    e_abs, f_abs, n_e, n_f = 0.0, 0.0, 0, 0
    for start in range(0, len(test_set), batch_size):
        de, df = module._errors(collate_structures(test_set.items[start : start + batch_size]))
        e_abs, f_abs = e_abs + de.abs().sum().item(), f_abs + df.abs().sum().item()
        n_e, n_f = n_e + de.numel(), n_f + df.numel()
    return {"test_energy_mae_meV_per_atom": 1000 * e_abs / max(n_e, 1),
            "test_force_mae_meV_per_A": 1000 * f_abs / max(n_f, 1), "n_test": len(test_set)}


def train(run: dict, out: Path, callbacks: tuple = ()) -> dict | None:
    start_run(out, run)
    L.seed_everything(run["seed"], workers=True)
    data = PotentialDataModule(Path(run["data"]), run["cutoff"], run["n_train"], run["batch_size"], run["seed"])
    elements = list(ELEMENTS)
    reference, force_rms = fit_reference_energies(data.train_set, elements)
    hyper = {"features": run["features"], "interactions": run["interactions"]}
    if run["architecture"] == "nequip":
        hyper["lmax"] = run["lmax"]
    config = dict(architecture=run["architecture"], elements=elements, cutoff=run["cutoff"], hyperparameters=hyper,
                  reference_energies=reference, energy_scale=force_rms)
    module = PotentialModule(config, lr=run["lr"])
    trainer, clock = fit(module, data, run, out, callbacks, inference_mode=False)
    if trainer.interrupted or not trainer.is_global_zero:
        return None
    errors = test_errors(module, data.test_set)
    n_train = len(data.train_set)
    metrics = record_run(out, {**run, "n_train": n_train}, module.model.num_parameters, clock.elapsed(), errors)
    metadata = {"name": run["name"], "family": "potential", "architecture": run["architecture"],
                "params": module.model.num_parameters, "n_train": n_train, "elements": elements,
                "cutoff": run["cutoff"], "training_data": f"GFN2-xTB labels of MOSES molecules ({Path(run['data']).name})",
                "seed": run["seed"], "test_errors": errors, "metrics": metrics, "run": run}
    folder = module.model.save_pretrained(out / "checkpoint")
    (folder / "chemzoo.json").write_text(json.dumps(metadata, indent=2) + "\n")
    (folder / "README.md").write_text(render_card("potential", metadata))
    return metrics


@click.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False), required=True, help="Folder of chunk-*.npz.")
@click.option("--architecture", type=click.Choice(sorted(ARCHITECTURES)), default="painn", show_default=True)
@click.option("--features", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--interactions", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--lmax", type=click.IntRange(min=1, max=3), default=1, show_default=True, help="nequip only.")
@click.option("--cutoff", type=click.FloatRange(min=1.0), default=5.0, show_default=True, help="Å")
@click.option("--n-train", type=click.IntRange(min=1), default=None, help="Training structures [default: all].")
@click.option("--epochs", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--max-steps", type=int, default=-1, show_default=True, help="Stop after this many steps (-1: epochs decide).")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--devices", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--ckpt-every", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--name", default=None)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
def main(data, architecture, features, interactions, lmax, cutoff, n_train, epochs, max_steps, batch_size, lr, seed,
         devices, ckpt_every, name, out):
    """Train (or resume) one potential."""
    torch.set_default_dtype(torch.float32)
    name = name or f"{architecture}-f{features}-i{interactions}-s{seed}"
    run = dict(family="potential", name=name, data=str(data), architecture=architecture, features=features,
               interactions=interactions, lmax=lmax, cutoff=cutoff, n_train=n_train, epochs=epochs, max_steps=max_steps,
               batch_size=batch_size, lr=lr, seed=seed, devices=devices, ckpt_every=ckpt_every)
    train(run, out)


if __name__ == "__main__":
    main()
