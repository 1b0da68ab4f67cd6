"""Pack part of an xTB dataset small enough to ship to a training machine (e.g. a rented GPU).

    python -m training.potentials.pack --data data/xtb-moses-12.5k --part 0 --of 3 --val-structures 2000 \\
        --out gpu-data/part0

Part ``k`` of ``n`` holds the training structures of the train molecules with ``mol_index % n == k``
(whole molecules, so parts never share one), part 0 also the first ``--val-structures`` validation
structures; no test structures travel (evaluate afterwards with ``training.potentials.evaluate``)
unless ``--test-structures`` asks for the first ones of the test split (whole molecules: a fixed test
subset for runs that must finish where they train, e.g. a size ladder). ``--train-structures`` keeps a
seeded random subset of the part's training structures (the ladder's largest training set; its smaller
ones are nested subsets of it, drawn by the trainer).

    python -m training.potentials.pack --data data/xtb-moses-5k --part 0 --of 1 --train-structures 30000 \
        --val-structures 500 --test-structures 3000 --out data/xtb-moses-5k-ladder
Positions stay float32 (Å); forces are stored as float16 (eV/Å; rounding error below 1 meV/Å for
|F| < 2 eV/Å, relative 5e-4 above, far under a potential's error). Each part is one ``chunk-0000k.npz``,
so the parts copied into one folder form a dataset that ``load_dataset`` reads; ``--tag`` keeps the
parts of two datasets of the same molecules apart there (e.g. a thermal and a contact build).
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from chemzoo.potentials.datasets import load_dataset


PER_ATOM = ("numbers", "positions", "forces")  # the other arrays have one row per structure


def select(data: dict[str, np.ndarray], keep: np.ndarray) -> dict[str, np.ndarray]:
    """The structures where ``keep`` (per structure) is true, per-atom arrays cut to match."""
    atom_keep = np.repeat(keep, data["n_atoms"])
    return {k: v[atom_keep] if k in PER_ATOM else v[keep] for k, v in data.items()}


@click.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True)
@click.option("--part", type=click.IntRange(min=0), required=True)
@click.option("--of", "parts", type=click.IntRange(min=1), required=True)
@click.option("--val-structures", type=click.IntRange(min=0), default=2000, show_default=True)
@click.option("--train-structures", type=click.IntRange(min=1), default=None,
              help="Keep a seeded random subset of this many training structures [default: all of the part].")
@click.option("--test-structures", type=click.IntRange(min=0), default=0, show_default=True,
              help="The first this many test structures (rounded up to whole molecules).")
@click.option("--seed", type=int, default=0, show_default=True, help="Of the --train-structures subset.")
@click.option("--tag", default="", help="Prefix of the part's file names (chunk-TAG00000.npz).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
def main(data, part, parts, val_structures, train_structures, test_structures, seed, tag, out):
    """Write one part of the training split (and a validation subset) as a compact chunk."""
    if part >= parts:
        raise click.BadParameter(f"--part must be below --of ({parts})")
    full = load_dataset(data)
    keep = (full["split"] == "train") & (full["mol_index"] % parts == part)
    if train_structures is not None:
        train = np.flatnonzero(keep)
        if train_structures > len(train):
            raise click.BadParameter(f"the part holds {len(train):,} training structures, fewer than {train_structures:,}",
                                     param_hint="--train-structures")
        keep[:] = False
        keep[np.random.default_rng(seed).permutation(train)[:train_structures]] = True
    if part == 0:
        keep[np.flatnonzero(full["split"] == "val")[:val_structures]] = True
        test = np.flatnonzero(full["split"] == "test")
        if test_structures:  # the first ones, and the rest of the last molecule's
            keep[test[:test_structures]] = True
            keep[test[full["mol_index"][test] == full["mol_index"][test[:test_structures][-1]]]] = True
    packed = select(full, keep)
    packed["positions"] = packed["positions"].astype(np.float32)
    packed["forces"] = packed["forces"].astype(np.float16)
    packed["mol_index"] = packed["mol_index"].astype(np.int32)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / f"chunk-{tag}{part:05d}.npz", **packed)
    info = {"source": str(data), "tag": tag, "part": part, "of": parts, "seed": seed, "structures": int(keep.sum()),
            "splits": {s: int((packed["split"] == s).sum()) for s in ("train", "val", "test")}}
    (out / f"pack-{tag}{part}.json").write_text(json.dumps(info, indent=2) + "\n")
    click.echo(json.dumps(info))


if __name__ == "__main__":
    main()
