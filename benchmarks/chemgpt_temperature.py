"""Choose a ChemGPT's sampling temperature without looking at MOSES test: FCD against held-out MOSES train.

    python -m benchmarks.chemgpt_temperature -m chemgpt-2.7m-moses --t 0.8 --t 0.9 --t 1.0 --n 10000 --json t.json
    python -m training.cards CHECKPOINT --temperature-choice t.json   # the lowest into its generation_config.json

The reference is 50,000 MOSES *train* molecules that no chemzoo ChemGPT trained on: molecules
1,500,000 to 1,550,000 of the seed-0 permutation whose first ``n_train`` every ladder run and default
(seed 0, at most 10^6 molecules) trains on. A model trained on a larger or another seed's subset is
refused, since the reference would no longer be held out for it. MOSES test stays untouched, so the
FCD/Test reported by ``benchmarks.chemgpt_quality`` at the chosen temperature is a held-out number.
Needs the ``fcd`` package (a peer; install it in a separate venv, see benchmarks/RESULTS.md).
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import click
import numpy as np

import chemzoo
from benchmarks.chemgpt_quality import fcd_to_reference
from chemzoo.lm import metrics
from training import moses

HELD_OUT = (1_500_000, 1_550_000)  # positions in the seed-0 permutation of MOSES train
HELD_OUT_SEED = 0
REFERENCE = "50,000 held-out MOSES train molecules (positions 1,500,000-1,550,000 of the seed-0 permutation)"


def held_out_train() -> list[str]:
    """The 50,000 held-out MOSES train SMILES (file order)."""
    smiles = moses.read_smiles("train")
    idx = np.random.default_rng(HELD_OUT_SEED).permutation(len(smiles))[slice(*HELD_OUT)]
    return [smiles[i] for i in sorted(idx)]


def check_held_out(gpt) -> None:
    meta = gpt.metadata
    if meta.get("training_data") != "MOSES train (random subset)" or meta.get("seed") != HELD_OUT_SEED \
            or int(meta.get("n_train", HELD_OUT[0] + 1)) > HELD_OUT[0]:
        raise click.ClickException(f"{gpt.name} may have trained on the held-out molecules (it is not a seed-0 MOSES "
                                   f"subset of at most {HELD_OUT[0]:,}); its temperature cannot be chosen on them")


@click.command()
@click.option("-m", "--model", "model_name", default=None, help="Model [default: the bundled ChemGPT].")
@click.option("--t", "temperatures", type=float, multiple=True, default=(0.8, 0.9, 1.0), show_default=True)
@click.option("--n", default=10_000, show_default=True, help="Molecules sampled at each temperature.")
@click.option("--seed", default=0, show_default=True)
@click.option("--json", "json_out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write the table and the lowest temperature here (for `python -m training.cards --temperature-choice`).")
def main(model_name, temperatures, n, seed, json_out):
    """FCD to held-out MOSES train at each temperature; the lowest is the one to use."""
    gpt = chemzoo.load(model_name)
    check_held_out(gpt)
    rows = []
    for t in temperatures:
        result = chemzoo.sample(gpt, n=n, seed=seed, temperature=t, progress=True)
        valid = [s for s in result.smiles if s is not None]
        fcd = fcd_to_reference(valid, "moses-train-heldout-1.50m-1.55m", held_out_train)
        if fcd is None:
            raise click.ClickException("the fcd package is not importable: install it (benchmarks/RESULTS.md)")
        rows.append((t, fcd, metrics.uniqueness(result.smiles, n), metrics.internal_diversity(result.smiles)))
    stamp = f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, {n} samples per temperature, seed {seed}"
    print(f"# {gpt.name}: {stamp}; FCD against 50,000 held-out MOSES train molecules")
    print("| temperature | FCD/held-out train | unique | IntDiv1 |")
    print("|---|---|---|---|")
    best = min(rows, key=lambda r: r[1])
    for t, fcd, unique, intdiv in rows:
        print(f"| {t:g}{' (lowest)' if t == best[0] else ''} | {fcd:.3f} | {unique:.3f} | {intdiv:.3f} |")
    if json_out:
        table = [dict(temperature=t, fcd_held_out_train=f, unique=u, intdiv=d) for t, f, u, d in rows]
        record = dict(model=gpt.name, settings=stamp, reference=REFERENCE, chosen=best[0], rows=table,
                      command="python -m benchmarks.chemgpt_temperature " + (f"-m {model_name} " if model_name else "")
                      + " ".join(f"--t {t:g}" for t in temperatures)
                      + f" --n {n} --seed {seed}")
        json_out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
