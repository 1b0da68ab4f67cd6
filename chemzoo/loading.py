"""Name -> folder -> model, for every family, through one table.

``FAMILIES`` holds a row per model family: the ``config.json`` model types it reads, its loader and
how to talk about it. ``chemzoo.load``, ``chemzoo.calculator``, ``chemzoo.list_models`` and the CLI all
go through ``locate`` and ``load`` here; the registry (``chemzoo.registry``) is data only and the hub
(``chemzoo.hub``) only finds and checks folders. Adding a family is one row.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from chemzoo.errors import ChemzooError, UnknownModelError
from chemzoo.registry import ModelEntry, default_model, registered


def _load_chemgpt(folder: Path, device: str, dtype: str | None):
    from chemzoo.lm.model import load_chemgpt

    return load_chemgpt(folder, device=device, dtype=dtype or "float32")


def _load_potential(folder: Path, device: str, dtype: str | None):
    from chemzoo.potentials.model import Potential

    return Potential.from_pretrained(folder, dtype=dtype or "float32", device=device)


@dataclass(frozen=True)
class Family:
    """A model family: what its config.json says (``model_types``), how to load a folder of it
    (``loader(folder, device, dtype)``), and its words for messages."""

    name: str
    model_types: tuple[str, ...]
    loader: Callable
    noun: str  # "a language model (ChemGPT)"
    data_unit: str  # what n_train counts
    dtypes: tuple[str, ...]


FAMILIES = {
    "chemgpt": Family("chemgpt", ("gpt_neo",), _load_chemgpt, "a language model (ChemGPT)", "molecules",
                      ("float32", "bfloat16", "float16")),
    "potential": Family("potential", ("chemzoo_potential",), _load_potential, "a potential", "structures",
                        ("float32", "float64")),
}


def check_family(family: str | None) -> None:
    if family is not None and family not in FAMILIES:
        raise UnknownModelError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")


def list_models(family: str | None = None) -> list[ModelEntry]:
    """Registered models, optionally of one family, smallest first."""
    check_family(family)
    return registered(family)


def source(entry: ModelEntry) -> str:
    """Where a registered model is now: ``bundled``, ``cached`` (Hugging Face cache) or ``hub``."""
    from chemzoo.hub import cached_snapshot

    if entry.bundled and entry.bundled_dir.is_dir():
        return "bundled"
    revisions = (entry.safetensors_revision, entry.revision) if entry.safetensors_revision else (entry.revision,)
    return "cached" if any(cached_snapshot(entry.hub_repo, r) for r in revisions) else "hub"


def check_device(device) -> None:
    """A one-line error for a device this machine does not have (e.g. "cuda" without a GPU)."""
    import torch

    kind = str(device).split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise ChemzooError(f"device {device!r} asked for, but torch sees no CUDA GPU here (torch {torch.__version__}); "
                           "use device='cpu'")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ChemzooError(f"device {device!r} asked for, but MPS is not available here; use device='cpu'")


def family_of(folder: Path, entry: ModelEntry | None) -> Family:
    """The family of a model folder: its registry entry's, else what its config.json says."""
    if entry is not None:
        return FAMILIES[entry.family]
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise ChemzooError(f"{folder} has no config.json: not a model folder (a chemzoo or Hugging Face checkpoint "
                           "holds config.json and model.safetensors)")
    try:
        model_type = json.loads(config_file.read_text()).get("model_type")
    except (ValueError, AttributeError):
        raise ChemzooError(f"{config_file} is not valid JSON: the folder is corrupt; restore it") from None
    for family in FAMILIES.values():
        if model_type in family.model_types:
            return family
    raise ChemzooError(f"{folder} holds no model chemzoo can load (config.json model_type {model_type!r}; chemzoo reads "
                       f"{', '.join(t for f in FAMILIES.values() for t in f.model_types)})")


def locate(name_or_path: str | os.PathLike | None, family: str | None = None
           ) -> tuple[Path, ModelEntry | None, Family]:
    """The checked folder of a model (registered name, local folder or owner/name hub id; default: the
    family's default), its registry entry (None for a folder or hub id) and its family; a one-line
    error when it is another family's model than ``family``."""
    from chemzoo.hub import registered_name, resolve

    check_family(family)
    label = name_or_path or default_model(family or "chemgpt").name
    named = registered_name(str(label))
    if named is not None:  # a registered name's family is known before anything is downloaded
        _check_found(label, FAMILIES[named.family], family)
    folder, entry = resolve(label)
    found = family_of(folder, entry)
    _check_found(label, found, family)
    return folder, entry, found


def _check_found(label, found: Family, family: str | None) -> None:
    if family is not None and found.name != family:
        wanted = FAMILIES[family]
        raise ChemzooError(f"{label} is {found.noun}, not {wanted.noun}; `chemzoo models --family {family}` lists "
                           f"{family} models")


def load(name_or_path: str | os.PathLike | None = None, family: str | None = None, device: str = "cpu",
         dtype: str | None = None):
    """Load any model: a ``ChemGPT`` or a ``Potential`` (see ``locate``); ``dtype`` is one of the family's
    (``FAMILIES[...].dtypes``; default float32)."""
    check_device(device)
    folder, entry, found = locate(name_or_path, family)
    if dtype is not None and dtype not in found.dtypes:
        raise ChemzooError(f"dtype {dtype!r} is not one {found.noun} runs in; use {', '.join(found.dtypes)}")
    return found.loader(folder, device, dtype)
