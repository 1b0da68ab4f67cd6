"""Does a potential hold molecules together? Langevin at 300 K and NVE started hot, on held-out molecules.

    python -m benchmarks.md_safety [-m NAME] --ensemble langevin --temperature 300 --ps 10 --molecules 25 --seed 0
    python -m benchmarks.md_safety [-m NAME] --ensemble nve --temperature 1500 --ps 3 --molecules 25 --seed 0
    python -m benchmarks.md_safety --xtb --ensemble nve --temperature 1500 --ps 3 --seed 0 --only 87 --only 105

``--xtb`` runs the reference, GFN2-xTB (``tblite``), instead of a potential, each molecule in a box of its own
(xTB's cost grows with the cube of the atoms) from the same starting velocities as in the shared box: whether
a bond change is the potential's fault or what the reference itself does from that start.

Molecules: the 25 test-split molecules of the committed xTB slice (tests/data/xtb-moses-200; none is in
the datasets the bundled potentials were trained on), first geometry of each. Those have been used to
choose between potentials (which to make the default); ``--molecule-set moses-test`` takes fresh ones for
a confirmation: molecules of MOSES's own test set (``tests/data/moses_test_1k.smi``, from
which no build draws), RDKit ETKDG + MMFF94 geometries, labelled "MOSES-test K" by line (0-based).
Once the first 25 have also been used to choose, ``--skip 25`` takes the next ones: each confirmation on
molecules no earlier choice has seen. They are simulated side
by side in one box, 40 Å apart (far beyond the 5 Å cutoff: no molecule feels another), with
``chemzoo.potentials.md.run_md`` and `chemzoo md`'s own defaults: 0.5 fs, Langevin friction
0.01/fs, float32, velocities drawn per molecule (Maxwell-Boltzmann, seeded; no net translation or
rotation). Langevin noise and friction act on each atom on its own, so this is the same dynamics as
one run per molecule, at a fraction of the per-call overhead. The covalent bond graph is watched
every 5 fs (``chemzoo.potentials.bonds``: hysteresis 1.1x/1.5x the covalent radii sum); every bond
formed or broken is recorded with its molecule and time, and the run goes on (the other molecules
are independent); a clash (< 0.5 Å) or an explosion ends it. Prints one Markdown row per run: how
many molecules changed a bond, the first change of each.
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

import click
import numpy as np
from ase import Atoms

import chemzoo
from chemzoo.potentials.md import run_md, side_by_side
from chemzoo.potentials.datasets import first_of_each_molecule, load_dataset, structure

def xtb_calculator():
    """GFN2-xTB through tblite's ASE calculator, as the datasets were labelled."""
    from tblite.ase import TBLite

    return TBLite(method="GFN2-xTB", verbosity=0, max_iterations=300)


DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
SLICE = DATA / "xtb-moses-200"
MOSES_TEST = DATA / "moses_test_1k.smi"
SET_LABELS = {"slice": "MOSES", "moses-test": "MOSES-test"}


def held_out_molecules(n: int, molecule_set: str = "slice", skip: int = 0) -> list[tuple[int, Atoms]]:
    """(index, geometry) of ``n`` held-out molecules after the first ``skip``: of the slice's test split (MOSES
    index, first test geometry) or of MOSES's test set (line, RDKit + MMFF94 geometry)."""
    if molecule_set == "moses-test":
        from chemzoo.potentials.md import atoms_from_smiles

        lines = MOSES_TEST.read_text().split()
        mols = [(k, atoms_from_smiles(lines[k], seed=0)) for k in range(skip, min(skip + n, len(lines)))]
    else:
        data = load_dataset(SLICE)
        mols = [(int(data["mol_index"][k]), structure(data, k, labels=False))
                for k in first_of_each_molecule(data, "test")[skip:skip + n]]
    if not mols:
        raise click.BadParameter(f"the {SET_LABELS[molecule_set]} set has no molecules after the first {skip}",
                                 param_hint="--skip")
    return mols


@click.command()
@click.option("-m", "--model", "model_name", default=None, help="Potential [default: the default potential].")
@click.option("--ensemble", type=click.Choice(["langevin", "nve"]), default="langevin", show_default=True)
@click.option("--temperature", default=300.0, show_default=True, help="K (Langevin target; NVE starting velocities).")
@click.option("--ps", default=10.0, show_default=True, help="Simulated time (ps).")
@click.option("--timestep", default=0.5, show_default=True, help="fs")
@click.option("--molecules", default=25, show_default=True)
@click.option("--molecule-set", type=click.Choice(list(SET_LABELS)), default="slice", show_default=True,
              help="slice: the 25 test-split molecules of tests/data/xtb-moses-200 (used to choose the default); "
                   "moses-test: fresh ones from MOSES's test set, for a confirmation.")
@click.option("--skip", default=0, show_default=True,
              help="Leave out the set's first SKIP molecules: a fresh confirmation once the first ones have been used "
                   "to choose (e.g. --molecule-set moses-test --skip 25).")
