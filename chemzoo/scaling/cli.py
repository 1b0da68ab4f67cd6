"""``chemzoo scaling``: fit, plot, predict and advise from a results table; rank runs by training speed."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

FORMS = click.Choice(["power", "offset"])


def _common(f):
    for option in reversed([
        click.argument("table", type=click.Path(dir_okay=False, path_type=Path)),
        click.option("--x", "x_col", default="params", show_default=True, help="Column of the size variable."),
        click.option("--y", "y_col", default="loss", show_default=True, help="Column of the loss (lower is better)."),
        click.option("--group", "group_col", default=None, help="Fit each value of this column on its own."),
        click.option("--where", "where", multiple=True, metavar="COLUMN=VALUE",
                     help="Use only the rows where COLUMN equals VALUE (repeatable), e.g. architecture=painn."),
        click.option("--form", type=FORMS, default="power", show_default=True,
                     help="power: L = a x^-alpha; offset: L = c + a x^-alpha."),
        click.option("--bootstrap", "n_boot", type=click.IntRange(min=20), default=1000, show_default=True,
                     help="Bootstrap resamples of the runs for the confidence intervals."),
        click.option("--level", type=click.FloatRange(0.5, 0.999), default=0.95, show_default=True),
        click.option("--seed", type=int, default=0, show_default=True),
    ]):
        f = option(f)
    return f


def _fit_groups(table, x_col, y_col, group_col, where, form, n_boot, level, seed):
    from chemzoo.scaling.fits import fit
    from chemzoo.scaling.table import read_table

    from chemzoo.scaling.table import ScalingDataError

    t = read_table(table, where)
    t.require(x_col, y_col)
    out, skipped = {}, []
    for name, rows in t.groups(group_col).items():
        where = f"{table}" + (f", {group_col} = {name}" if group_col else "")
        x, y = t.numbers(x_col, rows), t.numbers(y_col, rows)
        try:
            out[name] = (x, y, fit(x, y, form, n_boot, level, seed, where=where, x_name=f"column {x_col}"))
        except ScalingDataError as exc:
            if group_col is None:
                raise
            skipped.append(f"{group_col} = {name}")
            click.echo(f"Warning: {exc}; group left out", err=True)
    if not out:
        raise ScalingDataError(f"{table}: no group could be fitted ({', '.join(skipped)}: see the warnings)")
    return out


@click.group()
def scaling():
    """Scaling laws from a results table (one row per run) and training speed estimation."""


@scaling.command("fit")
@_common
@click.option("--json", "as_json", is_flag=True, help='Print {"groups": {NAME: {"alpha": ..., "alpha_ci": [lo, hi], ...}}}.')
def fit_command(table, x_col, y_col, group_col, where, form, n_boot, level, seed, as_json):
    """Fit a power law of --y against --x (per --group) and print each exponent with its CI."""
    fits = _fit_groups(table, x_col, y_col, group_col, where, form, n_boot, level, seed)
    if as_json:
        click.echo(json.dumps({"groups": {name: f.to_dict() for name, (_, _, f) in fits.items()}}, indent=2))
        return
    click.echo(f"{y_col} ~ {x_col}: {'L = a x^-alpha' if form == 'power' else 'L = c + a x^-alpha'}, "
               f"{level:.0%} CIs from {n_boot} bootstrap resamples of the runs")
    for name, (x, _, f) in fits.items():
        lo, hi = f.ci["alpha"]
        extra = f", c = {f.params['c']:.4g} [{f.ci['c'][0]:.4g}, {f.ci['c'][1]:.4g}]" if form == "offset" else ""
        click.echo(f"  {name}: alpha = {f.params['alpha']:.4f} [{lo:.4f}, {hi:.4f}], a = {f.params['a']:.4g}{extra} "
                   f"({f.n_points} runs, {x_col} {x.min():.3g} .. {x.max():.3g})")


@scaling.command("plot")
@_common
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="PNG to write.")
@click.option("--title", default=None)
@click.option("--overwrite", is_flag=True, help="Replace the PNG if it exists (refused otherwise).")
def plot_command(table, x_col, y_col, group_col, where, form, n_boot, level, seed, output, title, overwrite):
    """Log-log plot of the runs with each group's fit and its confidence band (PNG)."""
    from chemzoo.cli import check_writable
    from chemzoo.files import save_figure
    from chemzoo.scaling.plots import scaling_figure

    if output.suffix.lower() != ".png":
        raise click.BadParameter("use a .png file name", param_hint="-o/--output")
    check_writable(output, overwrite)
    fits = _fit_groups(table, x_col, y_col, group_col, where, form, n_boot, level, seed)
    if group_col:
        fits = {f"{group_col} = {name}": value for name, value in fits.items()}
    fig = scaling_figure(fits, x_col, y_col, title)
    save_figure(fig, output, dpi=130)
    click.echo(f"plot -> {output}", err=True)


