"""Does a committee's spread rank structures by their actual error? Spearman rho, per held-out set.

    python -m benchmarks.committee [--committee painn-xtb-moses-53k,schnet-xtb-moses-53k-contact,nequip-xtb-moses-53k]
    python -m benchmarks.committee --data data/xtb-moses-5k-contact --max-structures 400   # and a contact split

For every structure of each set: the committee's mean forces against GFN2-xTB (force MAE, meV/Å;
and the largest per-atom force error) and the members' spread (mean and largest per-atom norm of the
per-component standard deviation, meV/Å). Spearman rho of spread against error over the structures
of a set (scipy), and the mean error of the quarter of structures with the largest spread against
the quarter with the smallest. Sets: the 200 test structures of the committed MOSES slice
(tests/data/xtb-moses-200, 25 held-out molecules, thermal noise) and the out-of-distribution drugs
(tests/data/xtb-drugs-ood, GFN2-xTB MD frames); ``--data`` adds the test split of another xTB build, e.g.
the close-contact recipe (``python -m training.potentials.dataset --molecules 5000 --per-molecule 4
--recipe contact --seed 0 --out data/xtb-moses-5k-contact``: compressed atom pairs and 2500 K noise of
molecules no bundled potential trained on), ``--max-structures`` a seeded subset of each set.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np
from ase import Atoms
from scipy.stats import spearmanr
from tqdm.auto import tqdm

import chemzoo
from chemzoo.potentials.datasets import atom_offsets, load_dataset, split_indices

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
SETS = {"MOSES slice, test split (thermal)": DATA / "xtb-moses-200", "drugs outside MOSES (xTB MD)": DATA / "xtb-drugs-ood"}
DEFAULT = "painn-xtb-moses-53k,schnet-xtb-moses-53k-contact,nequip-xtb-moses-53k"


@click.command()
@click.option("--committee", default=DEFAULT, show_default=True, help="Comma-separated potentials.")
@click.option("--data", "extra", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Also the test split of this xTB dataset folder (repeatable).")
@click.option("--max-structures", type=click.IntRange(min=8), default=None, help="A seeded subset of each set.")
@click.option("--seed", type=int, default=0, show_default=True)
def main(committee, extra, max_structures, seed):
    names = [n.strip() for n in committee.split(",")]
    sets = {**SETS, **{f"{folder.name}, test split": folder for folder in extra}}
    calc = chemzoo.calculator(names)
    print(f"# {time.strftime('%Y-%m-%d')}: committee of {', '.join(names)}")
    print("| set | structures | committee force MAE (meV/Å) | rho(mean spread, MAE) | rho(max spread, max error) | "
          "MAE, top quarter of spread | MAE, bottom quarter |")
    print("|---|---|---|---|---|---|---|")
    for label, folder in sets.items():
        data = load_dataset(folder)
        starts = atom_offsets(data)
        rows = []
        test = split_indices(data, "test")
        if max_structures is not None and len(test) > max_structures:
            test = np.sort(np.random.default_rng(seed).choice(test, max_structures, replace=False))
        for k in tqdm(test, desc=label, leave=False):
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
