"""Resolve a model name to a local folder: bundled -> Hugging Face cache -> hub download.

Also accepts a local folder or an ``owner/name`` hub repo id. Files with a sha256 in the registry
are verified wherever they came from; only safetensors weights are ever loaded.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import huggingface_hub
import huggingface_hub.constants  # a submodule: not an attribute of the package until imported
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

from chemzoo.errors import ChecksumError, OfflineError
from chemzoo.files import METADATA_FILE, sha256
from chemzoo.registry import ModelEntry, get_entry, unknown_model

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
CHECKPOINT_PATTERNS = ["*.json", "*.safetensors", "*.npy", "*.md", "*.txt"]  # never *.bin / *.pt / *.pkl


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment at call time (HF_HUB_CACHE, HF_HOME)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    return Path(huggingface_hub.constants.HF_HUB_CACHE)


def hub_offline() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE", "")
    return value.upper() in {"1", "ON", "YES", "TRUE"} or huggingface_hub.constants.HF_HUB_OFFLINE


def cached_snapshot(repo_id: str, revision: str = "main") -> Path | None:
    """The folder of ``repo_id`` at ``revision`` in the local Hugging Face cache, or None."""
    try:
        path = huggingface_hub.snapshot_download(
            repo_id, revision=revision, cache_dir=hub_cache_dir(), local_files_only=True,
            allow_patterns=CHECKPOINT_PATTERNS,
        )
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError, OSError):
        return None
    return Path(path)


def download(repo_id: str, revision: str = "main") -> Path:
    """Download ``repo_id`` (config, safetensors, tokenizer, card) into the Hugging Face cache."""
    where = f"(cache: {hub_cache_dir()}, repo: {repo_id})"
    if hub_offline():
        raise OfflineError(f"{repo_id} is not in the Hugging Face cache and HF_HUB_OFFLINE is set {where}; "
                           "unset HF_HUB_OFFLINE to download it, or pass a local folder")

    def fetch(patterns: list[str]) -> Path:
        return Path(huggingface_hub.snapshot_download(repo_id, revision=revision, cache_dir=hub_cache_dir(),
                                                      allow_patterns=patterns,
                                                      endpoint=os.environ.get("HF_ENDPOINT") or None, etag_timeout=10))

    try:
        path = fetch(CHECKPOINT_PATTERNS)
        if not any(path.glob("*.safetensors")):  # a repo that publishes only a pickled state dict (ncfrey/ChemGPT-*):
            path = fetch(CHECKPOINT_PATTERNS + ["pytorch_model.bin"])  # convert_bin reads it as tensors only
    except RepositoryNotFoundError:
        raise OfflineError(f"hub repo {repo_id!r} does not exist or is private {where}") from None
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise OfflineError(f"cannot download {repo_id}: no network and no cached copy {where}; "
                           f"connect, or set HF_HUB_OFFLINE=1 and copy the folder into the cache ({reason})") from None
    return Path(path)


REGISTERED = ("checkpoint file {path} is missing; reinstall chemzoo or delete the folder to download it again",
              "checksum mismatch for {path}: the file is corrupt or was modified; reinstall chemzoo or delete it to "
              "download it again")


def verify(folder: Path, files: dict[str, str], messages: tuple[str, str] = REGISTERED) -> None:
    """Check every file against its sha256 (registered ones by default); the error names the first bad file
    (``messages``: for a missing file and for a mismatch, with ``{path}``)."""
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            raise ChecksumError(messages[0].format(path=path))
        if sha256(path) != expected:
            raise ChecksumError(messages[1].format(path=path))


def read_metadata(folder: Path) -> dict:
    """A folder's ``chemzoo.json`` ({} when it has none); a one-line error when it is not a JSON object."""
    import json

    meta_file = folder / METADATA_FILE
    if not meta_file.is_file():
        return {}
    try:
        meta = json.loads(meta_file.read_text())
    except (ValueError, OSError):
        meta = None
    if not isinstance(meta, dict):
        raise ChecksumError(f"{meta_file} is not readable JSON: the folder is corrupt; restore it")
    return meta


def verify_local_folder(folder: Path) -> None:
    """A local folder, against what its ``chemzoo.json`` promises: when it names a registered model, that model's
    registered weights and config (a corrupt copy would otherwise load and give silently wrong numbers); and
    the checksums chemzoo wrote beside the files it produced."""
    meta = read_metadata(folder)
    name = meta.get("name")
    entry = get_entry(name) if isinstance(name, str) else None
    for file in ("model.safetensors", "config.json") if entry is not None else ():
        expected = entry.files.get(file)
        if expected and (folder / file).is_file() and sha256(folder / file) != expected:
            raise ChecksumError(f"{folder / file} differs from the registered {entry.name}'s (sha256): the copy is corrupt "
                                f"or was modified; use the registered name {entry.name!r}, or if you changed it on "
                                "purpose give it another name in its chemzoo.json")
    meta_file = folder / METADATA_FILE
    verify(folder, meta.get("checksums") or {}, (
        f"{{path}} is missing (its checksum is in {meta_file}); restore the folder",
        f"{{path}} does not match the checksum chemzoo wrote beside it in {METADATA_FILE}: the file is corrupt or was "
        "modified after training; restore it from where it came"))


def check_finite_weights(tensors, path: Path, limit: float = 1e6) -> None:
    """Refuse weights that no trained model has (NaN, inf, |w| > ``limit``): a corrupt or tampered file
    would otherwise give silently wrong numbers."""
    import torch

    for name, t in tensors:
        if t.is_floating_point() and t.numel() and not (torch.isfinite(t).all() and t.abs().max() <= limit):
            raise ChecksumError(f"{path}: weight {name} holds NaN, infinite or absurd (> {limit:g}) values; the file is "
                                "corrupt or was modified: restore it from where it came")


