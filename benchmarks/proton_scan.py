"""A proton across its hydrogen bond: energy as the H moves from its O/N onto the acceptor, potentials against GFN2-xTB.

    python -m benchmarks.proton_scan [-m MODEL ...] [--moses-test 1] [--smiles SMILES] [--plot benchmarks/proton_scan.png]

The hot-MD failures of the bundled SchNets were hydrogens hopping between heteroatoms where GFN2-xTB, from the
same start, keeps them (MOSES-test 1, a 5-hydroxyflavone: its OH proton onto the carbonyl O in every seed).
This scan shows why: each molecule's RDKit + MMFF94 geometry (as ``benchmarks.md_safety`` builds it), every
hydrogen on O or N with an O or N acceptor within 2.2 Å (an intramolecular hydrogen bond), moved alone on the
straight line from where it is to a bond length from the acceptor (0.97 Å for O, 1.01 Å for N), the rest of
the molecule fixed. Energies relative to the start (eV). A potential whose curve flattens or turns down where
xTB keeps rising has no force pulling the proton back: at 1500 K it hops. Prints a table at a few fractions of
the way, the largest error, and whether the curve goes downhill anywhere; draws the curves in a PNG.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np

import chemzoo
from benchmarks.wall import energies

DEFAULT_MODELS = ("schnet-xtb-moses-53k-md4", "painn-xtb-moses-53k")
MOSES_TEST = Path(__file__).resolve().parent.parent / "tests" / "data" / "moses_test_1k.smi"
H_BOND = 2.2  # Å, the farthest acceptor of a hydrogen bond scanned
BOND_TO_H = {7: 1.01, 8: 0.97}  # Å, where the proton ends on N or O


def hydrogen_bonds(atoms) -> list[tuple[int, int]]:
    """(hydrogen, acceptor) of every H on O/N with another O/N within ``H_BOND`` Å."""
    d = atoms.get_all_distances()
    polar = [h for h in np.flatnonzero(atoms.numbers == 1) if atoms.numbers[np.argsort(d[h])[1]] in BOND_TO_H]
    return [(int(h), int(a)) for h in polar for a in np.flatnonzero(np.isin(atoms.numbers, list(BOND_TO_H)))
            if a != np.argsort(d[h])[1] and d[h, a] <= H_BOND]


def proton_path(atoms, hydrogen: int, acceptor: int, fractions: np.ndarray) -> list:
    """Copies of ``atoms`` with ``hydrogen`` at each fraction of its straight way onto ``acceptor``."""
    start, at = atoms.positions[hydrogen], atoms.positions[acceptor]
    end = at + BOND_TO_H[int(atoms.numbers[acceptor])] * (start - at) / np.linalg.norm(start - at)
    frames = []
    for f in fractions:
        moved = atoms.copy()
        moved.positions[hydrogen] = start + f * (end - start)
        frames.append(moved)
    return frames


@click.command()
@click.option("-m", "--model", "models", multiple=True, default=DEFAULT_MODELS, show_default=True,
              help="Registry name or checkpoint folder (repeatable).")
@click.option("--moses-test", "lines", type=int, multiple=True, default=(1,), show_default=True,
              help="A molecule of MOSES's test set by line, 0-based (tests/data/moses_test_1k.smi; repeatable).")
@click.option("--smiles", "smiles", multiple=True, help="Another molecule (repeatable).")
@click.option("--points", default=21, show_default=True, help="Geometries along each way.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="PNG of the curves.")
def main(models, lines, smiles, points, plot):
    """Move each intramolecular hydrogen-bond proton onto its acceptor: each potential against GFN2-xTB."""
    from tblite.ase import TBLite

    from chemzoo.potentials.md import atoms_from_smiles

    known = MOSES_TEST.read_text().split()
    molecules = [(f"MOSES-test {k}", known[k]) for k in lines] + [(s, s) for s in smiles]
    fractions = np.linspace(0, 1, points)
    shown = [np.argmin(abs(fractions - f)) for f in (0.2, 0.4, 0.6, 0.8, 1.0)]
    xtb = TBLite(method="GFN2-xTB", verbosity=0)
    calcs = {m: chemzoo.calculator(m, min_distance=0.0) for m in models}  # labelled as given (a name or a folder)
    print(f"# {time.strftime('%Y-%m-%d')}: a proton moved alone across its hydrogen bond; E - E(start) in eV")
    print("| molecule | proton | model | " + " | ".join(f"{fractions[k]:.0%}" for k in shown)
          + " | max error (eV) | downhill toward the acceptor |")
    print("|---|---|---|" + "---|" * (len(shown) + 2))
    scans = []
    for label, smi in molecules:
        atoms = atoms_from_smiles(smi, seed=0)
        pairs = hydrogen_bonds(atoms)
        if not pairs:
            print(f"| {label} | no hydrogen bond within {H_BOND} Å | | " + "| " * (len(shown) + 2))
        for h, a in pairs:
            frames = proton_path(atoms, h, a, fractions)
            proton = (f"{atoms[h].symbol}{h} on {atoms[int(np.argsort(atoms.get_all_distances()[h])[1])].symbol} "
                      f"-> {atoms[a].symbol}{a} ({atoms.get_distance(h, a):.2f} Å)")
            curves = {"GFN2-xTB": energies(frames, xtb)}
            curves.update({name: energies(frames, calc) for name, calc in calcs.items()})
            for name, e in curves.items():
                downhill = np.diff(e).min() < -0.01
                print(f"| {label} | {proton} | {name} | " + " | ".join(f"{e[k]:+.2f}" for k in shown)
                      + f" | {np.abs(e - curves['GFN2-xTB']).max():.2f} | {'yes' if downhill else 'no'} |", flush=True)
            scans.append((f"{label}: {proton}", curves))
    if plot and scans:
        from matplotlib.figure import Figure  # no pyplot: no backend or other process-wide state

        fig = Figure(figsize=(6, 3.6 * len(scans)))
        for ax, (title, curves) in zip(np.atleast_1d(fig.subplots(len(scans), 1)), scans):
            for name, e in curves.items():
                ax.plot(fractions, e, "k-" if name == "GFN2-xTB" else "-", lw=2 if name == "GFN2-xTB" else 1.2, label=name)
            ax.set_xlabel("fraction of the way onto the acceptor")
            ax.set_ylabel("E − E(start) (eV)")
            ax.set_title(title, fontsize=9)
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(plot, dpi=120)
        print(f"# plot: {plot}")


if __name__ == "__main__":
    main()
