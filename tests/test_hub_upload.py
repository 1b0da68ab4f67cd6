"""Staging checkpoints: checksums into the registry, refusal of pickles and of folders without a card."""

import json
import shutil

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
    assert row["family"] == "chemgpt" and row["hub_repo"] == "chemzoo/chemgpt-copy" and row["n_train"] == 250_000
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"models": [{**row, "name": "old", "default": True}]}))
    write_registry_row({**row, "default": True}, registry)
    rows = {r["name"]: r for r in json.loads(registry.read_text())["models"]}
    assert rows["chemgpt-copy"]["default"] and not rows["old"]["default"]  # one default per family


def test_pickled_files_and_missing_cards_are_refused(tmp_path):
    folder = tmp_path / "ckpt"
    shutil.copytree(default_model().bundled_dir, folder)
    (folder / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(Exception, match="pickled files"):
        check_folder(folder)
    (folder / "pytorch_model.bin").unlink()
    (folder / "README.md").unlink()
    with pytest.raises(Exception, match="lacks README.md"):
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
