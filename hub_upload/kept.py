"""Registered checkpoints kept for the hub but not shipped in the wheel (``hub_upload/kept/<name>/``).

The package bundles the family defaults and the ladder within ``MAX_BUNDLE_BYTES``; superseded checkpoints
(earlier rounds of active learning, say) stay registered, with their checksums, and are published to the hub
from here. Until the hub is reachable, ``cache`` puts one into the Hugging Face cache as a download would, so
its name loads offline and every number printed with it can be reproduced:

    python -m hub_upload unbundle schnet-xtb-moses-53k-md2   # chemzoo/checkpoints/ -> hub_upload/kept/, registry: not bundled
    python -m hub_upload cache schnet-xtb-moses-53k-md2      # -> $HF_HUB_CACHE/models--chemzoo--schnet-xtb-moses-53k-md2
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import click

from chemzoo.hub import hub_cache_dir, verify
from chemzoo.registry import REGISTRY_FILE, get_entry

KEPT_DIR = Path(__file__).resolve().parent / "kept"
MAX_BUNDLE_BYTES = 60_000_000  # all of chemzoo/checkpoints (issue 10)


def folder_bytes(folder: Path) -> int:
    """Bytes of every file under ``folder``."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def bundle_bytes(checkpoints: Path | None = None) -> int:
    """Bytes of every bundled checkpoint file (``chemzoo/checkpoints``)."""
    return folder_bytes(checkpoints or REGISTRY_FILE.parent / "checkpoints")


def bundled_row(data: dict, name: str) -> dict:
    """The registry row (of ``data``, a parsed registry) of a bundled model; an error if it is not registered or
    not bundled."""
    row = next((m for m in data["models"] if m["name"] == name), None)
    if row is None:
        raise click.ClickException(f"{name} is not registered")
    if not row["bundled"]:
        raise click.ClickException(f"{name} is not bundled")
    return row


def unbundle(name: str, registry: Path | None = None, kept: Path | None = None) -> Path:
    """Move a bundled, non-default checkpoint to ``kept`` and mark it not bundled in the registry (its files and
    checksums unchanged); return its new folder."""
    registry, kept = registry or REGISTRY_FILE, kept or KEPT_DIR
    data = json.loads(registry.read_text())
    row = bundled_row(data, name)
    if row["default"]:
        raise click.ClickException(f"{name} is its family's default; make another model the default first")
    source = registry.parent / "checkpoints" / name
    verify(source, row["files"])
    target = kept / name
    if target.exists():
        raise click.ClickException(f"{target} exists; remove it first")
    kept.mkdir(parents=True, exist_ok=True)
    shutil.move(str(source), str(target))
    row["bundled"] = False
    registry.write_text(json.dumps(data, indent=2) + "\n")
    return target


def kept_folder(name: str, kept: Path | None = None) -> Path | None:
    """The kept folder of a registered, unbundled model, or None."""
    entry = get_entry(name)
    folder = (kept or KEPT_DIR) / (entry.name if entry else name)
    return folder if entry is not None and not entry.bundled and folder.is_dir() else None


def snapshot_id(files: dict[str, str]) -> str:
    """A stand-in commit id (40 hex digits) for a cached copy: digest of its files' sha256, so the same files give
    the same id. A real download's snapshot is named by the hub commit instead."""
    return hashlib.sha1(json.dumps(sorted(files.items())).encode()).hexdigest()


def cache(name: str, cache_dir: Path | None = None, kept: Path | None = None) -> Path:
    """Lay a kept model out in the Hugging Face cache as ``huggingface_hub`` writes a download
    (``models--owner--name/refs/<revision>``, ``snapshots/<id>/``), checksums verified first; return the snapshot."""
    entry = get_entry(name)
    if entry is None:
        raise click.ClickException(f"{name} is not registered")
    folder = kept_folder(entry.name, kept)
    if folder is None:
        where = "bundled (it loads as is)" if entry.bundled else f"not in {kept or KEPT_DIR}"
        raise click.ClickException(f"{entry.name} is {where}")
    verify(folder, entry.files)
    repo = (cache_dir or hub_cache_dir()) / f"models--{entry.hub_repo.replace('/', '--')}"
    commit = snapshot_id(entry.files)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True, exist_ok=True)
    for file in entry.files:
        shutil.copy2(folder / file, snap / file)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / entry.revision).write_text(commit)
    return snap
