"""Writing files so that a reader never sees half of one: a temporary file beside the target, then a rename.

Every output chemzoo writes whole (CSV, JSON, SMILES, plots, checkpoint configs and cards) goes through
these; an interrupted or failed write leaves the previous file (or none), never a truncated one.
Streams that must grow while a run goes on (an MD trajectory and its log) are flushed per row instead.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

METADATA_FILE = "chemzoo.json"  # chemzoo's record beside every checkpoint: training metadata and checksums
CHECKSUMMED = ("model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
               "training_set.npy")  # what a model is computed from (the card and the metadata are not)


def write_atomically(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` through a temporary file and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save_figure(fig, path: str | os.PathLike, **savefig_kwargs) -> Path:
    """``fig.savefig`` (a matplotlib ``Figure``) through a temporary file and a rename; the format comes from
    ``path``'s suffix."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        fig.savefig(tmp, **savefig_kwargs)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_metadata(folder: str | os.PathLike, metadata: dict) -> Path:
    """Write ``chemzoo.json`` beside a checkpoint's files with the sha256 of each file the model is computed
    from (``checksums``), so that loading the folder anywhere later can tell a corrupt or modified file."""
    folder = Path(folder)
    record = {k: v for k, v in metadata.items() if k != "checksums"}
    record["checksums"] = {name: sha256(folder / name) for name in CHECKSUMMED if (folder / name).is_file()}
    return write_atomically(folder / METADATA_FILE, json.dumps(record, indent=2) + "\n")
