"""Where a potential's MD went wrong: energies of one molecule's saved frames, potentials against GFN2-xTB.

    python -m benchmarks.md_safety -m schnet-xtb-moses-53k-md5 --ensemble nve --temperature 1500 --ps 0.2 \
        --molecule-set moses-test --seed 0            # prints "# trajectories: FOLDER"
    python -m benchmarks.frame_gap FOLDER/nve-0-0.extxyz --molecule-set moses-test --molecule 1 \
        -m schnet-xtb-moses-53k-md5 -m schnet-xtb-moses-53k-md4 --frames 30

Reads a side-by-side trajectory of ``benchmarks.md_safety`` (one frame per 5 fs; same ``--molecules``,
``--molecule-set`` and ``--skip``), cuts out one molecule and prints, every ``--every`` frames: the shortest
distance between two of its heavy atoms four or more bonds apart (a hydrogen bond's O...O, a folded chain), and
the energy of GFN2-xTB and of each potential relative to the first frame (eV). A potential whose energy stays
flat where xTB's climbs lets the molecule into geometries it should not reach.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np
from ase.io import iread
from scipy.sparse.csgraph import shortest_path

import chemzoo
from benchmarks.md_safety import SET_LABELS, held_out_molecules, xtb_calculator
from benchmarks.wall import energies
from chemzoo.potentials.bonds import bond_set
from chemzoo.potentials.md import side_by_side


def far_pairs(atoms, apart: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Heavy-atom pairs (i < j) at least ``apart`` bonds apart in ``atoms``' covalent bond graph."""
    graph = np.zeros((len(atoms), len(atoms)))
    for i, j in bond_set(atoms):
        graph[i, j] = graph[j, i] = 1
    hops = shortest_path(graph, unweighted=True)
    heavy = atoms.numbers > 1
    return np.nonzero(np.triu((hops >= apart) & heavy[:, None] & heavy[None]))


@click.command()
@click.argument("trajectory", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-m", "--model", "models", multiple=True, required=True, help="Registry name or folder (repeatable).")
@click.option("--molecule-set", type=click.Choice(list(SET_LABELS)), default="slice", show_default=True)
@click.option("--molecules", default=25, show_default=True)
@click.option("--skip", default=0, show_default=True)
@click.option("--molecule", "index", type=int, required=True, help="The molecule's label (MOSES index or MOSES-test line).")
@click.option("--frames", default=30, show_default=True, help="How many frames from the start.")
@click.option("--every", default=2, show_default=True, help="Print every EVERY-th frame.")
def main(trajectory, models, molecule_set, molecules, skip, index, frames, every):
    """Energies of one molecule along a saved md_safety trajectory, potentials against GFN2-xTB."""
    mols = held_out_molecules(molecules, molecule_set, skip)
    labels = [m for m, _ in mols]
    if index not in labels:
        raise click.BadParameter(f"{index} is not among {labels}", param_hint="--molecule")
    _, owner = side_by_side([m for _, m in mols], 300.0, 0)  # which molecule each atom is (not the velocities)
    atoms_of = np.flatnonzero(owner == labels.index(index))
    cut = []
    for frame in iread(str(trajectory), index=f":{frames}"):
        part = frame[atoms_of]
        part.pbc, part.cell = False, None
        cut.append(part)
    i, j = far_pairs(cut[0])
    calcs = {"GFN2-xTB": xtb_calculator(), **{m: chemzoo.calculator(m, min_distance=0.0) for m in models}}
    energy = {name: energies(cut, calc) for name, calc in calcs.items()}
    print(f"# {time.strftime('%Y-%m-%d')}: {SET_LABELS[molecule_set]} {index} along {trajectory} (5 fs per frame); "
          "E - E(first frame) in eV")
    print("| time (fs) | closest heavy pair 4+ bonds apart (Å) | " + " | ".join(calcs) + " |")
    print("|---|---|" + "---|" * len(calcs))
    for k in range(0, len(cut), every):
        d = np.linalg.norm(cut[k].positions[i] - cut[k].positions[j], axis=-1)
        pair = f"{cut[k][i[d.argmin()]].symbol}{i[d.argmin()]}...{cut[k][j[d.argmin()]].symbol}{j[d.argmin()]} {d.min():.2f}" if len(d) else "-"
        print(f"| {k * 5} | {pair} | " + " | ".join(f"{energy[n][k]:+.2f}" for n in calcs) + " |")


if __name__ == "__main__":
    main()
