"""Resolving models: bundled, the Hugging Face cache (offline), downloads that fail, checksums, pickles."""

import dataclasses
import json
import shutil

import pytest
import torch
from transformers import GPTNeoConfig, GPTNeoForCausalLM

import chemzoo
from chemzoo.errors import ChecksumError, OfflineError, UnknownModelError
from chemzoo.files import sha256
from chemzoo.hub import resolve, resolve_entry
from chemzoo.loading import list_models, source
from chemzoo.registry import default_model, get_entry

from .conftest import REFERENCE_TOKENIZER


def lay_out_as_hub_cache(cache, repo_id, files_from, commit="0123456789abcdef0123456789abcdef01234567"):
    """A folder as huggingface_hub writes it: models--owner--name/{refs/main, snapshots/<commit>/...}."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snap = repo / "snapshots" / commit
    shutil.copytree(files_from, snap)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    return snap


@pytest.fixture
def hub_env(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def not_bundled(entry):
    return dataclasses.replace(entry, bundled=False)


def test_list_models_has_the_bundled_default():
    entry = default_model("chemgpt")
    assert source(entry) == "bundled" and entry.family == "chemgpt"
    assert entry.files and all(len(h) == 64 for h in entry.files.values())
    assert {e.name for e in list_models("chemgpt")} >= {entry.name, "ChemGPT-4.7M", "ChemGPT-19M", "ChemGPT-1.2B"}
    assert all(e.family == "chemgpt" for e in list_models("chemgpt"))
    with pytest.raises(UnknownModelError, match="unknown family"):
        list_models("proteins")


def test_registered_model_resolves_from_the_hub_cache_when_not_bundled(hub_env):
    entry = not_bundled(default_model())
    snap = lay_out_as_hub_cache(hub_env, entry.hub_repo, default_model().bundled_dir)
    assert source(entry) == "cached"
    assert resolve_entry(entry) == snap
    folder, _ = resolve(entry.hub_repo)  # the hub repo id works as well
    assert folder == snap


def test_the_default_cache_is_found_in_a_fresh_process_without_hf_variables(tmp_path):
    """With neither HF_HUB_CACHE nor HF_HOME set, the cache is huggingface_hub's default (a fresh interpreter: the
    package's ``constants`` submodule is not an attribute until something imports it)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_CACHE", "HF_HOME", "HF_HUB_OFFLINE")}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", "from chemzoo.hub import hub_cache_dir, hub_offline; "
                          "print(hub_cache_dir()); print(hub_offline())"],
                         env=env, capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(tmp_path / "huggingface" / "hub"), "False"]


def test_offline_with_nothing_cached_names_the_variable_the_cache_and_the_repo(hub_env):
    entry = not_bundled(default_model())
    assert source(entry) == "hub"
    with pytest.raises(OfflineError) as err:
        resolve_entry(entry)
    msg = str(err.value)
    assert "HF_HUB_OFFLINE" in msg and str(hub_env) in msg and entry.hub_repo in msg and "\n" not in msg


def test_no_network_and_no_cache_is_one_clear_error(hub_env, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: connection refused
    with pytest.raises(OfflineError, match=r"cannot download chemzoo/.*no network and no cached copy.*cache: "):
        resolve_entry(not_bundled(default_model()))


def test_tampered_file_fails_its_checksum_and_is_named(hub_env):
    entry = not_bundled(default_model())
    snap = lay_out_as_hub_cache(hub_env, entry.hub_repo, default_model().bundled_dir)
    weights = snap / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=r"checksum mismatch for .*model\.safetensors"):
        resolve_entry(entry)


def test_unknown_name_suggests_close_names():
    name = default_model().name
    with pytest.raises(UnknownModelError, match=f"did you mean {name}"):
        chemzoo.load(name[:-2])
    assert get_entry(name.upper()) == default_model()


def test_pickled_weights_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("CHEMZOO_CACHE", str(tmp_path / "cache"))
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ChecksumError, match="cannot be read as plain tensors .* chemzoo never runs code from a checkpoint"):
        chemzoo.load(tmp_path)
    (tmp_path / "pytorch_model.bin").unlink()
    (tmp_path / "weights.pkl").write_bytes(b"x")
    with pytest.raises(ChecksumError, match="never unpickles"):
        chemzoo.load(tmp_path)


