"""The ``chemzoo`` command line: models, sample, score, md, scaling.

User mistakes end as one ``Error: ...`` line and a non-zero exit code, never a traceback
(set CHEMZOO_DEBUG=1 to see one for an unexpected failure).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path

import click

from chemzoo.errors import ChemzooError
from chemzoo.files import write_atomically
from chemzoo.loading import FAMILIES
from chemzoo.zoo import human


class Finite(click.FloatRange):
    """A float range that also refuses NaN and infinity (click's FloatRange lets NaN through)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class ChemzooGroup(click.Group):
    """Turns chemzoo's own errors (and stray exceptions) into one line on stderr."""

    def invoke(self, ctx):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                warnings.showwarning = lambda msg, *a, **k: click.echo(f"Warning: {msg}", err=True)
                return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except ChemzooError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            raise click.Abort() from None
        except BrokenPipeError:  # the reader went away (`chemzoo models | head`): stop quietly, as Unix tools do
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
            ctx.exit(141)  # 128 + SIGPIPE, the status a shell reports for a tool stopped by a closed pipe
        except Exception as exc:
            if os.environ.get("CHEMZOO_DEBUG"):
                raise
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            raise click.ClickException(f"unexpected {type(exc).__name__}: {first} (set CHEMZOO_DEBUG=1 for the "
                                       "traceback)") from None


def check_writable(path: Path, overwrite: bool = False) -> None:
    """Fail before the work starts, not after, when the output cannot be written or would replace a file
    without ``--overwrite``."""
    if path.is_dir():
        raise click.BadParameter(f"{path} is a directory; give a file name", param_hint="-o/--output")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise click.BadParameter(f"folder {parent} does not exist", param_hint="-o/--output")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise click.BadParameter(f"cannot write {path}: permission denied", param_hint="-o/--output")
    if path.exists() and not overwrite:
        raise click.BadParameter(f"{path} exists; pass --overwrite to replace it", param_hint="-o/--output")
    probe = path.with_name(f".{path.name}.tmp")  # what write_atomically will create: some file systems refuse it
    try:
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise click.BadParameter(f"cannot write {path}: {exc.strerror or exc}", param_hint="-o/--output") from None


def read_smiles_column(path: Path, column: str | None = None) -> list[tuple[int, str]]:
    """(line number, SMILES) of every molecule in a file, blank lines skipped.

    A ``.smi``/text file: the first whitespace-separated field of each line (a name may follow); a
    header line whose first field is 'smiles' is skipped. A CSV (``.csv`` or a first line with a comma):
    the column named ``column``, else the one called smiles in any case (e.g. ``sample -o x.csv``),
    else the first. A byte-order mark and CRLF line ends are fine; binary or UTF-16 files are refused.
    """
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark is not part of the first SMILES
    except UnicodeDecodeError:
        raise click.ClickException(f"{path} is not UTF-8 text; save it as UTF-8 with one SMILES per line") from None
    if "\x00" in text:
        raise click.ClickException(f"{path} looks binary (or UTF-16); save it as UTF-8 with one SMILES per line")
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    if path.suffix.lower() == ".csv" or "," in first or column is not None:
        rows = list(csv.reader(lines))
        header = [h.strip() for h in rows[0]] if rows else []
        lowered = [h.lower() for h in header]
        if column is not None:
            if column not in header:
                raise click.BadParameter(f"{path} has no column {column!r}; its columns: {', '.join(header) or 'none'}",
                                         param_hint="--column")
            index, skip_header = header.index(column), True
        elif "smiles" in lowered:
            index, skip_header = lowered.index("smiles"), True
        else:  # no header naming the SMILES: the first column, every line a molecule
            index, skip_header = 0, False
        return [(number, row[index].strip()) for number, row in enumerate(rows, start=1)
                if not (skip_header and number == 1) and len(row) > index and row[index].strip()]
    out = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if fields and not (number == 1 and fields[0].lower() == "smiles"):
            out.append((number, fields[0]))
    return out


def read_frames(path: Path) -> list:
    """Every frame of a structure file ASE reads; a one-line error when it cannot or there are none."""
    from ase.io import read

    try:
        frames = read(path, index=":")
    except Exception as exc:  # ASE raises many types for unreadable files
        raise ChemzooError(f"cannot read structures from {path}: {str(exc).splitlines()[0] if str(exc) else exc}")
    if not frames:
        raise ChemzooError(f"{path} holds no structures")
    return frames


def write_frames(path: Path, frames: list) -> None:
    """Structures (with their single-point results) to extxyz, atomically."""
    from ase.io import write

    buf = io.StringIO()
    write(buf, frames, format="extxyz")
    write_atomically(path, buf.getvalue())


def load_chemgpt_or_explain(name):
    """A ChemGPT by name or folder; a one-line error when the name is another family's model."""
    from chemzoo.loading import load

    return load(name, family="chemgpt")


def _overwrite_option(f):
    return click.option("--overwrite", is_flag=True, help="Replace output files that exist (refused otherwise).")(f)


def _potential_option(f):
    return click.option("-m", "--model", "model_name", default=None, metavar="NAME",
                        help="Potential: registered name, local folder or owner/name hub id [default: the bundled "
                             "potential].")(f)


def check_structure_output(output: Path, source: Path | None, what: str, sdf: bool = False) -> None:
    """An extxyz (or, ``sdf``, SDF) output that is not the structure file it is made from (``what``: "the input
    file ...")."""
    from chemzoo.potentials.sdf import SDF_SUFFIXES

    allowed = {".extxyz", ".xyz"} | (SDF_SUFFIXES if sdf else set())
    if output.suffix.lower() not in allowed:
        raise click.BadParameter("use a .extxyz (or .xyz" + (", .sdf" if sdf else "") + ") file name",
                                 param_hint="-o/--output")
    if source is not None and output.resolve() == source.resolve():
        raise click.BadParameter(f"{output} is {what}", param_hint="-o/--output")


def _model_option(f):
    return click.option("-m", "--model", "model_name", default=None, metavar="NAME",
                        help="Registered name, local folder or owner/name hub id [default: the bundled ChemGPT].")(f)


@click.group(cls=ChemzooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="chemzoo")
def main():
    """chemzoo: pretrained ChemGPT language models and neural-network potentials at many sizes."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # loading a small checkpoint is instant: no bar for it


@main.group(invoke_without_command=True)
@click.option("--family", type=click.Choice(list(FAMILIES)), default=None, help="Only this family.")
@click.option("--markdown", is_flag=True, help="The zoo table of the README (held-out metric, where it lives).")
@click.pass_context
def models(ctx, family, markdown):
    """List registered models: name, family, parameters, training set size, where it is."""
    if ctx.invoked_subcommand is not None:
        return
    from chemzoo.loading import list_models, source

    if markdown:
        from chemzoo.zoo import markdown_table

        click.echo(markdown_table(list_models(family)))
        return

    rows = [(e.name + (" (default)" if e.default else ""), e.family, human(e.params), human(e.n_train), source(e))
            for e in list_models(family)]
    header = ("name", "family", "params", "n_train", "source")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())


@models.command("info")
@click.argument("name")
def models_info(name):
    """Print a registered model's card summary."""
    from chemzoo.loading import source
    from chemzoo.registry import get_entry, unknown_model

    entry = get_entry(name)
    if entry is None:
        raise unknown_model(name)
    click.echo(f"{entry.name}  ({entry.family}, {entry.params:,} parameters)")
    click.echo(f"  training data : {entry.training_data} ({entry.n_train:,} {FAMILIES[entry.family].data_unit})")
    click.echo(f"  hub repo      : {entry.hub_repo}@{entry.revision}")
    where = source(entry)
    click.echo(f"  where         : {where}" + (f" ({entry.bundled_dir})" if where == "bundled" else ""))
    for key, value in entry.extra.items():
        if key != "test_errors":
            click.echo(f"  {key:<14}: {value}")
    from chemzoo.zoo import card_metrics

    metrics = card_metrics(entry)
    if metrics:
        click.echo("  measured (from its card):")
        for metric, dataset, value in metrics:
            click.echo(f"    {metric}: {value} ({dataset})")
    if entry.description:
        click.echo(f"\n{entry.description}")


@main.command()
@_model_option
@click.option("-n", "--num", "n", type=click.IntRange(min=1), default=100, show_default=True, help="Molecules to sample.")
@click.option("--temperature", type=Finite(min=0, min_open=True, max=1e6), default=None,
              help="Sampling temperature [default: the model's own, from its generation_config.json; 1.0 if it sets none].")
@click.option("--top-k", type=click.IntRange(min=1), default=None, help="Keep the k most likely tokens.")
@click.option("--top-p", type=Finite(min=0, min_open=True, max=1), default=None, help="Nucleus sampling mass.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same molecules.")
@click.option("--batch-size", type=click.IntRange(min=1), default=512, show_default=True)
@click.option("--max-length", type=click.IntRange(min=2), default=None, help="Most tokens per molecule [default: the model's].")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="out.smi (one SMILES a line) or out.csv (smiles, selfies, valid, novel, log_likelihood as sampled).")
@_overwrite_option
def sample(model_name, n, temperature, top_k, top_p, seed, batch_size, max_length, output, overwrite):
    """Sample molecules from a ChemGPT and write canonical SMILES."""
    import chemzoo
    from chemzoo.lm import metrics

    if output.suffix.lower() not in {".smi", ".csv", ".txt"}:
        raise click.BadParameter("use a .smi, .txt or .csv file name", param_hint="-o/--output")
    for path in (output, output.with_name(output.name + ".json")):
        check_writable(path, overwrite)
    gpt = load_chemgpt_or_explain(model_name)
    as_table = output.suffix.lower() == ".csv"
    result = chemzoo.sample(gpt, n, temperature, top_k, top_p, seed, batch_size, max_length, progress=True,
                            log_likelihood=as_table)
    valid = [s for s in result.smiles if s is not None]
    novel = ~gpt.in_training_set(valid) if gpt.training_hashes is not None else None
    if as_table:  # log_likelihood: nats, the model at temperature 1 on the tokens as sampled
        rows = [["smiles", "selfies", "valid", "novel", "log_likelihood"]]
        novel_iter = iter(novel) if novel is not None else None
        for smi, sel, ll in zip(result.smiles, result.selfies, result.log_likelihood):
            nov = "" if smi is None or novel_iter is None else int(next(novel_iter))
            rows.append([smi or "", sel, int(smi is not None), nov, f"{ll:.4f}"])
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        write_atomically(output, buf.getvalue())
    else:
        write_atomically(output, "".join(s + "\n" for s in valid))
    record = {**result.settings, "model": gpt.name, "model_path": str(gpt.path), "output": str(output),
              "chemzoo": chemzoo.__version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    write_atomically(output.with_name(output.name + ".json"), json.dumps(record, indent=2) + "\n")

    unique = metrics.uniqueness(result.smiles)
    parts = [f"{n} sampled", f"valid {metrics.validity(result.smiles):.1%}", f"unique {unique:.1%}"]
    if novel is not None:
        n_train = gpt.metadata.get("n_train")
        of = f"its {n_train:,}" if isinstance(n_train, int) else "its"
        parts.append(f"novel {metrics.novelty(result.smiles, gpt.in_training_set):.1%} vs {of} training molecules")
    parts.append(f"{result.seconds:.1f} s ({n / result.seconds:.0f} molecules/s)")
    click.echo(", ".join(parts) + f" -> {output}", err=True)


@main.command()
@_model_option
@click.argument("smiles_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="CSV to write [default: stdout].")
@click.option("--column", default=None, help="CSV column holding the SMILES [default: the one called smiles, else the first].")
@click.option("--strip-stereo", is_flag=True, help="Score the flat graph (drop stereocentres and E/Z), for models whose "
              "vocabulary has no stereo symbols (the MOSES-trained ones).")
@click.option("--strict", is_flag=True, help="Exit with an error when any line is skipped (the rest is still written).")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@_overwrite_option
def score(model_name, smiles_file, output, column, strip_stereo, strict, batch_size, overwrite):
    """Log-likelihood of each molecule in a file (.smi, or a CSV with a SMILES column).

    Each SMILES is canonicalised by RDKit and its SELFIES scored, so a molecule gets one score however
    it is written (a sampled string may differ from its canonical form). Writes: line, smiles,
    log_likelihood (nats), num_tokens, log_likelihood_per_token (nats/token), n_unk (symbols outside
    the model's vocabulary, scored as [UNK]: the score of such a molecule is not comparable).
    Invalid or over-long lines are reported with their line numbers and skipped; exit code 0 unless
    nothing could be scored (or --strict and a line was skipped).
    """
    import chemzoo

    if output is not None and output.resolve() == smiles_file.resolve():
        raise click.BadParameter(f"{output} is the input file; write the scores to another file", param_hint="-o/--output")
    if output is not None:
        check_writable(output, overwrite)
    lines = read_smiles_column(smiles_file, column)
    if not lines:
        raise click.ClickException(f"{smiles_file} holds no SMILES")
    gpt = load_chemgpt_or_explain(model_name)
    scores = chemzoo.score(gpt, [s for _, s in lines], batch_size, progress=len(lines) > 2000, strip_stereo=strip_stereo)
    bad = [(number, row) for (number, _), row in zip(lines, scores) if row.error]
    for number, row in bad[:10]:
        click.echo(f"Warning: line {number}: {row.error}; skipped", err=True)
    if len(bad) > 10:
        click.echo(f"Warning: ... and {len(bad) - 10} more skipped lines", err=True)
    if len(bad) == len(lines):
        raise click.ClickException(f"none of the {len(lines)} SMILES in {smiles_file} could be scored (see the warnings)")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["line", "smiles", "log_likelihood", "num_tokens", "log_likelihood_per_token", "n_unk"])
    for (number, _), row in zip(lines, scores):
        if not row.error:
            w.writerow([number, row.smiles, f"{row.log_likelihood:.4f}", row.num_tokens,
                        f"{row.log_likelihood_per_token:.4f}", row.n_unk])
    if output is None:
        click.echo(buf.getvalue(), nl=False)
    else:
        write_atomically(output, buf.getvalue())
    with_unk = sum(1 for row in scores if not row.error and row.n_unk)
    summary = (f"scored {len(lines) - len(bad)} of {len(lines)} SMILES" + (f" -> {output}" if output else "")
               + (f"; {len(bad)} skipped (lines {', '.join(str(n) for n, _ in bad[:10])}{' ...' if len(bad) > 10 else ''})"
                  if bad else "")
               + (f"; {with_unk} with unknown symbols (n_unk > 0)" if with_unk else ""))
    if strict and bad:
        raise click.ClickException(summary + " (--strict)")
    click.echo(summary, err=True)


@main.command()
@_potential_option
@click.argument("structures", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="extxyz with each structure's energy (eV), forces (eV/Å) and, for cells, stress.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True)
@_overwrite_option
def evaluate(model_name, structures, output, batch_size, dtype, overwrite):
    """Energies and forces of every structure in a file (any format ASE reads; all frames), batched."""
    import chemzoo
    from ase.calculators.singlepoint import SinglePointCalculator

    check_structure_output(output, structures, "the input file; write to another file")
    check_writable(output, overwrite)
    frames = read_frames(structures)
    results = chemzoo.evaluate(model_name, frames, batch_size=batch_size, dtype=dtype, progress=len(frames) > 100)
    for atoms, r in zip(frames, results):
        atoms.calc = SinglePointCalculator(atoms, **{k: v for k, v in r.items() if k != "free_energy"})
    write_frames(output, frames)
    click.echo(f"{len(frames)} structures -> {output}", err=True)


@main.command()
@_potential_option
@click.option("--structure", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Any file ASE reads (xyz, extxyz, pdb, ...) or an SDF (bonds kept); every frame is relaxed.")
@click.option("--smiles", default=None, help="Build the molecule from SMILES (RDKit ETKDG + MMFF94) and relax it.")
@click.option("--fmax", type=Finite(min=0, min_open=True), default=0.05, show_default=True,
              help="Stop when every atom's force is below this (eV/Å).")
@click.option("--steps", type=click.IntRange(min=1), default=500, show_default=True, help="Most optimizer steps per structure.")
@click.option("--optimizer", type=click.Choice(["lbfgs", "fire"]), default="lbfgs", show_default=True)
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=0, show_default=True, help="The SMILES embedding.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Structures whose forces are evaluated in one pass (each keeps its own optimizer).")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The relaxed structures: .extxyz with energies (eV) and forces (eV/Å), or .sdf with bonds (from the "
                   "SMILES or input SDF, else perceived) and energy_eV, max_force_eV_per_A, relaxed, optimizer_steps.")
@_overwrite_option
def relax(model_name, structure, smiles, fmax, steps, optimizer, seed, batch_size, output, overwrite):
    """Geometry optimisation with a neural-network potential (ASE's LBFGS or FIRE; many structures batched)."""
    import numpy as np

    import chemzoo
    from chemzoo.potentials.md import molecule_from_smiles
    from chemzoo.potentials.relax import relax_many
    from chemzoo.potentials.sdf import SDF_SUFFIXES, read_sdf, sdf_text

    if (structure is None) == (smiles is None):
        raise click.UsageError("give exactly one of --structure or --smiles")
    check_structure_output(output, structure, "the input structure; write to another file", sdf=True)
    check_writable(output, overwrite)
    if smiles is not None:
        atoms, mol = molecule_from_smiles(smiles, seed=seed)
        atoms.info["name"] = smiles
        frames, templates = [atoms], [mol]
    elif structure.suffix.lower() in SDF_SUFFIXES:
        frames, templates = read_sdf(structure)
    else:
        frames = read_frames(structure)
        templates = [None] * len(frames)
    as_sdf = output.suffix.lower() in SDF_SUFFIXES
    if as_sdf and any(a.pbc.any() for a in frames):
        raise click.BadParameter("periodic structures cannot be written as SDF; use a .extxyz file name",
                                 param_hint="-o/--output")
    relaxed = relax_many(chemzoo.calculator(model_name), frames, fmax, steps, optimizer, batch_size)
    unconverged = [k for k, atoms in enumerate(relaxed) if not atoms.info["relaxed"]]
    if as_sdf:
        write_atomically(output, sdf_text(relaxed, templates, [
            dict(energy_eV=a.get_potential_energy(), max_force_eV_per_A=float(np.linalg.norm(a.get_forces(), axis=1).max()),
                 relaxed=int(a.info["relaxed"]), optimizer_steps=a.info["optimizer_steps"], model=a.info["model"])
            for a in relaxed]))
    else:
        write_frames(output, relaxed)
    click.echo(f"{len(relaxed) - len(unconverged)} of {len(relaxed)} structures relaxed to fmax {fmax} eV/Å -> {output}",
               err=True)
    if unconverged:
        raise click.ClickException(f"structure(s) {', '.join(map(str, unconverged[:10]))} not converged in {steps} steps "
                                   "(written as they ended); raise --steps or check the structure")


@main.command()
@_potential_option
@click.option("--structure", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Any file ASE reads (xyz, extxyz, cif, pdb, ...); its last frame is used.")
@click.option("--smiles", default=None, help="Build the molecule from SMILES (RDKit ETKDG + MMFF94).")
@click.option("--ensemble", type=click.Choice(["nve", "langevin", "bussi"]), default="langevin", show_default=True,
              help="NVE, Langevin (NVT), or Bussi velocity rescaling (NVT, --taut).")
@click.option("--taut", type=Finite(min=0, min_open=True), default=100.0, show_default=True, help="Bussi thermostat time constant, fs.")
@click.option("--temperature", type=Finite(min=0, max=1e5), default=300.0, show_default=True, help="K")
@click.option("--timestep", type=Finite(min=0, min_open=True, max=10), default=0.5, show_default=True, help="fs")
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--friction", type=Finite(min=0), default=0.01, show_default=True, help="Langevin friction, 1/fs")
@click.option("--log-every", type=click.IntRange(min=1), default=10, show_default=True, help="Steps between frames/log rows.")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=0, show_default=True,
              help="Velocities, Langevin noise and the SMILES embedding.")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True)
@click.option("--equilibrate", type=Finite(min=0), default=0.0, show_default=True, metavar="PS",
              help="Langevin at --temperature for this long (ps) first; the output starts after it.")
@click.option("--allow-reactions", is_flag=True, help="Go on when a covalent bond forms or breaks (logged) instead of "
              "stopping with an error.")
@click.option("--committee", default=None, metavar="NAME,NAME,...",
              help="Average several potentials (instead of -m) and log their largest force spread (eV/Å).")
@click.option("--max-spread", type=click.FloatRange(min=0, min_open=True), default=None, metavar="EV_PER_A",
              help="With --committee: stop when the force spread passes this.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="Trajectory (.extxyz); the log goes to <stem>.csv, the plot to <stem>.png (traj.extxyz: traj.csv, "
                   "traj.png), the settings to <output>.json (traj.extxyz.json).")
@_overwrite_option
def md(model_name, structure, smiles, ensemble, taut, temperature, timestep, steps, friction, log_every, seed, dtype,
       equilibrate, allow_reactions, committee, max_spread, output, overwrite):
    """Molecular dynamics with a neural-network potential (ASE): trajectory, CSV log and energy plot.

    Velocities start from a Maxwell-Boltzmann distribution at --temperature; in NVE equipartition
    then roughly halves the temperature (use --equilibrate PS for a Langevin start at the target).
    An extxyz --structure that carries momenta (e.g. a previous run's output) continues from them.
    The covalent bond graph is watched: a bond formed or broken stops the run with an error
    (exit code 1) unless --allow-reactions.
    """
    import chemzoo
    from chemzoo.potentials.calculator import check_structure
    from chemzoo.potentials.md import atoms_from_smiles, has_momenta, md_tested_warning, plot_energies, read_structure, run_md

    if (structure is None) == (smiles is None):
        raise click.UsageError("give exactly one of --structure FILE or --smiles SMILES")
    if committee is not None and model_name is not None:
        raise click.UsageError("give either -m NAME or --committee NAME,NAME,...")
    if max_spread is not None and committee is None:
        raise click.UsageError("--max-spread needs --committee")
    check_structure_output(output, structure, "the input structure; write the trajectory to another file")
    log_path, plot_path, settings_path = (output.with_suffix(".csv"), output.with_suffix(".png"),
                                          output.with_name(output.name + ".json"))
    for path in (output, log_path, plot_path, settings_path):
        check_writable(path, overwrite)
    atoms = read_structure(structure) if structure else atoms_from_smiles(smiles, seed)
    members = [m.strip() for m in committee.split(",") if m.strip()] if committee is not None else None
    calc = chemzoo.calculator(members or model_name, dtype=dtype)
    check_structure(atoms, calc.elements, calc.min_distance)
    atoms.calc = calc
    model = calc.model_name
    untested = md_tested_warning(calc, temperature)
    if untested:
        click.echo(f"Warning: {untested}", err=True)
    continued = has_momenta(atoms)
    settings = dict(model=model, structure=str(structure) if structure else None, smiles=smiles, ensemble=ensemble,
                    temperature_K=temperature, timestep_fs=timestep, steps=steps, friction_per_fs=friction,
                    taut_fs=taut if ensemble == "bussi" else None, log_every=log_every, seed=seed, dtype=dtype, equilibrate_ps=equilibrate,
                    allow_reactions=allow_reactions, committee=members, max_spread_eV_per_A=max_spread,
                    continued_from_momenta=continued, md_tested_warning=untested, output=str(output),
                    chemzoo=chemzoo.__version__, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    write_atomically(settings_path, json.dumps(settings, indent=2) + "\n")
    plot_path.unlink(missing_ok=True)  # never a previous run's plot beside this run's trajectory
    if continued:
        click.echo(f"continuing from the momenta in {structure}", err=True)
    result = run_md(atoms, ensemble, temperature, timestep, steps, output, log_every, friction, seed,
                    keep_velocities=True, equilibrate=int(round(equilibrate * 1000 / timestep)),
                    allow_reactions=allow_reactions, log_path=log_path, max_spread=max_spread, taut=taut)
    title = f"{model}: {len(atoms)} atoms, {ensemble} {temperature:g} K, {timestep:g} fs"
    if result.log:
        plot_energies(plot_path, result.log, len(atoms), title)
    drift = (result.log[-1]["total_eV"] - result.log[0]["total_eV"]) / len(atoms) if result.log else 0.0
    click.echo(f"{result.frames} frames -> {output}; log {log_path}; plot {plot_path}; "
               f"total-energy change {1000 * drift:+.2f} meV/atom", err=True)
    for change in result.bond_changes:
        click.echo(f"Warning: {change}", err=True)
    if result.interrupted:
        raise click.ClickException(f"{result.reason}; the trajectory, log and plot up to then are saved")
    if result.reacted:
        raise click.ClickException(f"the bond graph changed: {result.reason}; frames up to then are saved. If the "
                                   "potential is trusted for reactions, rerun with --allow-reactions; otherwise try "
                                   "another potential, a lower temperature or a smaller --timestep")
    if result.uncertain:
        raise click.ClickException(f"the potentials disagree: {result.reason}; frames up to then are saved")
    if result.blew_up:
        raise click.ClickException(f"the simulation blew up ({result.reason}); frames up to then are saved; try a "
                                   "smaller --timestep or another potential")


from chemzoo.scaling.cli import scaling  # noqa: E402  (a command group of its own module)

main.add_command(scaling)

if __name__ == "__main__":
    sys.exit(main())
