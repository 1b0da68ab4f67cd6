"""NVE energy drift of a bundled potential on held-out molecules (issue 4: < 1 meV/atom/ps, no blow-up).

    python -m benchmarks.md_drift [-m painn-xtb-moses-53k] [--ps 10] [--timestep 0.5] [--molecules 3] [--temperature 300]

Molecules: the test split of the committed xTB slice (tests/data/xtb-moses-200), first geometry of
each (none of these 25 molecules is in the 12,500-molecule dataset the bundled potentials were trained on;
checked by their MOSES indices); velocities at 300 K (seeded); velocity Verlet. Drift = slope of a least-squares line through
the total energy (meV/atom/ps); also the largest excursion from the start.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import click
import numpy as np

import chemzoo
from chemzoo.potentials.md import run_md
from chemzoo.potentials.datasets import first_of_each_molecule, load_dataset, structure

SLICE = Path(__file__).resolve().parent.parent / "tests" / "data" / "xtb-moses-200"


@click.command()
@click.option("-m", "--model", "model_name", default=None)
@click.option("--ps", default=10.0, show_default=True, help="Simulated time per molecule (ps).")
@click.option("--timestep", default=0.5, show_default=True, help="fs")
@click.option("--molecules", default=3, show_default=True)
@click.option("--skip", default=0, show_default=True, help="Start after this many test molecules (to split runs).")
@click.option("--temperature", default=300.0, show_default=True, help="K, of the starting velocities (a hot start probes the walls).")
def main(model_name, ps, timestep, molecules, skip, temperature):
    data = load_dataset(SLICE)
    first = first_of_each_molecule(data, "test")
    calc = chemzoo.calculator(model_name)
    steps = int(round(ps * 1000 / timestep))
    print(f"# {time.strftime('%Y-%m-%d')}: {model_name or chemzoo.default_model('potential').name}, NVE, "
          f"{ps:g} ps at {timestep:g} fs ({steps} steps), {temperature:g} K start, held-out molecules")
    print("| molecule | atoms | simulated (ps) | drift (meV/atom/ps) | max |E - E(0)| (meV/atom) | blew up | steps/s |")
    print("|---|---|---|---|---|---|---|")
    folder = Path(tempfile.mkdtemp(prefix="md_drift_"))
    blow_ups = []
    for k in first[skip : skip + molecules]:
        atoms = structure(data, k, labels=False)
        atoms.calc = calc
        start = time.perf_counter()
        result = run_md(atoms, "nve", temperature, timestep, steps, folder / f"molecule-{k}.extxyz",
                        log_every=max(1, steps // 200), progress=False)
        seconds = time.perf_counter() - start
        t = np.array([r["time_fs"] for r in result.log]) / 1000
        e = np.array([r["total_eV"] for r in result.log]) * 1000 / len(atoms)
        slope = np.polyfit(t, e, 1)[0] if len(t) > 1 else float("nan")
        done = int(round(t[-1] * 1000 / timestep)) if len(t) else 0
        print(f"| {int(data['mol_index'][k])} | {len(atoms)} | {t[-1] if len(t) else 0:.2f} | {slope:+.3f} | "
              f"{np.abs(e - e[0]).max():.3f} | {'yes' if result.blew_up else 'no'} | {max(done, 1) / seconds:.0f} |", flush=True)
        if result.blew_up:
            blow_ups.append(f"molecule {int(data['mol_index'][k])}: {result.reason}")
    for line in blow_ups:
        print(f"# blew up, {line}")
    print(f"# trajectories: {folder}")


if __name__ == "__main__":
    main()
