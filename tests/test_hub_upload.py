"""Staging checkpoints: checksums into the registry, refusal of pickles and of folders without a card."""

import json
import shutil

import click
import pytest
from click.testing import CliRunner

from chemzoo.hub import sha256
from chemzoo.registry import default_model
from chemzoo.registry import REGISTRY_FILE as REGISTRY_FILE_REAL
from hub_upload.stage import check_folder, main, registry_row, write_registry_row


def test_registry_row_checksums_every_file(tmp_path):
    folder = default_model().bundled_dir
    row = registry_row(folder, "chemgpt-copy", bundled=False, default=False, description="x")
    assert row["files"]["model.safetensors"] == sha256(folder / "model.safetensors")
    assert set(row["files"]) == {p.name for p in folder.iterdir()}
    assert row["family"] == "chemgpt" and row["hub_repo"] == "chemzoo/chemgpt-copy" and row["n_train"] == 750_000
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"models": [{**row, "name": "old", "default": True}]}))
    write_registry_row({**row, "default": True}, registry)
    rows = {r["name"]: r for r in json.loads(registry.read_text())["models"]}
    assert rows["chemgpt-copy"]["default"] and not rows["old"]["default"]  # one default per family


def test_pickled_files_and_missing_cards_are_refused(tmp_path):
    folder = tmp_path / "ckpt"
    shutil.copytree(default_model().bundled_dir, folder)
    (folder / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(click.ClickException, match="pickled files"):
        check_folder(folder)
    (folder / "pytorch_model.bin").unlink()
    (folder / "README.md").unlink()
    with pytest.raises(click.ClickException, match="lacks README.md"):
        check_folder(folder)


def test_dry_run_lists_files_and_never_prints_a_token(tmp_path, monkeypatch):
    import hub_upload.stage as stage

    real_registry = stage.REGISTRY_FILE.read_text()
    monkeypatch.setattr(stage, "REGISTRY_FILE", tmp_path / "registry.json")
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_value")
    result = CliRunner().invoke(main, [str(default_model().bundled_dir), "--name", "chemgpt-copy"])
    assert result.exit_code == 0, result.output
    assert "chemgpt-copy" in (tmp_path / "registry.json").read_text()
    assert REGISTRY_FILE_REAL.read_text() == real_registry  # the package's registry is untouched
    assert "would upload model.safetensors" in result.output and "chemzoo/chemgpt-copy" in result.output
    assert "hf_secret_token_value" not in result.output


def test_bundle_never_touches_anything_outside_the_checkpoints_folder(tmp_path, monkeypatch):
    import hub_upload.stage as stage

    package = tmp_path / "pkg"
    (package / "checkpoints").mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine")
    monkeypatch.setattr(stage, "REGISTRY_FILE", package / "registry.json")
    for name in ("../victim", "../../victim", "a/../../victim", ".."):
        result = CliRunner().invoke(main, [str(default_model().bundled_dir), "--name", name, "--bundle"])
        assert result.exit_code != 0 and "is not a plain model name" in result.output
    assert (victim / "keep.txt").read_text() == "mine"
    ok = CliRunner().invoke(main, [str(default_model().bundled_dir), "--name", "copy", "--bundle"])
    assert ok.exit_code == 0, ok.output
    assert (package / "checkpoints" / "copy" / "model.safetensors").is_file()


@pytest.mark.parametrize("name", [e.name for e in __import__("chemzoo").list_models() if e.bundled])
def test_every_bundled_model_stages_and_verifies(name, tmp_path):
    from hub_upload.publish import SUMS_FILE, stage, verify

    out = stage(name, tmp_path / name)
    meta = verify(out)
    assert meta["name"] == name and (out / SUMS_FILE).is_file() and (out / "README.md").is_file()
    if meta.get("run_name"):  # a ladder size carries its run's records
        assert (out / "records" / "curve.csv").is_file()


def test_push_is_a_dry_run_by_default_and_calls_the_hub_api_with_the_folder(tmp_path, monkeypatch):
    from hub_upload.publish import main as hub_main
    from hub_upload.publish import push, stage

    out = stage("schnet-4.5k-xtb-moses-30k", tmp_path / "s")
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_value")
    dry = CliRunner().invoke(hub_main, ["push", str(out), "--repo-id", "me/schnet"])
    assert dry.exit_code == 0 and "would upload model.safetensors" in dry.output
    assert "hf_secret_token_value" not in dry.output

    class FakeApi:
        calls = []

        def __getattr__(self, method):
            return lambda *args, **kwargs: self.calls.append((method, args, kwargs))

    api = FakeApi()
    files = push(out, "me/schnet", "v1", upload=True, api=api)
    assert "model.safetensors" in files and [c[0] for c in api.calls] == ["create_repo", "create_branch", "upload_folder"]
    assert api.calls[2][2] == dict(folder_path=str(out), repo_id="me/schnet", repo_type="model", revision="v1",
                                   commit_message="chemzoo: schnet-4.5k-xtb-moses-30k")
    (out / "README.md").unlink()  # a folder without a card is never pushed
    api.calls.clear()
    refused = CliRunner().invoke(hub_main, ["push", str(out), "--repo-id", "me/schnet", "--upload"])
    assert refused.exit_code != 0 and "lacks README.md" in refused.output and api.calls == []


def test_bundled_checkpoints_stay_within_60_mb_and_superseded_ones_are_kept_for_the_hub():
    """Issue 10: the wheel's checkpoints stay <= 60 MB; a checkpoint moved out stays registered, with its files in
    hub_upload/kept/ matching the registry's checksums."""
    from chemzoo.hub import verify
    from chemzoo.registry import registered
    from hub_upload.kept import KEPT_DIR, MAX_BUNDLE_BYTES, bundle_bytes

    assert bundle_bytes() <= MAX_BUNDLE_BYTES == 60_000_000
    kept = sorted(p.name for p in KEPT_DIR.iterdir())
    assert "schnet-xtb-moses-53k-md2" in kept
    for name in kept:
        entry = next(e for e in registered() if e.name == name)
        assert not entry.bundled and not entry.bundled_dir.exists()
        verify(KEPT_DIR / name, entry.files)


def test_a_kept_model_loads_by_name_once_cached_as_a_download_would_be(tmp_path, monkeypatch):
    import numpy as np
    from ase.build import molecule

    import chemzoo
    from chemzoo.errors import ChecksumError, OfflineError
    from hub_upload.kept import KEPT_DIR, cache

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    name = "schnet-xtb-moses-53k-md2"
    with pytest.raises(OfflineError, match=f"chemzoo/{name} is not in the Hugging Face cache and HF_HUB_OFFLINE is set"):
        chemzoo.calculator(name)
    snap = cache(name, tmp_path / "hub")
    assert snap.parent.parent == tmp_path / "hub" / f"models--chemzoo--{name}"
    atoms = molecule("CH3CH2OH")
    atoms.calc = chemzoo.calculator(name)
    direct = molecule("CH3CH2OH")
    direct.calc = chemzoo.calculator(KEPT_DIR / name)
    assert atoms.get_potential_energy() == direct.get_potential_energy()
    np.testing.assert_array_equal(atoms.get_forces(), direct.get_forces())
    assert cache(name, tmp_path / "hub") == snap  # the same files, the same snapshot
    weights = snap / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")  # tampered in the cache
    with pytest.raises(ChecksumError, match="model.safetensors"):
        chemzoo.calculator(name)


def test_unbundle_moves_a_checkpoint_out_and_refuses_the_default(tmp_path):
    import click

    from hub_upload.kept import unbundle

    registry = tmp_path / "pkg" / "registry.json"
    (registry.parent / "checkpoints").mkdir(parents=True)
    shutil.copy(REGISTRY_FILE_REAL, registry)
    name = "schnet-4.5k-xtb-moses-30k"
    shutil.copytree(REGISTRY_FILE_REAL.parent / "checkpoints" / name, registry.parent / "checkpoints" / name)
    target = unbundle(name, registry, tmp_path / "kept")
    assert target == tmp_path / "kept" / name and (target / "model.safetensors").is_file()
    assert not (registry.parent / "checkpoints" / name).exists()
    row = next(m for m in json.loads(registry.read_text())["models"] if m["name"] == name)
    assert row["bundled"] is False and row["files"]["model.safetensors"] == sha256(target / "model.safetensors")
    with pytest.raises(click.ClickException, match=f"{name} is not bundled"):
        unbundle(name, registry, tmp_path / "kept")
    default = default_model("potential").name
    with pytest.raises(click.ClickException, match=f"{default} is its family's default; make another model the default first"):
        unbundle(default, registry, tmp_path / "kept")


def test_stage_bundle_keeps_the_wheel_within_its_limit_and_replace_moves_the_superseded_model_out(tmp_path, monkeypatch):
    """Issue 10: `stage --bundle` refuses a checkpoint that would take the bundle over MAX_BUNDLE_BYTES, before
    copying anything; `--replace OLD` counts OLD as gone and moves it to the kept folder, still registered."""
    import hub_upload.kept as kept
    import hub_upload.stage as stage

    package = tmp_path / "pkg"
    (package / "checkpoints").mkdir(parents=True)
    shutil.copy(REGISTRY_FILE_REAL, package / "registry.json")
    small, large = "schnet-4.5k-xtb-moses-30k", "schnet-15.4k-xtb-moses-30k"
    for name in (small, large):
        shutil.copytree(REGISTRY_FILE_REAL.parent / "checkpoints" / name, package / "checkpoints" / name)
    bundle = kept.bundle_bytes(package / "checkpoints")
    small_bytes = stage.folder_bytes(package / "checkpoints" / small)
    monkeypatch.setattr(stage, "REGISTRY_FILE", package / "registry.json")
    monkeypatch.setattr(stage, "MAX_BUNDLE_BYTES", bundle + small_bytes // 2)
    monkeypatch.setattr(kept, "KEPT_DIR", tmp_path / "kept")
    new = [str(REGISTRY_FILE_REAL.parent / "checkpoints" / small), "--name", "schnet-new", "--bundle"]

    refused = CliRunner().invoke(main, new)
    assert refused.exit_code == 1 and "over the" in refused.output and "--replace OLD" in refused.output
    assert not (package / "checkpoints" / "schnet-new").exists()
    wrong = CliRunner().invoke(main, new + ["--replace", "chemgpt-34.5k-moses-100k"])
    assert wrong.exit_code == 2 and "chemgpt-34.5k-moses-100k is a chemgpt model, not potential" in wrong.output
    wrong = CliRunner().invoke(main, new + ["--replace", "schnet-xtb-moses-53k-md4"])
    assert wrong.exit_code == 2 and "schnet-xtb-moses-53k-md4 is not bundled" in wrong.output

    ok = CliRunner().invoke(main, new + ["--replace", large])
    assert ok.exit_code == 0, ok.output
    assert (package / "checkpoints" / "schnet-new" / "model.safetensors").is_file()
    assert not (package / "checkpoints" / large).exists() and (tmp_path / "kept" / large / "model.safetensors").is_file()
    rows = {m["name"]: m for m in json.loads((package / "registry.json").read_text())["models"]}
    assert rows["schnet-new"]["bundled"] and not rows[large]["bundled"]
    assert kept.bundle_bytes(package / "checkpoints") == bundle - stage.folder_bytes(tmp_path / "kept" / large) + small_bytes


def test_stage_replace_refuses_to_strand_the_default(tmp_path, monkeypatch):
    import hub_upload.stage as stage

    package = tmp_path / "pkg"
    (package / "checkpoints").mkdir(parents=True)
    shutil.copy(REGISTRY_FILE_REAL, package / "registry.json")
    monkeypatch.setattr(stage, "REGISTRY_FILE", package / "registry.json")
    default = default_model("potential").name
    folder = REGISTRY_FILE_REAL.parent / "checkpoints" / "schnet-4.5k-xtb-moses-30k"
    result = CliRunner().invoke(main, [str(folder), "--name", "schnet-new", "--bundle", "--replace", default])
    assert result.exit_code == 2 and f"{default} is its family's default" in result.output
    assert not (package / "checkpoints" / "schnet-new").exists()
    result = CliRunner().invoke(main, [str(folder), "--name", "schnet-new", "--replace", default])
    assert result.exit_code == 2 and "--replace is for --bundle" in result.output
