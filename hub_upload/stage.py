"""Stage a trained checkpoint folder: verify it, register it (sha256 of every file), optionally bundle
it inside the package, and publish it to the Hugging Face Hub (dry run unless ``--push``).

    python -m hub_upload.stage runs/x/checkpoint --name chemgpt-2.7m-moses --bundle --default
    python -m hub_upload.stage runs/x/checkpoint --name chemgpt-2.7m-moses --push   # needs HF_TOKEN

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


@click.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--name", required=True, help="Registry name (also the hub repo name under chemzoo/).")
@click.option("--bundle/--no-bundle", default=False, help="Copy the folder into chemzoo/checkpoints/<name>.")
@click.option("--default", "default", is_flag=True, help="Make it its family's default model.")
@click.option("--description", default="", help="One paragraph for `chemzoo models info`.")
@click.option("--push", is_flag=True, help="Upload to the hub (otherwise a dry run lists what would be sent).")
def main(folder, name, bundle, default, description, push):
    """Verify, register, bundle and (optionally) publish a checkpoint folder."""
    check_folder(folder)
    if bundle:
        checkpoints = (REGISTRY_FILE.parent / "checkpoints").resolve()
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) or ".." in name \
                or (checkpoints / name).resolve().parent != checkpoints:
            raise click.BadParameter(f"{name!r} is not a plain model name (letters, digits, '.', '_', '-')",
                                     param_hint="--name")
        size = sum(p.stat().st_size for p in folder.iterdir())
        if size > MAX_BUNDLED_BYTES:
            raise click.ClickException(f"{folder} is {size / 2**20:.1f} MiB; bundled checkpoints must stay under 20 MiB")
        target = REGISTRY_FILE.parent / "checkpoints" / name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(folder, target)
        folder = target
    row = registry_row(folder, name, bundle, default, description)
    write_registry_row(row)
    click.echo(f"registered {name}: {row['params']:,} parameters, {len(row['files'])} files checksummed")
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
