"""The model registry: name -> family, size, training-set size, files with sha256, hub repo id.

Entries live in ``registry.json`` beside this file, so a size ladder is a list of rows, not code.
A model is *bundled* (shipped in the wheel under ``chemzoo/checkpoints/<name>``), *cached* (in the
Hugging Face cache) or on the *hub* (downloaded on first use). This module is data only: finding,
checking and loading a model is ``chemzoo.loading``'s (and ``chemzoo.hub``'s) work.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from chemzoo.errors import UnknownModelError

PACKAGE_DIR = Path(__file__).resolve().parent
REGISTRY_FILE = PACKAGE_DIR / "registry.json"


@dataclass(frozen=True)
class ModelEntry:
    """One registered model. ``files`` maps file name -> sha256 (hex); ``params`` counts weights."""

    name: str
    family: str
    params: int
    n_train: int
    hub_repo: str
    revision: str = "main"
    safetensors_revision: str = ""  # a revision with safetensors weights, preferred over converting revision's .bin
    files: dict[str, str] = field(default_factory=dict)
    bundled: bool = False
    default: bool = False
    training_data: str = ""
    description: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def bundled_dir(self) -> Path:
        return PACKAGE_DIR / "checkpoints" / self.name


@lru_cache(maxsize=1)
def _entries() -> dict[str, ModelEntry]:
    rows = json.loads(REGISTRY_FILE.read_text())["models"]
    return {row["name"]: ModelEntry(**row) for row in rows}


def registered(family: str | None = None) -> list[ModelEntry]:
    """Registered models, optionally of one family, smallest first (``chemzoo.list_models`` checks the family)."""
    rows = [e for e in _entries().values() if family in (None, e.family)]
    return sorted(rows, key=lambda e: (e.family, e.params, e.name))


def default_model(family: str = "chemgpt") -> ModelEntry:
    """The family's default model."""
    found = next((e for e in registered(family) if e.default), None)
    if found is None:
        raise UnknownModelError(f"no default model for family {family!r}")
    return found


def close_matches(name: str, n: int = 3) -> list[str]:
    names = list(_entries())
    lower = {k.lower(): k for k in names}
    hits = difflib.get_close_matches(name.lower(), list(lower), n=n, cutoff=0.4)
    return [lower[h] for h in hits]


def get_entry(name: str) -> ModelEntry | None:
    """The entry registered as ``name`` (case-insensitive), or None."""
    entries = _entries()
    if name in entries:
        return entries[name]
    lower = {k.lower(): v for k, v in entries.items()}
    return lower.get(name.lower())


def unknown_model(name: str, reason: str | None = None) -> UnknownModelError:
    if reason:
        return UnknownModelError(f"unknown model {name!r}: {reason}")
    hint = close_matches(name)
    did_you_mean = f"; did you mean {', '.join(hint)}?" if hint else ""
    return UnknownModelError(
        f"unknown model {name!r}{did_you_mean} (`chemzoo models` lists them; a local folder or an owner/name hub id also works)"
    )
