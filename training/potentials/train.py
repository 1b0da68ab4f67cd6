"""Train one potential (architecture, width, depth, number of training structures, seed) on xTB data.

    python -m training.potentials.train --data data/xtb-moses-12.5k --architecture painn --features 64 \\
        --interactions 3 --n-train 80000 --epochs 30 --out runs/painn-64x3

Writes into ``--out`` what every run writes (see training/common.py) and at the end
``checkpoint/`` (config.json + model.safetensors + chemzoo.json + README.md card) with the test-split
energy MAE (meV/atom) and force MAE (meV/Å), plus ``metrics.json`` and the run's row of ``results.csv``.
On a GPU: ``--accelerator gpu``; ``--max-minutes`` bounds the wall time. A run trained on a packed
dataset without its test split (see ``training.potentials.pack``) is finished afterwards by
``python -m training.potentials.evaluate RUN --data FULL_DATASET``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click
import lightning as L
import torch

from chemzoo.files import write_metadata
from chemzoo.potentials.model import ARCHITECTURES, Potential
from training.cards import render_card
from training.common import fit, start_run
from training.potentials.data import PotentialDataModule, closest_contacts, collate_structures, fit_reference_energies
from training.potentials.dataset import ELEMENTS
from training.potentials.module import PotentialModule, prediction_errors
from training.results import record_run


def data_folders(run: dict) -> list[Path]:
    """The run's dataset folders (``data``: one path, or a list of folders trained on together)."""
    return [Path(f) for f in ([run["data"]] if isinstance(run["data"], str) else run["data"])]


def corpora(folders: list[Path]) -> str:
    """Whose molecules some dataset folders hold, from each build's ``build.json`` (``corpus``; none: MOSES)."""
    drugs = any(json.loads((f / "build.json").read_text()).get("corpus") == "drugs"
                for f in folders if (f / "build.json").exists())
    return "MOSES molecules and approved drugs outside MOSES" if drugs else "MOSES molecules"


def test_errors(model: Potential, test_set, batch_size: int = 16) -> dict:
    """Energy MAE (meV/atom) and force MAE (meV/Å) on the test split (None when it is empty)."""
    model.eval()
    device = next(model.parameters()).device
    e_abs, f_abs, n_e, n_f = 0.0, 0.0, 0, 0
    for start in range(0, len(test_set), batch_size):
        graph, energy, forces = collate_structures(test_set.items[start : start + batch_size])
        de, df = prediction_errors(model, (graph.to(device), energy.to(device), forces.to(device)))
        de, df = de.detach(), df.detach()
        e_abs, f_abs = e_abs + de.abs().sum().item(), f_abs + df.abs().sum().item()
        n_e, n_f = n_e + de.numel(), n_f + df.numel()
    if not n_e:
        return {"test_energy_mae_meV_per_atom": None, "test_force_mae_meV_per_A": None, "n_test": 0}
    return {"test_energy_mae_meV_per_atom": 1000 * e_abs / n_e, "test_force_mae_meV_per_A": 1000 * f_abs / n_f,
            "n_test": len(test_set)}


def finish(out: Path, run: dict, model: Potential, n_train: int, wall_time_s: float | None, errors: dict,
           cpu_time_s: float | None = None) -> dict:
    """The run's records (curve, metrics.json, results.csv) and its checkpoint folder with card."""
    metrics = record_run(out, {**run, "n_train": n_train}, model.num_parameters, wall_time_s, errors, cpu_time_s)
    config = model.config
    metadata = {"name": run["name"], "family": "potential", "architecture": run["architecture"],
                "params": model.num_parameters, "n_train": n_train, "elements": list(config.elements),
                "cutoff": config.cutoff, "molecules": corpora(data_folders(run)),
                "training_data": f"GFN2-xTB labels of {corpora(data_folders(run))} ({' + '.join(Path(f).name for f in data_folders(run))})",
                "seed": run["seed"], "init": run.get("init") or "random initialisation",
                "accelerator": run.get("accelerator", "cpu"), "test_errors": errors, "metrics": metrics, "run": run}
    folder = model.save_pretrained(out / "checkpoint")
    write_metadata(folder, metadata)
    (folder / "README.md").write_text(render_card("potential", metadata))
    return metrics


