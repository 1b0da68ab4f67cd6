"""Model cards: render ``cards/<family>.md`` (a ``string.Template`` with Hub YAML metadata) from a
checkpoint's ``chemzoo.json``, and fold an evaluation into it.

    python -m training.cards runs/x/checkpoint --evaluation benchmarks/chemgpt_quality.json
"""

from __future__ import annotations

import json
from pathlib import Path
from string import Template

import click

from chemzoo.files import write_metadata

CARDS = Path(__file__).resolve().parent.parent / "cards"
EVALUATION_ROWS = {  # key in the evaluation -> label in the card
    "validity": "validity", "unique": "unique@10k", "novelty": "novelty (vs all of MOSES train)",
    "novelty_vs_own_training_set": "novelty (vs its own training molecules)", "intdiv": "IntDiv1", "fcd": "FCD/Test",
}


def _fmt(x) -> str:
    return f"{x:.4f}" if isinstance(x, float) else str(x)


def evaluation_table(evaluation: dict) -> str:
    if not evaluation:
        return "Not evaluated yet."
    rows = [f"| {label} | {_fmt(evaluation['metrics'][k]) if evaluation['metrics'].get(k) is not None else 'n/a'} |"
            for k, label in EVALUATION_ROWS.items() if k in evaluation["metrics"]]
    return "\n".join([f"Measured by `benchmarks/chemgpt_quality.py` ({evaluation['settings']}).", "",
                      "| metric | value |", "|---|---|", *rows])


def render_card(family: str, metadata: dict) -> str:
    """Card text: every ``$key`` of the template filled from ``metadata`` (nested ``metrics`` flattened)."""
    values = {k: _fmt(v) for k, v in metadata.items() if not isinstance(v, (dict, list))}
    values.update({k: " ".join(map(str, v)) for k, v in metadata.items() if isinstance(v, list)})
    values.update({k: _fmt(v) for k, v in metadata.get("metrics", {}).items()})
    values.update({k: _fmt(v) for k, v in metadata.get("test_errors", {}).items()})
    values["run_json"] = json.dumps(metadata.get("run", {}), indent=2)
    values["evaluation_table"] = evaluation_table(metadata.get("evaluation", {}))
    values["tested"] = tested_section(metadata)
    return Template((CARDS / f"{family}.md").read_text()).safe_substitute(values)


def tested_section(metadata: dict) -> str:
    """A potential's MD temperature range as tested, and its errors out of distribution, where measured."""
    lines = [f"- Molecular dynamics: {metadata['md_tested']}" if metadata.get("md_tested")
             else "- Molecular dynamics: not tested yet."]
    ood = metadata.get("ood_errors")
    if ood:
        lines.append(f"- Out of distribution ({ood['set']}): force MAE {ood['force_mae_meV_per_A']:.1f} meV/Å, energy MAE "
                     f"{ood['energy_mae_meV_per_atom']:.1f} meV/atom ({ood['command']}).")
    return "\n".join(lines)


@click.command()
@click.argument("checkpoint", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--evaluation", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="JSON written by benchmarks/chemgpt_quality.py --json.")
def main(checkpoint: Path, evaluation: Path | None):
    """Re-render CHECKPOINT/README.md from its chemzoo.json (plus an evaluation, if given)."""
    meta_file = checkpoint / "chemzoo.json"
    metadata = json.loads(meta_file.read_text())
    if evaluation:
        metadata["evaluation"] = json.loads(evaluation.read_text())
        write_metadata(checkpoint, metadata)
    (checkpoint / "README.md").write_text(render_card(metadata["family"], metadata))
    click.echo(f"wrote {checkpoint / 'README.md'}")


if __name__ == "__main__":
    main()
