"""Batched evaluation against the ASE calculator one structure at a time, same model, same structures.

    python -m benchmarks.batched --n 400 --batch-size 64

Structures: the first N of the committed MOSES slice (tests/data/xtb-moses-200, ~40 atoms each). Both
sides run in this process, one after the other, float32, on this machine's CPU threads; prints
structures/s of each and the ratio, and the largest force difference between the two.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np

import chemzoo
from chemzoo.potentials.datasets import load_dataset, structures as dataset_structures

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "xtb-moses-200"
MODELS = ("schnet-xtb-moses-53k-md7", "painn-xtb-moses-53k", "nequip-xtb-moses-53k")


@click.command()
@click.option("--n", type=click.IntRange(min=1), default=400, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("-m", "--model", "models", multiple=True, default=MODELS, show_default=True)
def main(n, batch_size, models):
    data = load_dataset(DATA)
    structures = dataset_structures(data, range(min(n, len(data["n_atoms"]))), labels=False)
    print(f"# {time.strftime('%Y-%m-%d')}: {len(structures)} structures, batch {batch_size}, float32")
    print("| model | one by one (structures/s) | batched (structures/s) | speed-up | max |ΔF| (eV/Å) |")
    print("|---|---|---|---|---|")
    for name in models:
        calc = chemzoo.calculator(name)
        chemzoo.evaluate(calc, structures[:batch_size], batch_size=batch_size)  # warm-up
        start = time.perf_counter()
        single = []
        for atoms in structures:
            atoms = atoms.copy()
            atoms.calc = calc
            single.append(atoms.get_forces())
        one = time.perf_counter() - start
        start = time.perf_counter()
        batched = chemzoo.evaluate(calc, structures, batch_size=batch_size, progress=False)
        many = time.perf_counter() - start
        diff = max(np.abs(s - b["forces"]).max() for s, b in zip(single, batched))
        print(f"| {name} | {len(structures) / one:.0f} | {len(structures) / many:.0f} | {one / many:.1f}x | {diff:.1e} |",
              flush=True)


if __name__ == "__main__":
    main()
