"""Does a committee's spread rank structures by their actual error? Spearman rho, per held-out set.

    python -m benchmarks.committee [--committee painn-xtb-moses-53k,schnet-xtb-moses-53k-contact,nequip-xtb-moses-53k]

For every structure of each set: the committee's mean forces against GFN2-xTB (force MAE, meV/Å;
and the largest per-atom force error) and the members' spread (mean and largest per-atom norm of the
per-component standard deviation, meV/Å). Spearman rho of spread against error over the structures
of a set (scipy), and the mean error of the quarter of structures with the largest spread against
the quarter with the smallest. Sets: the 200 test structures of the committed MOSES slice
(tests/data/xtb-moses-200, 25 held-out molecules, thermal noise) and the out-of-distribution drugs
(tests/data/xtb-drugs-ood, GFN2-xTB MD frames).
"""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np
from ase import Atoms
from scipy.stats import spearmanr

import chemzoo
from training.potentials.dataset import load_dataset

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
SETS = {"MOSES slice, test split (thermal)": DATA / "xtb-moses-200", "drugs outside MOSES (xTB MD)": DATA / "xtb-drugs-ood"}
DEFAULT = "painn-xtb-moses-53k,schnet-xtb-moses-53k-contact,nequip-xtb-moses-53k"


@click.command()
@click.option("--committee", default=DEFAULT, show_default=True, help="Comma-separated potentials.")
def main(committee):
    names = [n.strip() for n in committee.split(",")]
    calc = chemzoo.calculator(names)
    print(f"# {time.strftime('%Y-%m-%d')}: committee of {', '.join(names)}")
    print("| set | structures | committee force MAE (meV/Å) | rho(mean spread, MAE) | rho(max spread, max error) | "
          "MAE, top quarter of spread | MAE, bottom quarter |")
    print("|---|---|---|---|---|---|---|")
    for label, folder in SETS.items():
        data = load_dataset(folder)
        starts = np.concatenate([[0], np.cumsum(data["n_atoms"])])
        rows = []
        for k in np.flatnonzero(data["split"] == "test"):
            a, b = starts[k], starts[k + 1]
            atoms = Atoms(numbers=data["numbers"][a:b], positions=data["positions"][a:b], calculator=calc)
            err = np.linalg.norm(atoms.get_forces() - data["forces"][a:b], axis=1)
            mae = np.abs(atoms.get_forces() - data["forces"][a:b]).mean()
            spread = np.linalg.norm(calc.results["forces_std"], axis=1)
            rows.append((1000 * mae, 1000 * err.max(), 1000 * spread.mean(), 1000 * spread.max()))
        rows = np.array(rows)
        rho_mean = spearmanr(rows[:, 2], rows[:, 0]).statistic
        rho_max = spearmanr(rows[:, 3], rows[:, 1]).statistic
        order = np.argsort(rows[:, 2])
        q = max(1, len(rows) // 4)
        print(f"| {label} | {len(rows)} | {rows[:, 0].mean():.1f} | {rho_mean:.2f} | {rho_max:.2f} | "
              f"{rows[order[-q:], 0].mean():.1f} | {rows[order[:q], 0].mean():.1f} |", flush=True)


if __name__ == "__main__":
    main()
