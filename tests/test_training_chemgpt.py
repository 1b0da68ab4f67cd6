"""ChemGPT training: the curve, resume after an interruption, DDP, and the checkpoint it writes."""

import csv
import json
import subprocess
import sys

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
    with pytest.raises(Exception, match="another config"):
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
