"""ChemGPT training: the curve, resume after an interruption, DDP, and the checkpoint it writes."""

import csv
import json
import subprocess
import sys

import click
import lightning as L
import pytest

from training.chemgpt.train import train

pytestmark = pytest.mark.usefixtures("moses_cache")

RUN = dict(family="chemgpt", name="chemgpt-test", preset="tiny-l4-h64", n_train=1024, n_val=128, epochs=2,
           max_steps=-1, batch_size=64, lr=1e-3, seed=3, devices=1, ckpt_every=5)


class Crash(Exception):
    pass


class CrashAt(L.Callback):
    def __init__(self, step):
        self.step = step

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.step:
            raise Crash(f"simulated crash at step {trainer.global_step}")


def _curve(path):
    return [(r["step"], r["train_loss"], r["val_loss"]) for r in csv.DictReader(open(path / "curve.csv"))]


def test_resumed_run_has_the_same_curve_as_an_uninterrupted_one(tmp_path):
    whole = train(RUN, tmp_path / "whole")
    with pytest.raises(Crash, match="simulated crash at step 23"):
        train(RUN, tmp_path / "resumed", callbacks=(CrashAt(23),))  # mid second epoch, last checkpoint at 20
    assert not (tmp_path / "resumed" / "checkpoint").exists()
    resumed = train(RUN, tmp_path / "resumed")
    assert _curve(tmp_path / "whole") == _curve(tmp_path / "resumed")
    assert len(_curve(tmp_path / "whole")) == 32 + 2  # 16 steps per epoch, 2 validations
    assert whole["val_loss"] == resumed["val_loss"]
    assert whole["val_loss"] < 3.0  # it learned something: uniform over ~70 tokens is 4.2 nats


def test_rerun_with_another_config_is_refused(tmp_path):
    train({**RUN, "epochs": 1}, tmp_path)
    with pytest.raises(click.UsageError, match="another config"):
        train({**RUN, "epochs": 2}, tmp_path)


def test_checkpoint_opens_with_plain_transformers(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    train({**RUN, "epochs": 1}, tmp_path)
    ckpt = tmp_path / "checkpoint"
    names = {p.name for p in ckpt.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json", "README.md"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    model = AutoModelForCausalLM.from_pretrained(ckpt)
    assert type(model).__name__ == "GPTNeoForCausalLM"
    tok = AutoTokenizer.from_pretrained(ckpt)
    assert tok("[C][O]")["input_ids"][0] == 2 and tok("[C][O]")["input_ids"][-1] == 3
    row = next(csv.DictReader(open(tmp_path / "results.csv")))
    assert row["family"] == "chemgpt" and row["n_train"] == "1024" and int(row["params"]) == model.num_parameters()
    assert json.loads((ckpt / "chemzoo.json").read_text())["n_train"] == 1024


def test_ddp_on_two_cpu_processes(tmp_path, repo_root):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "training.chemgpt.train", "--preset", "tiny-l4-h64", "--n-train", "1024",
           "--n-val", "128", "--epochs", "1", "--batch-size", "32", "--devices", "2", "--seed", "3", "--out", str(out)]
    subprocess.run(cmd, check=True, cwd=repo_root, timeout=600)
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert metrics["steps"] == 16  # 1024 molecules / (32 per step x 2 processes)
    assert metrics["val_loss"] < 4.0


def test_continued_run_trains_on_the_next_molecules_and_records_all_it_saw(tmp_path):
    import numpy as np
    import selfies as sf
    from click.testing import CliRunner

    from chemzoo.lm.model import smiles_hash
    from chemzoo.lm.molecules import canonical_smiles
    from training.chemgpt.data import load_corpus
    from training.chemgpt.train import main

    first = train({**RUN, "epochs": 1}, tmp_path / "first")
    init = tmp_path / "first" / "checkpoint"
    args = ["--init", str(init), "--n-val", "128", "--epochs", "1", "--batch-size", "64", "--seed", "3"]
    result = CliRunner().invoke(main, [*args, "--n-train", "1536", "--out", str(tmp_path / "more")])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "more" / "metrics.json").read_text())
    assert record["run"]["preset"] == "tiny-l4-h64" and record["run"]["init_n_train"] == 1024
    assert record["metrics"]["steps"] == 8  # the 512 new molecules, 64 a step
    curve = list(csv.DictReader(open(tmp_path / "more" / "curve.csv")))
    fresh_start = float(next(csv.DictReader(open(tmp_path / "first" / "curve.csv")))["train_loss"])
    assert float(curve[0]["train_loss"]) < fresh_start - 0.5  # started from the checkpoint's weights, not at random
    assert record["metrics"]["val_loss"] < first["val_loss"]  # and went on learning

    seen = load_corpus(1536, 128, 3)
    before = set(load_corpus(1024, 128, 3).train_smiles)
    new = load_corpus(1536, 128, 3, skip=1024)
    assert new.train_smiles == seen.train_smiles and before < set(seen.train_smiles)
    assert new.train_selfies == [sf.encoder(s) for s in seen.train_smiles if s not in before]  # the 512 not seen
    expected = np.unique([smiles_hash(canonical_smiles(s)) for s in seen.train_smiles])
    np.testing.assert_array_equal(np.load(tmp_path / "more" / "checkpoint" / "training_set.npy"), expected)

    wrong_seed = CliRunner().invoke(main, [*args[:-1], "4", "--n-train", "1536", "--out", str(tmp_path / "x")])
    assert wrong_seed.exit_code == 2 and "saw the MOSES subset of seed 3; pass --seed 3" in wrong_seed.output
    not_more = CliRunner().invoke(main, [*args, "--n-train", "1024", "--out", str(tmp_path / "y")])
    assert not_more.exit_code == 2 and "already saw 1,024 molecules; --n-train must be larger" in not_more.output


