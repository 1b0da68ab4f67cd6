"""MOSES-style generation quality of a ChemGPT, side by side with the MOSES reference models.

    python benchmarks/chemgpt_quality.py --n 10000 --json benchmarks/chemgpt_quality.json

Validity, unique@10k, novelty against the whole of MOSES train (1.58M, RDKit-canonical), IntDiv1
(Morgan r2, 1024 bits) and, where the ``fcd`` package is importable (a peer: install it in a
separate venv, see benchmarks/RESULTS.md), FCD against all of MOSES test (its ChemNet statistics are
computed once and cached next to the MOSES data). References: MOSES test-set
results (Polykovskiy et al. 2020).
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Callable

import click
import numpy as np

import chemzoo
from chemzoo.lm import metrics
from chemzoo.lm.model import smiles_hash
from chemzoo.lm.molecules import canonical_smiles
from training import moses

REFERENCES = {  # MOSES paper, test set: valid, unique@10k, novelty, IntDiv1, FCD/Test
    "MOSES CharRNN": dict(validity=0.975, unique=0.999, novelty=0.842, intdiv=0.856, fcd=0.073),
    "MOSES VAE": dict(validity=0.977, unique=0.998, novelty=0.695, intdiv=0.856, fcd=0.099),
}


def moses_train_hashes() -> np.ndarray:
    """Sorted hashes of the canonical SMILES of all of MOSES train (cached after the first call)."""
    path = moses.default_cache() / "moses-train-canonical-hashes.npy"
    if not path.exists():
        from tqdm.auto import tqdm

        smiles = moses.read_smiles("train")
        hashes = [smiles_hash(c) for c in (canonical_smiles(s) for s in tqdm(smiles, desc="canonical MOSES train", mininterval=5)) if c]
        np.save(path, np.unique(np.array(hashes, dtype=np.int64)), allow_pickle=False)
    return np.load(path, allow_pickle=False)


def chemnet_statistics(smiles: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of ChemNet's penultimate activations (the ``fcd`` package's model)."""
    import fcd

    act = fcd.get_predictions(fcd.load_ref_model(), smiles)
    return act.mean(0), np.cov(act.T)


def fcd_to_reference(smiles: list[str], key: str, reference: Callable[[], list[str]]) -> float | None:
    """FCD between ``smiles`` and a reference set (its ChemNet statistics cached under ``key``); None
    without the ``fcd`` package."""
    try:
        import fcd
    except ImportError:
        return None
    path = moses.default_cache() / f"{key}-chemnet-fcd{fcd.__version__}.npz"
    if not path.exists():
        mu, sigma = chemnet_statistics(reference())
        np.savez(path, mu=mu, sigma=sigma)
    ref = np.load(path, allow_pickle=False)
    mu, sigma = chemnet_statistics(smiles)
    return float(fcd.calculate_frechet_distance(mu1=mu, sigma1=sigma, mu2=ref["mu"], sigma2=ref["sigma"]))


def fcd_to_moses_test(smiles: list[str]) -> float | None:
    """FCD between ``smiles`` and all of MOSES test; None without ``fcd``."""
    return fcd_to_reference(smiles, "moses-test", lambda: moses.read_smiles("test"))


@click.command()
@click.option("-m", "--model", "model_name", default=None, help="Model [default: the bundled ChemGPT].")
@click.option("--n", default=10_000, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--temperature", type=float, default=None, help="[default: the model's own, from its generation_config.json]")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Also write the numbers here.")
def main(model_name, n, seed, temperature, json_out):
    gpt = chemzoo.load(model_name)
    result = chemzoo.sample(gpt, n=n, seed=seed, temperature=temperature, progress=True)
    temperature = result.settings["temperature"]
    train = moses_train_hashes()

    def in_moses_train(canonical):
        return np.isin(np.array([smiles_hash(s) for s in canonical], dtype=np.int64), train)

    valid = [s for s in result.smiles if s is not None]
    ours = dict(validity=metrics.validity(result.smiles), unique=metrics.uniqueness(result.smiles, 10_000),
                novelty=metrics.novelty(result.smiles, in_moses_train), intdiv=metrics.internal_diversity(result.smiles),
                fcd=fcd_to_moses_test(valid))
    ours["novelty_vs_own_training_set"] = metrics.novelty(result.smiles, gpt.in_training_set)
    stamp = f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, {n} samples, T={temperature}, seed {seed}"
    print(f"# {gpt.name} ({gpt.num_parameters:,} parameters): {stamp}; sampling took {result.seconds:.1f} s")
    print("| model | validity | unique@10k | novelty | IntDiv1 | FCD/Test |")
    print("|---|---|---|---|---|---|")
    for name, row in {f"chemzoo {gpt.name}": ours, **REFERENCES}.items():
        fcd_txt = "n/a" if row["fcd"] is None else f"{row['fcd']:.3f}"
        print(f"| {name} | {row['validity']:.3f} | {row['unique']:.3f} | {row['novelty']:.3f} | {row['intdiv']:.3f} | {fcd_txt} |")
    if json_out:
        json_out.write_text(json.dumps({"model": gpt.name, "settings": stamp, "metrics": ours}, indent=2) + "\n")


if __name__ == "__main__":
    main()
