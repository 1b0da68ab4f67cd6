"""End of a training run: the clean loss curve, ``metrics.json``, the HF-layout checkpoint and a row
in ``results.csv`` (one row per run: family, model, params, n_train, losses, seed, wall time), the
table the scaling-law fits read.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from chemzoo.scaling.tse import read_logs
from training.cards import render_card

RESULTS_COLUMNS = ["family", "model", "preset", "architecture", "params", "n_train", "epochs", "steps", "seed",
                   "train_loss", "val_loss", "test_energy_mae_meV_per_atom", "test_force_mae_meV_per_A", "wall_time_s"]


def read_curve(logs: Path) -> list[dict]:
    """Rows of Lightning's metrics.csv (and the parts of earlier, interrupted attempts), one per step
    and kind, later rows winning (the reader training speed estimation uses too)."""
    return read_logs(logs)


def summarize(curve: list[dict], tail: int = 50) -> dict:
    train = [float(r["train_loss"]) for r in curve if "train_loss" in r]
    val = [(int(r["epoch"]), float(r["val_loss"])) for r in curve if "val_loss" in r]
    last = train[-tail:]
    return {
        "steps": max((int(r["step"]) for r in curve), default=0) + 1,
        "train_loss": sum(last) / len(last) if last else None,
        "val_loss": val[-1][1] if val else None,
        "val_loss_per_epoch": [v for _, v in val],
    }


def write_result(results_csv: Path, row: dict) -> None:
    """The run's row of the results table (rewritten when the run is finished again, e.g. re-evaluated)."""
    with open(results_csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=RESULTS_COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerow(row)


def record_run(out: Path, run: dict, params: int, wall_time_s: float | None, extra: dict | None = None,
               cpu_time_s: float | None = None) -> dict:
    """Write ``curve.csv``, ``metrics.json`` and the run's row of ``results.csv`` (times in seconds)."""
    curve = read_curve(out / "logs")
    keys = ["step", "epoch", *sorted({k for r in curve for k in r} - {"step", "epoch"})]
    with open(out / "curve.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(curve)
    wall = None if wall_time_s is None else round(wall_time_s, 1)
    cpu = None if cpu_time_s is None else round(cpu_time_s, 1)
    metrics = {**summarize(curve), "params": params, "wall_time_s": wall, "cpu_time_s": cpu, **(extra or {})}
    (out / "metrics.json").write_text(json.dumps({"run": run, "metrics": metrics}, indent=2) + "\n")
    write_result(out / "results.csv", {**run, **metrics, "model": run["name"]})
    return metrics


def finish_run(out: Path, run: dict, model, tokenizer, train_smiles: list[str], wall_time_s: float | None,
               cpu_time_s: float | None = None) -> dict:
    """End of a ChemGPT run: its records and the Hugging Face checkpoint folder."""
    from chemzoo.lm.model import save_chemgpt  # transformers, RDKit and selfies: not needed by potential runs
    from chemzoo.lm.molecules import canonical_smiles

    metrics = record_run(out, run, model.num_parameters(), wall_time_s, cpu_time_s=cpu_time_s)
    canonical = [c for c in (canonical_smiles(s) for s in train_smiles) if c]
    metadata = {"name": run["name"], "family": "chemgpt", "preset": run["preset"], "params": metrics["params"],
                "n_train": run["n_train"], "training_data": "MOSES train (random subset)", "seed": run["seed"],
                "metrics": metrics, "run": run}
    card = render_card("chemgpt", metadata)
    save_chemgpt(out / "checkpoint", model, tokenizer, metadata, training_smiles=canonical, card=card)
    return metrics