def test_a_published_bin_checkpoint_is_converted_once_and_a_malicious_one_refused(hub_env, tmp_path, monkeypatch):
    """ncfrey/ChemGPT-* hold pytorch_model.bin: read with weights_only=True, converted to safetensors in chemzoo's
    cache (sha256 recorded), loaded from there afterwards; a pickle that asks for code is refused, never run."""
    import pickle

    if not REFERENCE_TOKENIZER.exists():
        pytest.skip("needs ../shared/reference")
    monkeypatch.setenv("CHEMZOO_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "published"
    config = GPTNeoConfig(vocab_size=669, hidden_size=32, num_layers=2, num_heads=2,
                          attention_types=[[["global", "local"], 1]], window_size=256, max_position_embeddings=256)
    assert config.bos_token_id == config.eos_token_id == 50256
    torch.manual_seed(0)
    folder.mkdir()
    config.save_pretrained(folder)
    torch.save(GPTNeoForCausalLM(config).state_dict(), folder / "pytorch_model.bin")  # the published repos' format
    for f in REFERENCE_TOKENIZER.iterdir():
        shutil.copy(f, folder)
    lay_out_as_hub_cache(hub_env, "ncfrey/ChemGPT-4.7M", folder)
    gpt = chemzoo.load("ChemGPT-4.7M")
    assert gpt.model.config.bos_token_id == 2 and len(chemzoo.sample(gpt, n=2, seed=0, max_length=8).selfies) == 2
    record = next((tmp_path / "cache" / "converted").glob("*/conversion.json"))
    assert json.loads(record.read_text())["model.safetensors_sha256"] == sha256(record.parent / "model.safetensors")
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("the .bin was read again"))
    again = chemzoo.load("ChemGPT-4.7M")  # from the conversion
    assert all(torch.equal(a, b) for a, b in zip(gpt.model.parameters(), again.model.parameters()))
    monkeypatch.undo()
    monkeypatch.setenv("CHEMZOO_CACHE", str(tmp_path / "cache"))

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "config.json").write_text(json.dumps(config.to_dict()))
    (evil / "pytorch_model.bin").write_bytes(pickle.dumps({"transformer.wte.weight": Payload()}))
    with pytest.raises(ChecksumError, match=r"evil/pytorch_model.bin cannot be read as plain tensors"):
        chemzoo.load(evil)
    assert not marker.exists()  # the payload never ran


@pytest.fixture(scope="module")
def published_layout(tmp_path_factory):
    """A folder like ncfrey/ChemGPT-4.7M: GPT-Neo 24x128 from GPTNeoConfig defaults (bos/eos 50256),
    the published tokenizer files, random weights as safetensors."""
    if not REFERENCE_TOKENIZER.exists():
        pytest.skip("needs ../shared/reference")
    folder = tmp_path_factory.mktemp("ChemGPT-4.7M")
    config = GPTNeoConfig(vocab_size=669, hidden_size=128, num_layers=24, num_heads=16,
                          attention_types=[[["global", "local"], 12]], window_size=256, max_position_embeddings=2048,
                          embed_dropout=0.0, attention_dropout=0.0, resid_dropout=0.0)
    assert config.bos_token_id == config.eos_token_id == 50256
    torch.manual_seed(0)
    model = GPTNeoForCausalLM(config)
    model.save_pretrained(folder, safe_serialization=True)
    for f in REFERENCE_TOKENIZER.iterdir():
        shutil.copy(f, folder)
    return folder


def test_published_chemgpt_layout_loads_unchanged_from_the_hub_cache(hub_env, published_layout):
    lay_out_as_hub_cache(hub_env, "ncfrey/ChemGPT-4.7M", published_layout)
    gpt = chemzoo.load("ChemGPT-4.7M")
    assert gpt.model.config.bos_token_id == 2 and gpt.model.config.eos_token_id == 3  # not GPT-Neo's 50256
    assert len(gpt.tokenizer) == 669
    assert abs(gpt.num_parameters - 4.7e6) / 4.7e6 < 0.1
    result = chemzoo.sample(gpt, n=4, seed=0, max_length=12)
    assert len(result.selfies) == 4 and all(s and "##" not in s for s in result.selfies)  # random weights: any tokens
    config = json.loads((published_layout / "config.json").read_text())
    assert config["bos_token_id"] == 50256  # loading did not rewrite the user's files


