"""Hub-ready folders for registered models: stage, verify, push (``python -m hub_upload ...``).

    python -m hub_upload stage painn-151k-xtb-moses-30k --out staged/painn-151k   # folder + card + records + SHA256SUMS
    python -m hub_upload verify staged/painn-151k                                  # loads it back, checks sums and card
    python -m hub_upload push staged/painn-151k --repo-id chemzoo/painn-151k-xtb-moses-30k   # dry run
    python -m hub_upload push staged/painn-151k --repo-id ... --upload                     # for real
    python -m hub_upload unbundle NAME   # a superseded checkpoint out of the wheel, into hub_upload/kept/ (hub_upload.kept)
    python -m hub_upload cache NAME      # a kept one into the Hugging Face cache, so its name loads offline

The token comes only from huggingface_hub's own sources (``HF_TOKEN``, ``hf auth login``) and is never
printed; a folder that fails ``verify`` (or has no card) is never pushed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click

from chemzoo.errors import ChemzooError
from chemzoo.files import METADATA_FILE, sha256, write_atomically
from hub_upload.stage import check_folder

SUMS_FILE = "SHA256SUMS"
RESULTS = Path(__file__).resolve().parent.parent / "training" / "results"


def stage(name: str, out: Path) -> Path:
    """Copy a registered model's checked folder (bundled, kept in ``hub_upload/kept`` or cached) to ``out`` with its
    card re-rendered from its records, the ladder records of its run (``records/``) where it has one, and
    ``SHA256SUMS`` of every file."""
    from chemzoo.loading import locate
    from hub_upload.kept import kept_folder
    from training.cards import render_card

    kept = kept_folder(name)
    folder, entry, family = locate(kept or name)
    if out.exists() and any(out.iterdir()):
        raise click.ClickException(f"{out} is not empty; stage into a new folder")
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(folder.iterdir()):
        if path.is_file():
            shutil.copy2(path, out / path.name)
    meta = json.loads((out / METADATA_FILE).read_text())
    write_atomically(out / "README.md", render_card(family.name, meta))
    run = meta.get("run_name")
    table = (RESULTS / family.name) / run if run else None
    if table is not None and table.is_dir():
        shutil.copytree(table, out / "records")
    write_sums(out)
    return out


def write_sums(folder: Path) -> None:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != SUMS_FILE)
    write_atomically(folder / SUMS_FILE, "".join(f"{sha256(p)}  {p.relative_to(folder).as_posix()}\n" for p in files))


def verify(folder: Path) -> dict:
    """Check a staged folder: files, SHA256SUMS, the checksums in chemzoo.json, that chemzoo loads it, that the card
    parses (huggingface_hub) and names this model. Returns its metadata; raises a one-line error otherwise."""
    from huggingface_hub import ModelCard

    import chemzoo

    meta = check_folder(folder)
    sums = folder / SUMS_FILE
    if not sums.is_file():
        raise click.ClickException(f"{folder} has no {SUMS_FILE}; stage it with `python -m hub_upload stage`")
    listed = {}
    for line in sums.read_text().splitlines():
        digest, _, rel = line.partition("  ")
        listed[rel] = digest
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != SUMS_FILE}
    if present != set(listed):
        extra, missing = sorted(present - set(listed)), sorted(set(listed) - present)
        raise click.ClickException(f"{folder}: files differ from {SUMS_FILE} (not listed: {', '.join(extra) or '-'}; "
                                   f"missing: {', '.join(missing) or '-'})")
    for rel, digest in listed.items():
        if sha256(folder / rel) != digest:
            raise click.ClickException(f"{folder / rel} does not match {SUMS_FILE}: changed after staging")
    try:
        chemzoo.load(f"{folder}{'/' if not str(folder).endswith('/') else ''}")  # a path, never a registered name
    except ChemzooError as exc:
        raise click.ClickException(f"{folder} does not load: {exc}") from None
    card = ModelCard.load(folder / "README.md")
    if card.data.model_name != meta.get("name") or not card.data.eval_results:
        raise click.ClickException(f"{folder}/README.md is not this model's card (model-index names "
                                   f"{card.data.model_name!r}, chemzoo.json {meta.get('name')!r}) or has no results")
    return meta


def push(folder: Path, repo_id: str, revision: str | None, upload: bool, api=None) -> list[str]:
    """Verify, then upload the folder to ``repo_id`` (``HfApi.create_repo`` + ``upload_folder``), or only list
    what would be uploaded (the default). Returns the files."""
    meta = verify(folder)
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    if not upload:
        return files
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()  # the token: HF_TOKEN or `hf auth login`, read by huggingface_hub itself
    api.create_repo(repo_id, repo_type="model", exist_ok=True)
    if revision:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model", revision=revision,
                      commit_message=f"chemzoo: {meta['name']}")
    return files


@click.group()
def main():
    """Stage, verify and publish chemzoo checkpoints to the Hugging Face Hub."""


@main.command("stage")
@click.argument("name")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="A new folder.")
def stage_command(name, out):
    """Build a hub-ready folder for a registered model (or a checkpoint folder)."""
    stage(name, out)
    click.echo(f"staged {name} -> {out} ({len(list(out.rglob('*')))} files); next: python -m hub_upload verify {out}")


@main.command("unbundle")
@click.argument("name")
def unbundle_command(name):
    """Move a superseded bundled checkpoint out of the wheel into hub_upload/kept/ (still registered)."""
    from hub_upload.kept import MAX_BUNDLE_BYTES, bundle_bytes, unbundle

    target = unbundle(name)
    click.echo(f"{name} -> {target} (registered, not bundled); bundled checkpoints now {bundle_bytes() / 1e6:.1f} MB "
               f"(limit {MAX_BUNDLE_BYTES / 1e6:.0f} MB)")


@main.command("cache")
@click.argument("name")
def cache_command(name):
    """Put a kept model into the Hugging Face cache as a download would, so its name loads offline."""
    from hub_upload.kept import cache

    click.echo(f"{name} -> {cache(name)}")


@main.command("verify")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
def verify_command(folder):
    """Check a staged folder: checksums, loading through chemzoo, the card."""
    meta = verify(folder)
    click.echo(f"{folder}: {meta['name']} verified (checksums, loads, card)")


@main.command("push")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--repo-id", required=True, help="owner/name on the Hugging Face Hub.")
@click.option("--revision", default=None, help="A branch to upload to [default: main].")
@click.option("--upload", is_flag=True, help="Upload for real (otherwise a dry run lists what would be uploaded).")
def push_command(folder, repo_id, revision, upload):
    """Upload a verified folder to the hub (dry run unless --upload)."""
    files = push(folder, repo_id, revision, upload)
    verb = "uploaded" if upload else "would upload"
    for f in files:
        click.echo(f"  {verb} {f}")
    click.echo(f"{verb} {len(files)} files -> https://huggingface.co/{repo_id}" + (f" ({revision})" if revision else ""))
