"""Peak memory and time per call of chemzoo's potentials through the ASE calculator, one fresh process each.

    python -m benchmarks.memory [--arch painn --arch nequip ...] [--atoms 21 --atoms 1000 --atoms 8000]

Random weights at the shapes ``benchmarks.potential`` compares with the peers (``SHAPES``: SchNet 128 x 6, PaiNN
128 x 3, the e3nn model 32 channels, lmax 2, 3 layers as the bundled one); 5 Å cutoff, float32. Systems: aspirin (21 atoms) and periodic water boxes
of ~1,000 and ~8,000 atoms at 1 g/cm^3 (``benchmarks.potential``). Peak memory is the process's maximum
resident set (``ru_maxrss``) over two energy+forces calls, the time that of the second call.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time

import click
import torch

from benchmarks.potential import SHAPES

CHILD = """
import json, resource, sys, time
from benchmarks.potential import aspirin, chemzoo_calculator, water_box
arch, n = sys.argv[1], int(sys.argv[2])
calc = chemzoo_calculator(arch)
atoms = aspirin() if n < 100 else water_box(n)
atoms.calc = calc
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
atoms.get_forces()
atoms.positions += 1e-3
start = time.perf_counter()
atoms.get_forces()
seconds = time.perf_counter() - start
print(json.dumps(dict(atoms=len(atoms), seconds=seconds, before_kb=before,
                      peak_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))
"""


@click.command()
@click.option("--arch", "archs", multiple=True, default=tuple(SHAPES), show_default=True)
@click.option("--atoms", "sizes", multiple=True, type=int, default=(21, 1000, 8000), show_default=True)
def main(archs, sizes):
    print(f"# {time.strftime('%Y-%m-%d')}, {platform.machine()} ({platform.processor() or 'cpu'}), "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}; one process per row")
    print("| model | atoms | peak memory (GB) | of it before the calls (GB) | seconds per call |")
    print("|---|---|---|---|---|")
    for arch in archs:
        for n in sizes:
            out = subprocess.run([sys.executable, "-c", CHILD, arch, str(n)],
                                 capture_output=True, text=True, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"| {arch} {SHAPES[arch]} | {r['atoms']} | {r['peak_kb'] / 1e6:.2f} | {r['before_kb'] / 1e6:.2f} | "
                  f"{r['seconds']:.3g} |", flush=True)


if __name__ == "__main__":
    main()
