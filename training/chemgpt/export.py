"""Export the latest Lightning checkpoint of a run (finished or still training) as a HF-layout folder.

    python -m training.chemgpt.export runs/chemgpt-2.7m-moses
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from chemzoo.lm.tokenizer import build_tokenizer, load_tokenizer
from training.chemgpt.data import load_corpus
from training.chemgpt.module import ChemGPTModule
from training.results import finish_run


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
def main(run_dir: Path):
    """Write RUN_DIR/checkpoint from RUN_DIR/ckpt/last.ckpt (the run's own, trusted file)."""
    run = json.loads((run_dir / "run.json").read_text())
    state = ChemGPTModule.load_from_checkpoint(run_dir / "ckpt" / "last.ckpt", map_location="cpu")
    corpus = load_corpus(run["n_train"], run["n_val"], run["seed"], skip=run.get("init_n_train", 0))
    # a continued run kept its checkpoint's token ids; a fresh one built them from its corpus
    tokenizer = load_tokenizer(run["init"]) if run.get("init") else build_tokenizer(corpus.train_selfies + corpus.val_selfies)
    metrics = finish_run(run_dir, run, state.model, tokenizer, corpus.train_smiles, wall_time_s=None)
    click.echo(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
