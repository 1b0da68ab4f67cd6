"""How large a block of edges the inference path should take on a CPU: one model, several block sizes, in one run.

    python -m benchmarks.edge_blocks -m painn-xtb-moses-53k --mb 16 --mb 4 --mb 2 --mb 1

Per-edge tensors are built block by block (``chemzoo.potentials.layers.edge_blocks``). Blocks that fit the CPU's
cache run the few elementwise operations per edge faster; blocks too small leave a thread little to do per
operation. For each size (MB per (edges, width) float32 tensor; PaiNN's ``LEAN_BLOCK_BYTES``, SchNet's
``CACHE_BLOCK_BYTES``) prints the best of several calls, energy + forces, float32: aspirin, periodic water boxes of
~1,000 and ~8,000 atoms, and the committed MOSES slice's first 128 molecules evaluated one at a time and in batches
of 64 (seconds per structure). The sizes take turns (``--rounds``), so a drift in the machine's speed hits them alike.
"""

from __future__ import annotations

import time

import click
import numpy as np

import chemzoo
from benchmarks.batched import DATA
from benchmarks.potential import call_times, systems
from chemzoo.potentials import painn, schnet_fused
from chemzoo.potentials.datasets import load_dataset, structures as dataset_structures

SETTING = {"painn": (painn, "LEAN_BLOCK_BYTES"), "schnet": (schnet_fused, "CACHE_BLOCK_BYTES")}


def repeats(atoms) -> int:
    """Calls timed per turn: many on a small molecule, one on the ~8k-atom box."""
    return 50 if len(atoms) < 100 else 3 if len(atoms) < 5000 else 1


def best(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


@click.command()
@click.option("-m", "--model", default="painn-xtb-moses-53k", show_default=True, help="A PaiNN or SchNet potential.")
@click.option("--mb", "sizes", type=float, multiple=True, default=(16, 4, 2, 1), show_default=True,
              help="Block size in MB (repeatable).")
@click.option("--rounds", type=click.IntRange(min=1), default=3, show_default=True, help="Turns each size takes.")
def main(model, sizes, rounds):
    calc = chemzoo.calculator(model)
    architecture = calc.potential.config.architecture
    if architecture not in SETTING:
        raise click.BadParameter(f"{model} is a {architecture} model; this compares {', '.join(SETTING)}", param_hint="-m")
    module, name = SETTING[architecture]
    boxes, rng = systems(), np.random.default_rng(0)
    molecules = dataset_structures(load_dataset(DATA), range(128), labels=False)
    rows = {k: {} for k in [*boxes, "molecules one by one", "molecules in batches of 64"]}
    for _ in range(rounds):
        for mb in sizes:
            setattr(module, name, int(mb * 2**20))
            for label, atoms in boxes.items():
                t = min(call_times(calc, atoms, 1 + repeats(atoms), rng)[1:])  # the first call warms up
                rows[label][mb] = min(rows[label].get(mb, float("inf")), t)
            for label, batch in (("molecules one by one", 1), ("molecules in batches of 64", 64)):
                calc.evaluate(molecules[:batch], batch_size=batch)
                t = best(lambda: calc.evaluate(molecules, batch_size=batch), 2) / len(molecules)
                rows[label][mb] = min(rows[label].get(mb, float("inf")), t)
    print(f"# {time.strftime('%Y-%m-%d')}: {model} ({architecture}), {module.__name__}.{name}; seconds per call "
          "(per structure for the molecules), best of several; ratio: the first size's time over each")
    print("| system | " + " | ".join(f"{mb:g} MB" for mb in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for label, times in rows.items():
        first = times[sizes[0]]
        print(f"| {label} | " + " | ".join(f"{times[mb]:.4g} ({first / times[mb]:.2f}x)" for mb in sizes) + " |")


if __name__ == "__main__":
    main()