def test_a_temperature_choice_becomes_the_checkpoints_default_and_its_card_says_how(tmp_path):
    import shutil

    from click.testing import CliRunner
    from transformers import AutoModelForCausalLM

    import chemzoo
    from chemzoo.hub import verify
    from training.cards import main

    folder = tmp_path / "ckpt"
    shutil.copytree(chemzoo.load("chemgpt-34.5k-moses-100k").path, folder)
    rows = [dict(temperature=t, fcd_held_out_train=f, unique=1.0, intdiv=0.86) for t, f in ((0.8, 2.1), (0.9, 1.7), (1.0, 2.4))]
    choice = dict(model="chemgpt-34.5k-moses-100k", settings="2026-12-01, x86_64, 10000 samples per temperature, seed 0",
                  reference="50,000 held-out MOSES train molecules", chosen=0.9, rows=rows,
                  command="python -m benchmarks.chemgpt_temperature --t 0.8 --t 0.9 --t 1.0 --n 10000 --seed 0")
    (tmp_path / "t.json").write_text(json.dumps(choice))
    result = CliRunner().invoke(main, [str(folder), "--temperature-choice", str(tmp_path / "t.json")])
    assert result.exit_code == 0, result.output

    assert AutoModelForCausalLM.from_pretrained(folder).generation_config.temperature == 0.9  # plain transformers
    reloaded = chemzoo.load(str(folder))
    assert reloaded.sampling_temperature == 0.9 and chemzoo.sample(reloaded, n=4).settings["temperature"] == 0.9
    meta = json.loads((folder / "chemzoo.json").read_text())
    verify(folder, meta["checksums"])  # the rewritten generation_config.json is checksummed again
    card = (folder / "README.md").read_text()
    assert "sets temperature **0.9**" in card and "| 0.9 (chosen) | 1.700 |" in card and "MOSES test was not used" in card

    (tmp_path / "other.json").write_text(json.dumps({**choice, "model": "chemgpt-2.7m-moses"}))
    wrong = CliRunner().invoke(main, [str(folder), "--temperature-choice", str(tmp_path / "other.json")])
    assert wrong.exit_code == 2 and "was measured on 'chemgpt-2.7m-moses', not on 'chemgpt-34.5k-moses-100k'" in wrong.output


def test_temperature_is_chosen_only_on_molecules_the_model_never_saw():
    import click

    from benchmarks.chemgpt_temperature import check_held_out, held_out_train
    from training.chemgpt.data import load_corpus

    class Fake:
        name = "m"

        def __init__(self, **meta):
            self.metadata = {"training_data": "MOSES train (random subset)", "seed": 0, **meta}

    check_held_out(Fake(n_train=1_000_000))
    for meta in (dict(n_train=1_500_001), dict(n_train=1000, seed=1), dict(n_train=1000, training_data="PubChem")):
        with pytest.raises(click.ClickException, match="may have trained on the held-out molecules"):
            check_held_out(Fake(**meta))
    held_out = held_out_train()
    assert len(held_out) == 50_000 and not set(held_out) & set(load_corpus(1024, 128, 0).train_smiles)