def train(run: dict, out: Path, callbacks: tuple = ()) -> dict | None:
    start_run(out, run)
    L.seed_everything(run["seed"], workers=True)
    data = PotentialDataModule(data_folders(run), run["cutoff"], run["n_train"], run["batch_size"], run["seed"])
    start = None
    if run.get("init"):  # continue from a finished checkpoint: its architecture, sizes and energy references
        start = Potential.from_pretrained(run["init"], dtype="float64")  # float64 buffers stay exact
        if (start.config.architecture, start.config.cutoff) != (run["architecture"], run["cutoff"]):
            raise click.UsageError(f"--init {run['init']} is a {start.config.architecture} with a {start.config.cutoff} Å "
                                   f"cutoff, not a {run['architecture']} with {run['cutoff']} Å")
        config = asdict(start.config)
        # closer contacts in the new data lower the calculator's "closer than training" threshold
        seen = {**(config.get("min_distances") or {})}
        for pair, d in closest_contacts(data.train_set).items():
            seen[pair] = min(d, seen.get(pair, d))
        config["min_distances"] = seen
    else:
        elements = list(ELEMENTS)
        reference, force_rms = fit_reference_energies(data.train_set, elements)
        hyper = {"features": run["features"], "interactions": run["interactions"]}
        if run["architecture"] == "nequip":
            hyper["lmax"] = run["lmax"]
        config = dict(architecture=run["architecture"], elements=elements, cutoff=run["cutoff"], hyperparameters=hyper,
                      reference_energies=reference, energy_scale=force_rms,
                      min_distances=closest_contacts(data.train_set))
    module = PotentialModule(config, lr=run["lr"], schedule=run.get("schedule", "plateau"))
    if start is not None:
        module.model.load_state_dict(start.state_dict())
    trainer, clock = fit(module, data, run, out, callbacks, inference_mode=False,
                         check_val_every_n_epoch=run.get("val_every", 1))
    if trainer.interrupted or not trainer.is_global_zero:
        return None
    errors = test_errors(module.model, data.test_set)
    return finish(out, run, module.model, len(data.train_set), clock.elapsed(), errors, clock.cpu())


@click.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False), required=True, multiple=True,
              help="Folder of chunk-*.npz; repeat to train on several builds of the same molecules (e.g. thermal + contact).")
@click.option("--architecture", type=click.Choice(sorted(ARCHITECTURES)), default="painn", show_default=True)
@click.option("--features", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--interactions", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--lmax", type=click.IntRange(min=1, max=3), default=1, show_default=True, help="nequip only.")
@click.option("--cutoff", type=click.FloatRange(min=1.0), default=5.0, show_default=True, help="Å")
@click.option("--n-train", type=click.IntRange(min=1), default=None, help="Training structures [default: all].")
@click.option("--epochs", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--max-steps", type=int, default=-1, show_default=True, help="Stop after this many steps (-1: epochs decide).")
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True), default=None,
              help="A wall-time budget: the steps that fit it are planned from the pace of the first 50 and shortened "
                   "if the machine slows (so a cosine ends annealed; the log says the plan: --max-steps PLAN repeats an "
                   "unshortened one without the clock), then the run is finished.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--schedule", type=click.Choice(["plateau", "cosine"]), default="plateau", show_default=True,
              help="Learning rate: halve on a validation plateau, or cosine to 1 % over the planned steps.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--accelerator", type=click.Choice(["cpu", "gpu", "auto"]), default="cpu", show_default=True)
@click.option("--devices", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--ckpt-every", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--init", type=click.Path(exists=True, file_okay=False), default=None,
              help="Start from this checkpoint folder's weights (continued training; sizes come from it).")
@click.option("--name", default=None)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
def main(data, architecture, features, interactions, lmax, cutoff, n_train, epochs, max_steps, max_minutes, batch_size,
         lr, schedule, seed, accelerator, devices, ckpt_every, init, name, out):
    """Train (or resume) one potential."""
    torch.set_default_dtype(torch.float32)
    name = name or f"{architecture}-f{features}-i{interactions}-s{seed}"
    run = dict(family="potential", name=name, data=str(data[0]) if len(data) == 1 else [str(d) for d in data], architecture=architecture, features=features,
               interactions=interactions, lmax=lmax, cutoff=cutoff, n_train=n_train, epochs=epochs, max_steps=max_steps,
               max_minutes=max_minutes, batch_size=batch_size, lr=lr, schedule=schedule, seed=seed, accelerator=accelerator,
               devices=devices, ckpt_every=ckpt_every, init=init)
    if init:  # the architecture and sizes are the checkpoint's
        config = json.loads((Path(init) / "config.json").read_text())
        run.update(architecture=config["architecture"], cutoff=config["cutoff"], **config["hyperparameters"])
    train(run, out)


if __name__ == "__main__":
    main()