def read_safetensors(path: Path, header_only: bool = False) -> dict | None:
    """A safetensors file's tensors (or only a check of its header and size, ``header_only``), with a
    one-line error naming the file when it cannot be read."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    try:
        if header_only:
            with safe_open(str(path), "pt"):
                return None
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ChecksumError(f"cannot read the weights in {path} ({reason}): the file is truncated or corrupt; "
                            "restore it, or delete the folder to download it again") from None


PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".ckpt"}  # files chemzoo never unpickles as a whole


def converted_cache() -> Path:
    """Where chemzoo keeps safetensors conversions of published ``pytorch_model.bin`` files."""
    return Path(os.environ.get("CHEMZOO_CACHE", Path.home() / ".cache" / "chemzoo")).expanduser() / "converted"


def convert_bin(folder: Path) -> Path:
    """A folder holding ``pytorch_model.bin`` (e.g. the published ``ncfrey/ChemGPT-*``), converted once into
    chemzoo's cache: the pickle read with ``torch.load(weights_only=True)`` (tensors only, never a full
    unpickle), written as ``model.safetensors`` with its sha256 recorded, the other files copied. Later
    loads use the conversion (checked against its recorded sha256)."""
    import json
    import shutil
    import tempfile

    import torch
    from safetensors.torch import save_file

    source = folder / "pytorch_model.bin"
    digest = sha256(source)
    out = converted_cache() / digest[:32]
    record = out / "conversion.json"
    if record.is_file():
        verify(out, {"model.safetensors": json.loads(record.read_text())["model.safetensors_sha256"]})
        return out
    try:
        state = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for anything beyond tensors; other errors for a corrupt file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ChecksumError(f"{source} cannot be read as plain tensors ({reason[:160]}); chemzoo never runs code from "
                            "a checkpoint: ask its publisher for model.safetensors") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ChecksumError(f"{source} holds something other than a dictionary of tensors; not a weights file")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=".converting-"))
    try:
        for path in folder.iterdir():
            if path.is_file() and path.suffix not in PICKLE_SUFFIXES:
                shutil.copy2(path, tmp / path.name)
        save_file({k: v.detach().clone().contiguous() for k, v in state.items()}, str(tmp / "model.safetensors"),
                  metadata={"format": "pt"})
        (tmp / "conversion.json").write_text(json.dumps({
            "source": str(source), "pytorch_model.bin_sha256": digest,
            "model.safetensors_sha256": sha256(tmp / "model.safetensors")}, indent=2) + "\n")
        tmp.replace(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _check_weights(folder: Path, label: str) -> Path:
    if not any(folder.glob("*.safetensors")):
        if (folder / "pytorch_model.bin").is_file():
            return convert_bin(folder)
        pickled = [p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES]
        extra = f" (found {', '.join(pickled)}: chemzoo never unpickles weights; convert them to safetensors)" if pickled else ""
        raise ChecksumError(f"{label} has no .safetensors weights in {folder}{extra}")
    return folder


def snapshot(repo_id: str, revision: str = "main") -> Path:
    """``repo_id`` at ``revision``: from the Hugging Face cache, else downloaded (a one-line OfflineError when neither)."""
    return cached_snapshot(repo_id, revision) or download(repo_id, revision)


def safetensors_snapshot(entry: ModelEntry) -> Path | None:
    """The entry's ``safetensors_revision`` (e.g. the hub's safetensors conversion, ``refs/pr/1``, of a repo whose
    ``revision`` holds only ``pytorch_model.bin``), cached or downloaded, when it holds safetensors weights;
    None otherwise (offline and not cached, no such revision, no network), and then ``revision`` is used."""
    if not entry.safetensors_revision:
        return None
    try:
        folder = snapshot(entry.hub_repo, entry.safetensors_revision)
    except OfflineError:
        return None
    return folder if any(folder.glob("*.safetensors")) else None


def resolve_entry(entry: ModelEntry) -> Path:
    """Folder of a registered model: bundled, else cached, else downloaded (its safetensors revision preferred
    where it has one); checksums verified."""
    if entry.bundled and entry.bundled_dir.is_dir():
        folder = entry.bundled_dir
    else:
        folder = safetensors_snapshot(entry) or snapshot(entry.hub_repo, entry.revision)
    verify(folder, entry.files)
    return _check_weights(folder, entry.name)


def registered_name(text: str) -> ModelEntry | None:
    """The entry ``text`` names when it is a bare registered name (no path separator, not ``./`` or ``~``):
    such a name means the registered model even where a same-named folder is in the working directory."""
    return get_entry(text) if os.sep not in text and not text.startswith((".", "~")) else None


def resolve(name_or_path: str | os.PathLike) -> tuple[Path, ModelEntry | None]:
    """A local folder holding the model, and its registry entry when it is a registered name."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    entry = get_entry(text)
    if path.is_dir() and registered_name(text) is None:
        verify_local_folder(path)
        return _check_weights(path, text), None
    if entry is not None:  # a registered name wins over a same-named folder here (which has no checksums)
        if path.is_dir():
            warnings.warn(f"a folder named {text} is in the working directory; the registered {entry.name} is used "
                          f"(pass ./{text} to load the folder)", stacklevel=3)
        return resolve_entry(entry), entry
    if REPO_ID.match(text) and not path.exists():
        try:
            folder = snapshot(text)
        except OfflineError as exc:
            first = text.split("/")[0]
            if Path(first).is_dir():  # "runs/pain" for "runs/painn": say so, not only that the hub is out of reach
                raise OfflineError(f"no folder {text} here ({first}/ exists: a mistyped path?), and as a hub id: "
                                   f"{exc}") from None
            raise
        return _check_weights(folder, text), None
    raise unknown_model(text)