def _joint(table, n_col, d_col, where, y_col, n_boot, level, seed):
    from chemzoo.scaling.fits import fit
    from chemzoo.scaling.table import read_table

    t = read_table(table, where)
    t.require(n_col, d_col, y_col)
    x = np.stack([t.numbers(n_col), t.numbers(d_col)])
    return fit(x, t.numbers(y_col), "joint", n_boot, level, seed, where=str(table))


def _joint_options(f):
    for option in reversed([
        click.argument("table", type=click.Path(dir_okay=False, path_type=Path)),
        click.option("--n-column", "n_col", default="params", show_default=True, help="Column of the model size N."),
        click.option("--d-column", "d_col", default="n_train", show_default=True, help="Column of the data size D."),
        click.option("--where", "where", multiple=True, metavar="COLUMN=VALUE",
                     help="Use only the rows where COLUMN equals VALUE (repeatable), e.g. architecture=painn."),
        click.option("--y", "y_col", default="loss", show_default=True, help="Column of the loss."),
        click.option("--bootstrap", "n_boot", type=click.IntRange(min=20), default=500, show_default=True),
        click.option("--level", type=click.FloatRange(0.5, 0.999), default=0.95, show_default=True),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--json", "as_json", is_flag=True, help="Print JSON."),
    ]):
        f = option(f)
    return f


def _joint_text(j) -> str:
    p, ci = j.params, j.ci
    return ("L(N, D) = E + A/N^alpha + B/D^beta: " +
            ", ".join(f"{k} = {p[k]:.4g} [{ci[k][0]:.4g}, {ci[k][1]:.4g}]" for k in ("E", "A", "alpha", "B", "beta")) +
            f" ({j.n_points} runs)")


@scaling.command("predict")
@_joint_options
@click.option("--params", "n", type=click.FloatRange(min=0, min_open=True), required=True, help="Model size N.")
@click.option("--data", "d", type=click.FloatRange(min=0, min_open=True), required=True, help="Data size D.")
def predict_command(table, n_col, d_col, where, y_col, n_boot, level, seed, as_json, n, d):
    """Predict the loss at a new (N, D) from the joint fit, with its band."""
    j = _joint(table, n_col, d_col, where, y_col, n_boot, level, seed)
    value = float(j.predict(n, d))
    lo, hi = (float(v) for v in j.band(n, d))
    (n_lo, n_hi), (d_lo, d_hi) = j.x_range
    outside = not (n_lo <= n <= n_hi and d_lo <= d <= d_hi)
    if as_json:
        click.echo(json.dumps({"params": n, "data": d, y_col: value, f"{y_col}_band": [lo, hi],
                               "extrapolated": outside, "fit": j.to_dict()}, indent=2))
        return
    click.echo(_joint_text(j))
    click.echo(f"{y_col}({n_col} = {n:.4g}, {d_col} = {d:.4g}) = {value:.4g}, {level:.0%} band [{lo:.4g}, {hi:.4g}]")
    if outside:
        click.echo(f"Warning: outside the fitted runs ({n_col} {n_lo:.3g} .. {n_hi:.3g}, {d_col} {d_lo:.3g} .. "
                   f"{d_hi:.3g}): an extrapolation", err=True)


