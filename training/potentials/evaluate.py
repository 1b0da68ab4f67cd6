"""Finish a potential run trained elsewhere: test-split errors on the full dataset, then its records.

    python -m training.potentials.evaluate runs/painn-gpu --data data/xtb-moses-12.5k

Reads ``RUN/run.json``, ``RUN/metrics.json`` (training structures, wall time) and
``RUN/checkpoint``; measures the energy MAE (meV/atom) and force MAE (meV/Å) on the test split of
``--data`` (molecules never seen in training), and rewrites metrics.json, results.csv, chemzoo.json
and the card with them.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from chemzoo.potentials.model import Potential
from training.potentials.data import Structures
from chemzoo.potentials.datasets import load_dataset
from training.potentials.train import finish, test_errors


def evaluate(run_dir: Path, data: Path) -> dict:
    run = json.loads((run_dir / "run.json").read_text())
    before = json.loads((run_dir / "metrics.json").read_text())
    model = Potential.from_pretrained(run_dir / "checkpoint")
    full = load_dataset(data)
    trained_on = set(np.unique(full["mol_index"][full["split"] == "train"]).tolist())
    test = Structures(full, "test", model.config.cutoff)
    if trained_on & set(test.molecules.tolist()):
        raise click.ClickException(f"{data} puts a molecule in both train and test; not a valid test split")
    errors = test_errors(model, test)
    return finish(run_dir, run, model, before["run"]["n_train"], before["metrics"]["wall_time_s"], errors,
                  before["metrics"].get("cpu_time_s"))


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="The full dataset (with its test split).")
def main(run_dir, data):
    """Measure a finished run's test-split errors and rewrite its records and card."""
    metrics = evaluate(run_dir, data)
    click.echo(json.dumps({k: metrics[k] for k in metrics if k.startswith("test_") or k == "n_test"}, indent=2))


if __name__ == "__main__":
    main()
