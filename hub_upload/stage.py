"""Stage a trained checkpoint folder: verify it, register it (sha256 of every file), optionally bundle
it inside the package, and publish it to the Hugging Face Hub (dry run unless ``--push``).

    python -m hub_upload.stage runs/x/checkpoint --name chemgpt-2.7m-moses --bundle --default
    python -m hub_upload.stage runs/x/checkpoint --name chemgpt-2.7m-moses --push   # needs HF_TOKEN
    python -m hub_upload.stage runs/al6/checkpoint --name schnet-xtb-moses-53k-md6 --bundle --default \
        --replace schnet-xtb-moses-53k-md5   # the new default in, the one it supersedes to hub_upload/kept/

A bundled folder must stay under 20 MiB and the whole bundle under ``hub_upload.kept.MAX_BUNDLE_BYTES``;
``--replace OLD`` counts OLD as gone and moves it out of the wheel (``hub_upload unbundle``) once the new one is in.

The token is read by huggingface_hub (HF_TOKEN or ``hf auth login``) and never printed.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import click

from chemzoo.hub import PICKLE_SUFFIXES, sha256
from chemzoo.registry import REGISTRY_FILE
from hub_upload import kept
from hub_upload.kept import MAX_BUNDLE_BYTES, bundle_bytes, bundled_row, folder_bytes

HUB_ORG = "chemzoo"
MAX_BUNDLED_BYTES = 20 * 1024 * 1024


def check_folder(folder: Path) -> dict:
    """Refuse a folder that is not a loadable, pickle-free checkpoint with a card; return its metadata."""
    names = {p.name for p in folder.iterdir() if p.is_file()}
    missing = {"config.json", "model.safetensors", "README.md", "chemzoo.json"} - names
    if missing:
        raise click.ClickException(f"{folder} lacks {', '.join(sorted(missing))}")
    pickled = [n for n in names if Path(n).suffix in PICKLE_SUFFIXES]
    if pickled:
        raise click.ClickException(f"{folder} holds pickled files ({', '.join(pickled)}); only safetensors are published")
    return json.loads((folder / "chemzoo.json").read_text())


def registry_row(folder: Path, name: str, bundled: bool, default: bool, description: str) -> dict:
    meta = check_folder(folder)
    files = {p.name: sha256(p) for p in sorted(folder.iterdir()) if p.is_file()}
    extra = {k: meta[k] for k in ("preset", "architecture", "elements", "cutoff", "test_errors", "md_safe_K") if k in meta}
    if meta["family"] == "chemgpt" and meta.get("metrics", {}).get("val_loss") is not None:
        extra["val_loss"] = meta["metrics"]["val_loss"]  # the zoo table's held-out number for a model not on this machine
    return dict(name=name, family=meta["family"], params=int(meta["params"]), n_train=int(meta["n_train"]),
                hub_repo=f"{HUB_ORG}/{name}", revision="main", files=files, bundled=bundled, default=default,
                training_data=meta.get("training_data", ""), description=description, extra=extra)


def write_registry_row(row: dict, registry: Path | None = None) -> None:
    registry = registry or REGISTRY_FILE  # looked up at call time (tests point it elsewhere)
    data = json.loads(registry.read_text()) if registry.exists() else {"models": []}
    models = [m for m in data["models"] if m["name"] != row["name"]]
    if row["default"]:
        for m in models:
            if m["family"] == row["family"]:
                m["default"] = False
    models.append(row)
    data["models"] = sorted(models, key=lambda m: (m["family"], m["params"], m["name"]))
    registry.write_text(json.dumps(data, indent=2) + "\n")


def check_replaced(replaced: str, family: str, default: bool) -> None:
    """Refuse, before anything is copied, a ``--replace`` that could not be moved out afterwards."""
    data = json.loads(REGISTRY_FILE.read_text()) if REGISTRY_FILE.exists() else {"models": []}
    try:
        row = bundled_row(data, replaced)
    except click.ClickException as exc:
        raise click.BadParameter(exc.message, param_hint="--replace") from None
    problem = (f"is a {row['family']} model, not {family}" if row["family"] != family
               else "is its family's default; the new model must be the default (--default) to replace it"
               if row["default"] and not default else None)
    if problem:
        raise click.BadParameter(f"{replaced} {problem}", param_hint="--replace")


def check_bundle_room(folder: Path, checkpoints: Path, name: str, replaced: str | None) -> None:
    """Refuse, before anything is copied, a folder over 20 MiB or one that would take the bundle over
    ``MAX_BUNDLE_BYTES`` (a folder of the same name is overwritten; ``replaced`` leaves)."""
    size = folder_bytes(folder)
    if size > MAX_BUNDLED_BYTES:
        raise click.ClickException(f"{folder} is {size / 2**20:.1f} MiB; bundled checkpoints must stay under 20 MiB")
    leaving = [checkpoints / n for n in {name, replaced} if n]
    if replaced and not (checkpoints / replaced).is_dir():
        raise click.BadParameter(f"{replaced} is not a bundled checkpoint", param_hint="--replace")
    total = bundle_bytes(checkpoints) - sum(folder_bytes(p) for p in leaving if p.is_dir()) + size
    if total > MAX_BUNDLE_BYTES:
        raise click.ClickException(
            f"bundling {name} would make the bundled checkpoints {total / 1e6:.1f} MB, over the "
            f"{MAX_BUNDLE_BYTES / 1e6:.0f} MB limit; name the model it supersedes with --replace OLD, or "
            f"`python -m hub_upload unbundle` one first")


@click.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--name", required=True, help="Registry name (also the hub repo name under chemzoo/).")
@click.option("--bundle/--no-bundle", default=False, help="Copy the folder into chemzoo/checkpoints/<name>.")
@click.option("--default", "default", is_flag=True, help="Make it its family's default model.")
@click.option("--description", default="", help="One paragraph for `chemzoo models info`.")
@click.option("--replace", "replaced", default=None, metavar="OLD",
              help="With --bundle: a bundled model the new one supersedes; it moves to hub_upload/kept/ (still registered).")
@click.option("--push", is_flag=True, help="Upload to the hub (otherwise a dry run lists what would be sent).")
def main(folder, name, bundle, default, description, replaced, push):
    """Verify, register, bundle and (optionally) publish a checkpoint folder."""
    meta = check_folder(folder)
    if replaced and not bundle:
        raise click.UsageError("--replace is for --bundle: it makes room in the wheel for the new checkpoint")
    if bundle:
        checkpoints = (REGISTRY_FILE.parent / "checkpoints").resolve()
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) or ".." in name \
                or (checkpoints / name).resolve().parent != checkpoints:
            raise click.BadParameter(f"{name!r} is not a plain model name (letters, digits, '.', '_', '-')",
                                     param_hint="--name")
        if replaced:
            check_replaced(replaced, meta["family"], default)
        check_bundle_room(folder, checkpoints, name, replaced)
        target = REGISTRY_FILE.parent / "checkpoints" / name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(folder, target)
        folder = target
    row = registry_row(folder, name, bundle, default, description)
    write_registry_row(row)
    click.echo(f"registered {name}: {row['params']:,} parameters, {len(row['files'])} files checksummed")
    if replaced:
        click.echo(f"moved {replaced} out of the wheel to {kept.unbundle(replaced, REGISTRY_FILE, kept.KEPT_DIR)}")
    if push:
        from huggingface_hub import HfApi

        api = HfApi()
        api.create_repo(row["hub_repo"], exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=row["hub_repo"], commit_message=f"chemzoo: {name}")
        click.echo(f"pushed to https://huggingface.co/{row['hub_repo']}")
    else:
        for f, digest in row["files"].items():
            click.echo(f"  would upload {f}  sha256={digest[:16]}…  -> {row['hub_repo']}")


if __name__ == "__main__":
    main()
