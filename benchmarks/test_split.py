"""Errors of potentials on the test split of an xTB dataset, side by side, per geometry temperature.

    python -m benchmarks.test_split --data data/xtb-moses-12.5k-contact -m schnet-xtb-moses-53k -m schnet-xtb-moses-53k-contact

For each model (registry name or checkpoint folder): energy MAE (meV/atom) and force MAE (meV/Å) on
the test molecules of ``--data``, over all test structures and for each noise temperature (the
contact recipe: 300 K = a pulled pair plus 300 K noise, 2500 K = hot noise), and the ratio of each
model's force MAE to the first model's.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

import chemzoo
from chemzoo.potentials.datasets import label_errors, load_dataset


@click.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True)
@click.option("-m", "--model", "models", multiple=True, required=True, help="Registry name or folder (repeatable).")
def main(data, models):
    """Test-split errors of several potentials on one dataset."""
    full = load_dataset(data)
    test_rows = full["split"] == "test"
    groups = {f"{t:g} K": test_rows & (full["temperature"] == t) for t in np.unique(full["temperature"][test_rows])}
    print(f"# {data}: {int(test_rows.sum())} test structures of {len(np.unique(full['mol_index'][test_rows]))} molecules")
    header = ("model", "geometries", "structures", "energy MAE (meV/atom)", "force MAE (meV/Å)", "force MAE vs first")
    rows, first = [], {}
    for name in models:
        calc = chemzoo.calculator(name)
        errors = {}
        for group, keep in groups.items():  # each structure evaluated once; "all" is their weighted mean
            e = label_errors(calc, full, np.flatnonzero(keep))
            errors[group] = (e["energy_mae_meV_per_atom"], e["force_mae_meV_per_A"], e["n_structures"], e["n_atoms"])
        structures, atoms = sum(v[2] for v in errors.values()), sum(v[3] for v in errors.values())
        errors = {"all": (sum(v[0] * v[2] for v in errors.values()) / structures,
                          sum(v[1] * v[3] for v in errors.values()) / atoms, structures, atoms), **errors}
        for group, (energy, force, n, _) in errors.items():
            first.setdefault(group, force)
            rows.append((name, group, str(n), f"{energy:.1f}", f"{force:.1f}", f"{force / first[group]:.2f}x"))
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
