"""The repulsive wall: energy as two geminal hydrogens are pulled together, potentials against GFN2-xTB.

    python -m benchmarks.wall [-m painn-xtb-moses-53k -m ...] [--plot benchmarks/wall.png]

Ethanol (ASE's geometry, relaxed by nothing: the scan is relative to its start): the two hydrogens of the
CH2 group are moved symmetrically along their axis from their distance (1.77 Å) down to 0.6 Å.
Energies are relative to the start (eV). A potential that learnt no wall shows a dip or a flat
line where xTB rises by electronvolts; that is how MD collapses two hydrogens onto each other.
Prints a table at a few distances and the largest error over the scan; draws all curves in a PNG.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np
from ase.build import molecule

import chemzoo

DEFAULT_MODELS = ("painn-xtb-moses-53k", "schnet-xtb-moses-53k-contact", "nequip-xtb-moses-53k")


def geminal_scan(distances: np.ndarray):
    """Ethanol geometries with its CH2 hydrogens at the given distances (Å), and the moved pair."""
    atoms = molecule("CH3CH2OH")
    carbon = next(i for i, a in enumerate(atoms) if a.symbol == "C" and
                  any(atoms[j].symbol == "O" for j in range(len(atoms)) if atoms.get_distance(i, j) < 1.6))
    a, b = [j for j in range(len(atoms)) if atoms[j].symbol == "H" and atoms.get_distance(carbon, j) < 1.2]
    axis = atoms.positions[b] - atoms.positions[a]
    d0 = np.linalg.norm(axis)
    frames = []
    for d in distances:
        moved = atoms.copy()
        shift = 0.5 * (d0 - d) * axis / d0
        moved.positions[a] += shift
        moved.positions[b] -= shift
        frames.append(moved)
    return frames, (a, b), d0


def energies(frames, calc) -> np.ndarray:
    out = []
    for atoms in frames:
        atoms = atoms.copy()
        atoms.calc = calc
        out.append(atoms.get_potential_energy())
    return np.array(out) - out[0]


@click.command()
@click.option("-m", "--model", "models", multiple=True, default=DEFAULT_MODELS, show_default=True,
              help="Registry name or checkpoint folder (repeatable).")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="PNG of the curves.")
def main(models, plot):
    """Pull ethanol's CH2 hydrogens together: each potential against GFN2-xTB."""
    from tblite.ase import TBLite

    frames, pair, d0 = geminal_scan(np.linspace(1.77, 0.6, 40))
    distances = np.array([f.get_distance(*pair) for f in frames])
    curves = {"GFN2-xTB": energies(frames, TBLite(method="GFN2-xTB", verbosity=0))}
    for name in models:  # a checkpoint folder is labelled by its name
        label = Path(name).name if Path(name).is_dir() else name
        curves[label] = energies(frames, chemzoo.calculator(name, min_distance=0.0))
    print(f"# {time.strftime('%Y-%m-%d')}: ethanol, CH2 hydrogens pulled from {d0:.2f} Å; E - E(start) in eV")
    shown = [np.argmin(abs(distances - d)) for d in (1.4, 1.2, 1.0, 0.8, 0.6)]
    reference = curves["GFN2-xTB"]
    print("| model | " + " | ".join(f"{distances[k]:.2f} Å" for k in shown) + " | max error (eV) |")
    print("|---|" + "---|" * (len(shown) + 1))
    for name, e in curves.items():
        print(f"| {name} | " + " | ".join(f"{e[k]:+.2f}" for k in shown) + f" | {np.abs(e - reference).max():.2f} |")
    if plot:
        from matplotlib.figure import Figure  # no pyplot: no backend or other process-wide state

        fig = Figure(figsize=(6, 4))
        ax = fig.subplots()
        for name, e in curves.items():
            ax.plot(distances, e, "k-" if name == "GFN2-xTB" else "-", lw=2 if name == "GFN2-xTB" else 1.2, label=name)
        ax.set_xlabel("H–H distance (Å)")
        ax.set_ylabel("E − E(start) (eV)")
        ax.set_title("Ethanol: CH2 hydrogens pulled together")
        ax.invert_xaxis()
        ax.legend()
        fig.tight_layout()
        fig.savefig(plot, dpi=120)
        print(f"# plot: {plot}")


if __name__ == "__main__":
    main()