@click.option("--seed", "seeds", type=int, multiple=True, default=[0], show_default=True, help="Repeat for several.")
@click.option("--xtb", is_flag=True, help="GFN2-xTB itself (tblite) instead of a potential, one molecule at a time.")
@click.option("--recount", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Count the bond changes of a trajectory this script saved (run with the same --molecules, "
                   "--molecule-set and --skip) again, frame by frame through the bond watch, instead of simulating.")
@click.option("--only", type=int, multiple=True, help="Only this MOSES index of the held-out molecules (repeatable; "
              "velocities are still drawn for all, so each starts as in the full run).")
def main(model_name, ensemble, temperature, ps, timestep, molecules, molecule_set, skip, seeds, xtb, recount, only):
    if xtb and model_name:
        raise click.UsageError("--xtb runs the reference; leave out -m")
    if recount:
        return recount_changes(recount, held_out_molecules(molecules, molecule_set, skip), SET_LABELS[molecule_set],
                               int(round(5 / timestep)) * timestep)
    name = "GFN2-xTB (tblite)" if xtb else model_name or chemzoo.default_model("potential").name
    calc = xtb_calculator() if xtb else chemzoo.calculator(name)
    mols = held_out_molecules(molecules, molecule_set, skip)
    label = SET_LABELS[molecule_set]
    unknown = sorted(set(only) - {m for m, _ in mols})
    if unknown:
        raise click.BadParameter(f"{label} {unknown} not among the {len(mols)} held-out molecules "
                                 f"({', '.join(str(m) for m, _ in mols)})", param_hint="--only")
    steps = int(round(ps * 1000 / timestep))
    log_every = max(1, int(round(5 / timestep)))
    print(f"# {time.strftime('%Y-%m-%d')}: {name}, {ensemble} {temperature:g} K, {ps:g} ps at {timestep:g} fs, "
          f"{len(mols)} held-out molecules ({label} {', '.join(str(m) for m, _ in mols)})"
          + (f"; simulated: {label} {', '.join(str(m) for m in sorted(set(only)))} only" if only else ""))
    print("| seed | molecules | atoms | simulated (ps) | molecules with a bond change | changes (molecule: bond at time) | "
          "blow-up | steps/s |")
    print("|---|---|---|---|---|---|---|---|")
    folder = Path(tempfile.mkdtemp(prefix="md_safety_"))
    for seed in seeds:
        box, owner = side_by_side([m for _, m in mols], temperature, seed)
        if only or xtb:  # a box of the chosen molecules only (velocities as drawn for the full box)
            keep = [k for k, (m, _) in enumerate(mols) if not only or m in only]
            runs = [np.flatnonzero(owner == k) for k in keep] if xtb else [np.flatnonzero(np.isin(owner, keep))]
        else:
            runs = [np.arange(len(box))]
        start, changes, simulated, blow_up, atoms, steps_done = time.perf_counter(), [], [], "none", 0, 0
        for n, atoms_of_run in enumerate(runs):
            part = box[atoms_of_run]
            part.calc = calc
            result = run_md(part, ensemble, temperature, timestep, steps, folder / f"{ensemble}-{seed}-{n}.extxyz",
                            log_every=log_every, seed=seed, progress=False, keep_velocities=True, allow_reactions=True)
            renumber = dict(enumerate(atoms_of_run))  # this run's atom -> the full box's atom
            for change in result.bond_changes:
                changes.append(re.sub(r"\b([A-Z][a-z]?)(\d+)", lambda g: f"{g.group(1)}{renumber[int(g.group(2))]}", change))
            if result.blew_up:
                atom = re.search(r"atoms (\d+) ", result.reason or "")
                blow_up = (f"{label} {mols[owner[renumber[int(atom.group(1))]]][0]}: " if atom else "") + result.reason
            simulated.append(result.log[-1]["time_fs"] / 1000 if result.log else 0.0)
            atoms += len(part)
            steps_done += result.log[-1]["time_fs"] / timestep if result.log else 0
        seconds = time.perf_counter() - start
        changed = first_change_of_each_molecule(changes, mols, owner)
        listed = "; ".join(f"{label} {m}: {c}" for m, c in changed.items()) or "none"
        print(f"| {seed} | {len(runs) if xtb else sum(len(set(owner[r])) for r in runs)} | {atoms} | {min(simulated):.2f} | "
              f"{len(changed)} | {listed} | {blow_up} | {steps_done / seconds:.1f} |", flush=True)
    print(f"# trajectories: {folder}")


def first_change_of_each_molecule(changes: list[str], mols, owner) -> dict[int, str]:
    """Molecule (its label index) -> the first of ``changes`` ("bond C5-H9 formed (...) at T fs") in it."""
    changed = {}
    for change in changes:
        atom = re.search(r"\b[A-Z][a-z]?(\d+)-", change)
        changed.setdefault(mols[owner[int(atom.group(1))]][0], change)
    return changed


def recount_changes(path: Path, mols, label: str, frame_fs: float) -> None:
    """The bond changes of a saved side-by-side trajectory (one frame per ``frame_fs``), through the bond watch as
    ``run_md`` applies it: each change reported once, the run going on from the graph with that change."""
    from ase.io import iread

    from chemzoo.potentials.bonds import BondWatch

    _, owner = side_by_side([m for _, m in mols], 300.0, 0)  # which molecule each atom is (not the velocities)
    watch, changes, frames = None, [], 0
    for k, frame in enumerate(iread(str(path), index=":")):
        if len(frame) != len(owner):
            raise click.BadParameter(f"{path} has {len(frame)} atoms; {len(mols)} {label} molecules have {len(owner)}",
                                     param_hint="--recount")
        if watch is None:
            watch = BondWatch(frame)
        elif (change := watch.step(frame)) is not None:
            changes.append(f"{change} at {k * frame_fs:g} fs")
        frames = k + 1
    changed = first_change_of_each_molecule(changes, mols, owner)
    print(f"# recounted {path}: {frames} frames, {(frames - 1) * frame_fs / 1000:.2f} ps, {len(mols)} held-out molecules "
          f"({label} {', '.join(str(m) for m, _ in mols)})")
    print(f"| molecules with a bond change | changes (molecule: bond at time) |\n|---|---|\n| {len(changed)} | "
          + ("; ".join(f"{label} {m}: {c}" for m, c in changed.items()) or "none") + " |")


if __name__ == "__main__":
    main()