def test_corrupt_or_truncated_local_weights_are_refused_naming_the_file(tmp_path):
    from ase.build import molecule

    # the case: a copy of a registered potential with 4 KiB flipped gave -2.3e31 eV for ethanol
    copy = tmp_path / "copy"
    shutil.copytree(get_entry("painn-xtb-moses-53k").bundled_dir, copy)
    data = bytearray((copy / "model.safetensors").read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = bytes(b ^ 0xFF for b in data[middle:middle + 4096])
    (copy / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=r"copy/model.safetensors differs from the registered painn-xtb-moses-53k's"):
        chemzoo.calculator(copy)
    for name in ("painn-xtb-moses-53k", "chemgpt-2.7m-moses-750k"):  # unregistered folders with no checksums (made
        folder = tmp_path / name                                  # elsewhere): the weights themselves are checked
        shutil.copytree(get_entry(name).bundled_dir, folder)
        meta = json.loads((folder / "chemzoo.json").read_text())
        meta.pop("checksums")  # tests/test_bad_inputs.py checks the checksums chemzoo writes
        (folder / "chemzoo.json").write_text(json.dumps({**meta, "name": f"my-{name}"}))
        weights = folder / "model.safetensors"
        data = bytearray(weights.read_bytes())
        data[-4096:] = b"\xff" * 4096  # NaNs in the last tensor
        weights.write_bytes(bytes(data))
        with pytest.raises(ChecksumError, match=r"weight .* holds NaN, infinite or absurd \(> 1e\+06\) values"):
            chemzoo.load(folder)
        weights.write_bytes(bytes(data[: len(data) // 2]))
        with pytest.raises(ChecksumError, match=r"cannot read the weights in .*model.safetensors \(.*\): the file is truncated"):
            chemzoo.load(folder)
    atoms = molecule("CH3CH2OH")
    atoms.calc = chemzoo.calculator(get_entry("painn-xtb-moses-53k").bundled_dir)
    assert -400 < atoms.get_potential_energy() < -250  # the intact model: about xTB's -310 eV


def test_a_folder_named_like_a_registered_model_does_not_shadow_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(get_entry("painn-xtb-moses-53k").bundled_dir, tmp_path / "painn-xtb-moses-53k")
    with pytest.warns(UserWarning, match="a folder named painn-xtb-moses-53k is in the working directory; the registered"):
        calc = chemzoo.calculator("painn-xtb-moses-53k")
    assert calc.model_name == "painn-xtb-moses-53k"
    local = chemzoo.calculator("./painn-xtb-moses-53k")  # explicit path: the folder
    assert local.model_name == "painn-xtb-moses-53k" and local is not calc


def test_folder_mistakes_and_a_missing_gpu_are_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(OfflineError, match=r"no folder runs/pain here \(runs/ exists: a mistyped path\?\), and as a hub"):
        chemzoo.load("runs/pain")
    (tmp_path / "empty").mkdir()
    with pytest.raises(chemzoo.ChemzooError, match="empty has no .safetensors weights"):
        chemzoo.load(tmp_path / "empty")
    (tmp_path / "noconfig").mkdir()
    shutil.copy(get_entry("painn-xtb-moses-53k").bundled_dir / "model.safetensors", tmp_path / "noconfig")
    with pytest.raises(chemzoo.ChemzooError, match="noconfig has no config.json: not a model folder"):
        chemzoo.load(tmp_path / "noconfig")
    if not torch.cuda.is_available():
        with pytest.raises(chemzoo.ChemzooError, match="device 'cuda' asked for, but torch sees no CUDA GPU"):
            chemzoo.calculator(device="cuda")
        with pytest.raises(chemzoo.ChemzooError, match="device 'cuda' asked for"):
            chemzoo.load(device="cuda")
    with pytest.raises(chemzoo.ChemzooError, match="painn-xtb-moses-53k is a potential, not a language model"):
        chemzoo.sample("painn-xtb-moses-53k", n=2)


def test_one_loader_one_family_table_and_no_import_cycle():
    """Every family's loader is one row of chemzoo.loading.FAMILIES; the registry is data (imports no hub code);
    chemzoo.load takes the same options for both families."""
    import ast
    import inspect

    import chemzoo.registry
    from chemzoo.lm.model import ChemGPT
    from chemzoo.loading import FAMILIES
    from chemzoo.potentials.model import MODEL_TYPE, Potential

    assert FAMILIES["potential"].model_types == (MODEL_TYPE,) and sorted(FAMILIES) == ["chemgpt", "potential"]
    tree = ast.parse(inspect.getsource(chemzoo.registry))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert {m for m in imported if m.startswith("chemzoo")} == {"chemzoo.errors"}  # no hub, no loading: data only
    gpt = chemzoo.load("chemgpt-34.5k-moses-100k", device="cpu", dtype="bfloat16")
    assert isinstance(gpt, ChemGPT) and next(gpt.model.parameters()).dtype == torch.bfloat16
    pot = chemzoo.load("painn-12.1k-xtb-moses-30k", device="cpu", dtype="float64")
    assert isinstance(pot, Potential) and next(pot.parameters()).dtype == torch.float64
    assert chemzoo.list_models("potential") == [e for e in chemzoo.list_models() if e.family == "potential"]


def test_the_hub_safetensors_revision_is_preferred_to_converting_the_bin(hub_env, tmp_path, monkeypatch, published_layout):
    """ncfrey/ChemGPT-* keep pytorch_model.bin on main and the hub's safetensors conversion on refs/pr/1: when
    that revision is cached it is loaded as is (nothing unpickled); without it main's .bin is converted."""
    entry = get_entry("ChemGPT-4.7M")
    assert entry.safetensors_revision == "refs/pr/1" and entry.revision == "main"
    monkeypatch.setenv("CHEMZOO_CACHE", str(tmp_path / "cache"))
    snap = lay_out_as_hub_cache(hub_env, entry.hub_repo, published_layout, commit="f" * 40)
    ref = hub_env / f"models--{entry.hub_repo.replace('/', '--')}" / "refs"
    (ref / "main").rename(ref / "pr-tmp")
    (ref / "refs" / "pr").mkdir(parents=True)
    (ref / "pr-tmp").rename(ref / "refs" / "pr" / "1")  # only refs/pr/1 is cached
    assert source(entry) == "cached"
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("nothing may be unpickled"))
    assert resolve_entry(entry) == snap
    assert chemzoo.load("ChemGPT-4.7M").num_parameters > 4e6
    assert not (tmp_path / "cache" / "converted").exists()


def test_a_first_online_load_prefers_the_safetensors_revision_else_downloads_the_bin(tmp_path, monkeypatch,
                                                                                    published_layout):
    """The download path at huggingface_hub's boundary (no network): which revisions and files are asked for."""
    import fnmatch

    from huggingface_hub.errors import RevisionNotFoundError
    from safetensors.torch import load_file

    import chemzoo.hub as hub

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "hub_offline", lambda: False)
    bin_repo = tmp_path / "bin-repo"  # main as published: pytorch_model.bin, no safetensors
    shutil.copytree(published_layout, bin_repo)
    state = load_file(str(bin_repo / "model.safetensors"))
    (bin_repo / "model.safetensors").unlink()
    torch.save(state, bin_repo / "pytorch_model.bin")
    calls = []

    def fake_snapshot_download(repo_id, revision="main", allow_patterns=None, local_files_only=False, **_):
        calls.append((revision, local_files_only, "pytorch_model.bin" in (allow_patterns or [])))
        if local_files_only:
            raise hub.LocalEntryNotFoundError("not cached")
        if revision == "refs/pr/1":
            if pr_exists:
                return str(published_layout)
            missing = RevisionNotFoundError.__new__(RevisionNotFoundError)  # its HTTP response is not needed here
            Exception.__init__(missing, "404 Client Error: Revision Not Found for url .../refs%2Fpr%2F1")
            raise missing
        out = tmp_path / f"main-{len(calls)}"
        out.mkdir()
        for f in bin_repo.iterdir():
            if any(fnmatch.fnmatch(f.name, p) for p in allow_patterns):
                shutil.copy(f, out)
        return str(out)

    monkeypatch.setattr(hub.huggingface_hub, "snapshot_download", fake_snapshot_download)
    entry = get_entry("ChemGPT-4.7M")
    pr_exists = True
    assert resolve_entry(entry) == published_layout
    assert calls == [("refs/pr/1", True, False), ("refs/pr/1", False, False)]

    calls.clear()
    pr_exists = False
    monkeypatch.setenv("CHEMZOO_CACHE", str(tmp_path / "cache"))
    folder = resolve_entry(entry)
    assert (folder / "model.safetensors").is_file() and (folder / "conversion.json").is_file()
    # main first without pickles; the .bin only because main has no safetensors
    assert calls[-2:] == [("main", False, False), ("main", False, True)]
