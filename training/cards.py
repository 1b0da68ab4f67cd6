"""Model cards through ``huggingface_hub``: ``cards/<family>.md.j2`` (Jinja) rendered by
``ModelCard.from_template`` from a checkpoint's ``chemzoo.json``, with the YAML front matter and the
``model-index`` block (``ModelCardData`` + ``EvalResult``) written by the library, not by hand.

    python -m training.cards runs/x/checkpoint --evaluation benchmarks/chemgpt_quality.json
    python -m training.cards runs/x/checkpoint --temperature-choice t.json   # benchmarks.chemgpt_temperature --json
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from chemzoo.files import write_atomically, write_metadata

CARDS = Path(__file__).resolve().parent.parent / "cards"
EVALUATION_ROWS = {  # key in the evaluation -> label in the card
    "validity": "validity", "unique": "unique@10k", "novelty": "novelty (vs all of MOSES train)",
    "novelty_vs_own_training_set": "novelty (vs its own training molecules)", "intdiv": "IntDiv1", "fcd": "FCD/Test",
}
ARCHITECTURES = {"schnet": "SchNet (invariant)", "painn": "PaiNN (equivariant)", "nequip": "NequIP-style e3nn (equivariant)"}
CITATION = """@article{frey2023neural,
  title   = {Neural scaling of deep chemical models},
  author  = {Frey, Nathan C. and Soklaski, Ryan and Axelrod, Simon and Samsi, Siddharth and G{\\'o}mez-Bombarelli, Rafael and Coley, Connor W. and Gadepally, Vijay},
  journal = {Nature Machine Intelligence},
  volume  = {5},
  pages   = {1297--1305},
  year    = {2023},
  doi     = {10.1038/s42256-023-00740-3}
}"""


def _fmt(x) -> str:
    return f"{x:.4f}" if isinstance(x, float) else str(x)


def _decimal(x) -> str:
    return "not measured yet" if x is None else f"{x:.1f}"


def _count(x) -> str:
    return f"{int(x):,}" if isinstance(x, (int, float)) else str(x)


def evaluation_table(evaluation: dict) -> str:
    if not evaluation:
        return "Not evaluated yet."
    rows = [f"| {label} | {_fmt(evaluation['metrics'][k]) if evaluation['metrics'].get(k) is not None else 'n/a'} |"
            for k, label in EVALUATION_ROWS.items() if k in evaluation["metrics"]]
    return "\n".join([f"Measured by `benchmarks/chemgpt_quality.py` ({evaluation['settings']}).", "",
                      "| metric | value |", "|---|---|", *rows])


def temperature_section(meta: dict) -> str:
    """How a ChemGPT's default sampling temperature was chosen (the card's text); empty when none was (1.0)."""
    choice = meta.get("sampling_temperature")
    if not choice:
        return ""
    rows = [f"| {r['temperature']:g}{' (chosen)' if r['temperature'] == choice['chosen'] else ''} | "
            f"{r['fcd_held_out_train']:.3f} | {r['unique']:.3f} | {r['intdiv']:.3f} |" for r in choice["rows"]]
    return "\n".join([
        f"`generation_config.json` sets temperature **{choice['chosen']:g}**: `chemzoo sample`, `chemzoo.sample` and "
        f"`transformers`' `generate` use it unless given another (`--temperature` / `temperature=`). It is the "
        f"lowest FCD against {choice['reference']} — molecules this model never trained on; MOSES test was not "
        f"used to choose it (`{choice['command']}`, {choice['settings']}):", "",
        "| temperature | FCD (held-out train) | unique | IntDiv1 |", "|---|---|---|---|", *rows])


def chemgpt_card_data(meta: dict) -> tuple[ModelCardData, dict]:
    from chemzoo.lm.presets import PRESETS

    metrics, run = meta.get("metrics", {}), meta.get("run", {})
    shape = PRESETS.get(meta.get("preset", ""))
    n_val = f"{run['n_val']:,}" if isinstance(run.get("n_val"), int) else "?"
    results = [EvalResult(task_type="text-generation", task_name="Molecule generation", dataset_type="moses",
                          dataset_name=f"MOSES test ({n_val} molecules)", dataset_split="test", metric_type="loss",
                          metric_name="Validation loss (nats/token)", metric_value=round(metrics["val_loss"], 4))]
    evaluation = meta.get("evaluation", {}).get("metrics", {})
    for key, label in EVALUATION_ROWS.items():
        if evaluation.get(key) is not None:
            results.append(EvalResult(task_type="text-generation", task_name="Molecule generation", dataset_type="moses",
                                      dataset_name="MOSES", metric_type=key, metric_name=label,
                                      metric_value=round(evaluation[key], 4)))
    data = ModelCardData(model_name=meta["name"], license="mit", library_name="transformers",
                         pipeline_tag="text-generation", tags=["chemistry", "selfies", "molecule-generation", "chemzoo"],
                         datasets=["molecularsets/moses"], eval_results=results)
    context = dict(preset=meta.get("preset"), layers=shape.num_layers if shape else "?",
                   hidden=shape.hidden_size if shape else "?", max_positions=shape.max_positions if shape else "?",
                   steps=_count(metrics.get("steps")), batch_size=run.get("batch_size", "?"),
                   train_loss=_fmt(metrics.get("train_loss")), val_loss=_fmt(metrics.get("val_loss")),
                   wall_time_s=_fmt(metrics.get("wall_time_s")), n_val=n_val,
                   evaluation_table=evaluation_table(meta.get("evaluation", {})),
                   temperature_section=temperature_section(meta), continued=continued_line(meta))
    return data, context


def continued_line(meta: dict) -> str:
    """A continued run's start: the checkpoint it continued and the molecules it saw before."""
    run = meta.get("run", {})
    if not run.get("init_name"):
        return ""
    return (f"Continued from `{run['init_name']}` (trained on the first {run['init_n_train']:,} molecules of the same seeded "
            f"MOSES permutation) on the next {meta['n_train'] - run['init_n_train']:,}, with a fresh optimiser; the "
            f"optimizer steps and wall time below are this continuation's.")


def potential_card_data(meta: dict) -> tuple[ModelCardData, dict]:
    from ase.data import chemical_symbols

    metrics, run, errors = meta.get("metrics", {}), meta.get("run", {}), meta.get("test_errors", {})
    test = f"GFN2-xTB labels of held-out {meta.get('molecules', 'MOSES molecules')} (test split)"
    results = [EvalResult(task_type="interatomic-potential", task_name="Energies and forces", dataset_type="xtb-moses",
                          dataset_name=test, dataset_split="test", metric_type="mae", metric_name=name,
                          metric_value=round(errors[key], 2))
               for key, name in (("test_force_mae_meV_per_A", "Force MAE (meV/Å)"),
                                 ("test_energy_mae_meV_per_atom", "Energy MAE (meV/atom)")) if errors.get(key) is not None]
    ood = meta.get("ood_errors")
    if ood:
        for key, name in (("force_mae_meV_per_A", "Force MAE (meV/Å)"), ("energy_mae_meV_per_atom", "Energy MAE (meV/atom)")):
            results.append(EvalResult(task_type="interatomic-potential", task_name="Energies and forces",
                                      dataset_type="xtb-drugs-ood", dataset_name=ood["set"], metric_type="mae",
                                      metric_name=name, metric_value=round(ood[key], 2)))
    init = str(meta.get("init") or "random initialisation")
    base = f"chemzoo/{Path(init).name}" if init.startswith("chemzoo/checkpoints/") else None
    data = ModelCardData(model_name=meta["name"], license="mit", library_name="chemzoo", base_model=base,
                         tags=["chemistry", "interatomic-potential", "ase", "gfn2-xtb", "chemzoo", meta["architecture"]],
                         eval_results=results or None)
    context = dict(architecture_long=ARCHITECTURES.get(meta["architecture"], meta["architecture"]),
                   features=run.get("features", "?"), interactions=run.get("interactions", "?"),
                   elements=" ".join(chemical_symbols[z] for z in meta.get("elements", [])),
                   steps=_count(metrics.get("steps")), batch_size=run.get("batch_size", "?"), init=init,
                   test_energy_mae_meV_per_atom=_decimal(errors.get("test_energy_mae_meV_per_atom")),
                   test_force_mae_meV_per_A=_decimal(errors.get("test_force_mae_meV_per_A")),
                   n_test=_count(errors.get("n_test", "?")), wall_time_s=_fmt(metrics.get("wall_time_s")),
                   accelerator=meta.get("accelerator", "cpu"), tested=tested_section(meta))
    return data, context


def render_card(family: str, metadata: dict) -> str:
    """The card of a checkpoint, from its ``chemzoo.json`` (``metadata``), as README.md text."""
    data, context = (chemgpt_card_data if family == "chemgpt" else potential_card_data)(metadata)
    common = dict(name=metadata["name"], params=_count(metadata.get("params")), n_train=_count(metadata.get("n_train")),
                  non_embedding_params=_count(metadata["non_embedding_params"]) if metadata.get("non_embedding_params") else "",
                  training_data=metadata.get("training_data", ""), seed=metadata.get("seed", "?"),
                  ladder_run=metadata.get("run_name", ""), md_tested=metadata.get("md_tested", ""),
                  md_safe_K=metadata.get("md_safe_K"),
                  cutoff=metadata.get("cutoff", "?"), architecture=metadata.get("architecture", ""),
                  run_json=json.dumps(metadata.get("run", {}), indent=2), citation=CITATION)
    card = ModelCard.from_template(data, template_path=str(CARDS / f"{family}.md.j2"), **{**common, **context})
    return str(card).rstrip("\n") + "\n"


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
@click.option("--temperature-choice", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="JSON written by benchmarks/chemgpt_temperature.py --json: its lowest-FCD temperature becomes the "
                   "checkpoint's default (generation_config.json).")
def main(checkpoint: Path, evaluation: Path | None, temperature_choice: Path | None):
    """Re-render CHECKPOINT/README.md from its chemzoo.json (plus an evaluation or a temperature choice, if given)."""
    meta_file = checkpoint / "chemzoo.json"
    metadata = json.loads(meta_file.read_text())
    if temperature_choice:
        from chemzoo.lm.model import set_sampling_temperature

        choice = json.loads(temperature_choice.read_text())
        if metadata.get("family") != "chemgpt" or choice.get("model") != metadata["name"]:
            raise click.UsageError(f"{temperature_choice} was measured on {choice.get('model')!r}, not on "
                                   f"{metadata['name']!r} in {checkpoint}")
        set_sampling_temperature(checkpoint, choice["chosen"])
        metadata["sampling_temperature"] = choice
    if evaluation:
        metadata["evaluation"] = json.loads(evaluation.read_text())
    if evaluation or temperature_choice:
        write_metadata(checkpoint, metadata)  # checksums the rewritten generation_config.json too
    write_atomically(checkpoint / "README.md", render_card(metadata["family"], metadata))
    click.echo(f"wrote {checkpoint / 'README.md'}")


if __name__ == "__main__":
    main()