@scaling.command("advise")
@_joint_options
@click.option("--budget", type=click.FloatRange(min=0, min_open=True), required=True, help="Training compute, FLOPs.")
@click.option("--flops-per-unit", type=click.FloatRange(min=0, min_open=True), default=6.0, show_default=True,
              help="FLOPs per parameter and unit of D: 6 per token for a transformer; 6 x tokens per molecule x "
                   "epochs when D counts molecules.")
def advise_command(table, n_col, d_col, where, y_col, n_boot, level, seed, as_json, budget, flops_per_unit):
    """Compute-optimal model size and data for a FLOP budget (C = k N D), from the joint fit, with bands."""
    from chemzoo.scaling.fits import compute_optimal

    j = _joint(table, n_col, d_col, where, y_col, n_boot, level, seed)
    a = compute_optimal(j, budget, flops_per_unit)
    if as_json:
        click.echo(json.dumps({"budget": budget, "params": a.n, "params_band": list(a.n_band), "data": a.d,
                               "data_band": list(a.d_band), y_col: a.loss, f"{y_col}_band": list(a.loss_band),
                               "fit": j.to_dict()}, indent=2))
        return
    click.echo(_joint_text(j))
    click.echo(f"budget {budget:.3g} FLOPs (C = {flops_per_unit:g} N D): {n_col} = {a.n:.3g} [{a.n_band[0]:.3g}, "
               f"{a.n_band[1]:.3g}], {d_col} = {a.d:.3g} [{a.d_band[0]:.3g}, {a.d_band[1]:.3g}], predicted {y_col} = "
               f"{a.loss:.4g} [{a.loss_band[0]:.4g}, {a.loss_band[1]:.4g}]")


UNITS = {"cpu_s": "CPU seconds", "wall_s": "wall seconds", "steps": "steps"}


@scaling.command("tse")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--fraction", type=click.FloatRange(0, 1, min_open=True), default=0.2, show_default=True,
              help="Rank from this first part of each run's planned steps.")
@click.option("--by", "estimator", type=click.Choice(["tse", "tse-e", "tse-ema"]), default="tse", show_default=True)
@click.option("--gamma", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.999, show_default=True,
              help="TSE-EMA's per-step decay.")
@click.option("--keep", type=click.IntRange(min=1), default=2, show_default=True,
              help="How many of the best-ranked runs would train on (for the compute saved).")
@click.option("--json", "as_json", is_flag=True)
def tse_command(run_dirs, fraction, estimator, gamma, keep, as_json):
    """Rank training runs by training speed estimation (TSE; Ru et al. 2021) from their first steps."""
    from chemzoo.scaling.tse import rank_runs

    r = rank_runs(run_dirs, fraction, estimator, gamma, keep=keep)
    summary = {"spearman": r.spearman, "best_in_top": r.best_in_top, "compute_saved": r.compute_saved,
               "cost_unit": r.cost_unit}
    if as_json:
        click.echo(json.dumps({"estimator": estimator, "fraction": fraction, "keep": keep, "runs": r.rows, **summary},
                              indent=2))
        return
    click.echo(f"ranked by {estimator.upper()} over the first {fraction:.0%} of training (lower is better)")
    click.echo(f"{'rank':>4}  {'tse':>9}  {'tse-e':>9}  {'tse-ema':>9}  {'final val':>9}  run")
    for k, row in enumerate(r.rows, start=1):
        final = "running" if row["final_val_loss"] is None else f"{row['final_val_loss']:.4f}"
        click.echo(f"{k:>4}  {row['tse']:>9.4f}  {row['tse-e']:>9.4f}  {row['tse-ema']:>9.4f}  {final:>9}  {row['name']}")
    if r.spearman is not None:
        click.echo(f"Spearman rho with the final validation loss: {r.spearman:.3f}")
    if r.best_in_top is not None:
        click.echo(f"finally best run among the top {keep}: {'yes' if r.best_in_top else 'no'}; training only those on "
                   f"saves {r.compute_saved:.0%} of the sweep's compute ({UNITS[r.cost_unit]})")
