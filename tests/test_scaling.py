"""Scaling-law fits, their confidence intervals, plots, the CLI and training speed estimation."""

import csv
import json
import re

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.optimize import minimize_scalar

from chemzoo.cli import main
from chemzoo.scaling import ScalingDataError, compute_optimal, estimates, fit, rank_runs
from chemzoo.scaling.tse import RunCurve

from .helpers import one_line_error


def power_law_runs(alpha, seed, n=12, a=5.0, noise=0.02):
    """n runs over 4 decades of x with 2 % log-normal noise on L = a x^-alpha."""
    rng = np.random.default_rng(seed)
    x = np.logspace(4, 8, n)
    return x, a * x**-alpha * np.exp(rng.normal(0, noise, n))


@pytest.mark.parametrize("alpha", [0.17, 0.26])
def test_known_exponents_are_recovered_within_their_ci(alpha):
    x, y = power_law_runs(alpha, seed=3)
    f = fit(x, y, "power", n_boot=400)
    lo, hi = f.ci["alpha"]
    assert lo <= alpha <= hi and hi - lo < 0.03  # 2 % noise over 4 decades pins alpha to about +-0.01
    assert f.params["alpha"] == pytest.approx(alpha, abs=0.01)
    assert f.ci["a"][0] <= 5.0 <= f.ci["a"][1]


def test_the_ci_covers_the_truth_in_about_95_percent_of_repetitions():
    hits = 0
    for rep in range(40):
        x, y = power_law_runs(0.17, seed=100 + rep)
        lo, hi = fit(x, y, "power", n_boot=200, seed=rep).ci["alpha"]
        hits += lo <= 0.17 <= hi
    assert hits >= 35, f"{hits}/40"  # measured 0.94-0.97 over 100 repetitions; a too-narrow CI fails


def test_offset_form_recovers_the_irreducible_loss():
    rng = np.random.default_rng(0)
    x = np.logspace(3, 7, 14)
    y = 0.5 + 5.0 * x**-0.26 * np.exp(rng.normal(0, 0.01, 14))
    f = fit(x, y, "offset", n_boot=300)
    assert f.ci["c"][0] <= 0.5 <= f.ci["c"][1] and f.ci["alpha"][0] <= 0.26 <= f.ci["alpha"][1]
    assert f.params["c"] == pytest.approx(0.5, abs=0.02)
    # a pure power law misreads the same data: the exponent of the reducible part is hidden
    assert fit(x, y, "power", n_boot=50).params["alpha"] < 0.2


def joint_runs(seed=0):
    rng = np.random.default_rng(seed)
    n, d = (v.ravel() for v in np.meshgrid(np.logspace(5, 8, 5), np.logspace(4, 7, 5)))
    loss = (0.4 + 30 * n**-0.3 + 50 * d**-0.26) * np.exp(rng.normal(0, 0.005, n.size))
    return n, d, loss


def test_joint_fit_recovers_both_exponents_and_predicts_with_a_band():
    n, d, loss = joint_runs()
    j = fit(np.stack([n, d]), loss, "joint", n_boot=200)
    assert j.params["alpha"] == pytest.approx(0.3, abs=0.05) and j.params["beta"] == pytest.approx(0.26, abs=0.03)
    truth = 0.4 + 30 * 3e6**-0.3 + 50 * 3e5**-0.26
    lo, hi = j.band(3e6, 3e5)
    assert lo <= truth <= hi and float(j.predict(3e6, 3e5)) == pytest.approx(truth, rel=0.01)


def test_compute_optimal_allocation_is_the_constrained_minimum():
    n, d, loss = joint_runs()
    j = fit(np.stack([n, d]), loss, "joint", n_boot=100)
    budget = 1e18
    alloc = compute_optimal(j, budget)
    p = j.params

    def loss_at(log_n):  # on the constraint 6 N D = C
        big_n = np.exp(log_n)
        return p["E"] + p["A"] * big_n ** -p["alpha"] + p["B"] * (budget / 6 / big_n) ** -p["beta"]

    best = minimize_scalar(loss_at, bounds=(np.log(10), np.log(budget / 60)), method="bounded",
                           options={"xatol": 1e-10})
    assert alloc.n == pytest.approx(np.exp(best.x), rel=1e-3)
    assert alloc.n * alloc.d * 6 == pytest.approx(budget) and alloc.loss == pytest.approx(best.fun, rel=1e-6)
    assert alloc.n_band[0] <= alloc.n <= alloc.n_band[1]


@pytest.mark.parametrize("x, y, fragment", [
    ([1e3, 1e3, 1e4, 1e4], [1, 1, 0.5, 0.5], "x has 2 distinct value(s)"),
    ([1e3, 1e4, 0, 1e6], [1, 0.8, 0.6, 0.5], "x[2] = 0.0; a power law needs positive"),
    ([1e3, 1e4, 1e5, 1e6], [1, np.nan, 0.6, 0.5], "y[1] = nan"),
])
def test_bad_data_is_refused_naming_the_problem(x, y, fragment):
    with pytest.raises(ScalingDataError, match=re.escape(fragment)):
        fit(np.array(x, float), np.array(y, float))


# -- the command line ---------------------------------------------------------------------------

def write_table(path, rows, columns=("family", "model", "params", "n_train", "loss")):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        w.writerows(rows)
    return path


@pytest.fixture
def table(tmp_path):
    rows = []
    for family, alpha in (("chemgpt", 0.17), ("painn", 0.26)):
        x, y = power_law_runs(alpha, seed=1, n=8)
        rows += [[family, f"{family}-{k}", int(v), 1000, loss] for k, (v, loss) in enumerate(zip(x, y))]
    return write_table(tmp_path / "results.csv", rows)


def invoke(*args):
    return CliRunner().invoke(main, ["scaling", *[str(a) for a in args]], catch_exceptions=False)


def test_fit_json_has_each_groups_exponent_and_ci(table):
    result = invoke("fit", table, "--x", "params", "--y", "loss", "--group", "family", "--json", "--bootstrap", 200)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert list(out) == ["groups"] and sorted(out["groups"]) == ["chemgpt", "painn"]
    for name, alpha in (("chemgpt", 0.17), ("painn", 0.26)):
        g = out["groups"][name]
        assert isinstance(g["alpha"], float) and len(g["alpha_ci"]) == 2
        assert g["alpha_ci"][0] <= alpha <= g["alpha_ci"][1]
    whole = json.loads(invoke("fit", table, "--json", "--bootstrap", 50).output)
    assert list(whole["groups"]) == ["all"] and whole["groups"]["all"]["n_points"] == 16


def test_where_keeps_the_rows_it_names(table):
    """--where COLUMN=VALUE fits a subset: the same exponent as that group of a grouped fit."""
    grouped = json.loads(invoke("fit", table, "--group", "family", "--json", "--bootstrap", 50).output)["groups"]
    only = json.loads(invoke("fit", table, "--where", "family=painn", "--json", "--bootstrap", 50).output)["groups"]
    assert only["all"]["alpha"] == grouped["painn"]["alpha"] and only["all"]["n_points"] == 8
    numeric = json.loads(invoke("fit", table, "--where", "n_train=1e3", "--json", "--bootstrap", 50).output)
    assert numeric["groups"]["all"]["n_points"] == 16  # numbers compare as numbers: 1e3 == 1000
    one_line_error(invoke("fit", table, "--where", "family=schnet"), "no row with family = 'schnet' (it has chemgpt, painn)")
    one_line_error(invoke("fit", table, "--where", "family"), "expected COLUMN=VALUE")
    one_line_error(invoke("fit", table, "--where", "arch=painn"), "no column 'arch'")


def test_fit_prints_exponents(table):
    result = invoke("fit", table, "--group", "family", "--bootstrap", 100)
    assert result.exit_code == 0 and "chemgpt: alpha = 0.1" in result.output and "painn: alpha = 0.2" in result.output


def test_plot_writes_a_png_without_touching_pyplot(table, tmp_path):
    import matplotlib.pyplot as plt

    out = tmp_path / "curve.png"
    result = invoke("plot", table, "--group", "family", "--bootstrap", 50, "-o", out)
    assert result.exit_code == 0 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plt.get_fignums() == []


def test_bad_tables_are_one_line_errors(table, tmp_path):
    one_line_error(invoke("fit", table, "--y", "val_loss"), "no column 'val_loss'; it has family, model")
    few = write_table(tmp_path / "few.csv", [["c", "m1", 100, 10, 1.0], ["c", "m2", 1000, 10, 0.8],
                                            ["c", "m3", 1000, 10, 0.7]])
    one_line_error(invoke("fit", few), "column params has 2 distinct value(s)")
    bad = write_table(tmp_path / "bad.csv", [["c", "m1", 100, 10, 1.0], ["c", "m2", 1000, 10, -0.8],
                                            ["c", "m3", 10000, 10, 0.7]])
    one_line_error(invoke("fit", bad), "line 3: loss = '-0.8'")
    nan = write_table(tmp_path / "nan.csv", [["c", "m1", 100, 10, 1.0], ["c", "m2", "nan", 10, 0.8]])
    one_line_error(invoke("fit", nan), "line 3: params = 'nan'")
    one_line_error(invoke("fit", tmp_path / "missing.csv"), "no such file")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    one_line_error(invoke("fit", binary), "is not a UTF-8 text (CSV) file")


def test_predict_and_advise_from_the_joint_fit(tmp_path):
    n, d, loss = joint_runs()
    table = write_table(tmp_path / "grid.csv", [["p", f"m{k}", a, b, c] for k, (a, b, c) in enumerate(zip(n, d, loss))])
    result = invoke("predict", table, "--params", 3e6, "--data", 3e5, "--json", "--bootstrap", 100)
    out = json.loads(result.output)
    truth = 0.4 + 30 * 3e6**-0.3 + 50 * 3e5**-0.26
    assert out["loss_band"][0] <= truth <= out["loss_band"][1] and out["extrapolated"] is False
    far = invoke("predict", table, "--params", 1e10, "--data", 3e5, "--bootstrap", 50)
    assert far.exit_code == 0 and "an extrapolation" in far.output
    advice = json.loads(invoke("advise", table, "--budget", 1e18, "--json", "--bootstrap", 50).output)
    assert advice["params"] * advice["data"] * 6 == pytest.approx(1e18)
    assert advice["params_band"][0] <= advice["params"] <= advice["params_band"][1]
    one_line_error(invoke("advise", table, "--budget", 1e18, "--d-column", "nope"), "no column 'nope'")


# -- training speed estimation ------------------------------------------------------------------

def write_run(folder, losses, steps_per_epoch, epochs, val=None, name=None):
    """A run folder as training writes it: curve.csv (per-step train_loss, per-epoch val_loss), run.json."""
    folder.mkdir(parents=True)
    with open(folder / "curve.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "epoch", "train_loss", "val_loss"])
        for s, value in enumerate(losses):
            w.writerow([s, s // steps_per_epoch, value, ""])
            if val is not None and (s + 1) % steps_per_epoch == 0:
                w.writerow([s, s // steps_per_epoch, "", val])
    run = {"name": name or folder.name, "epochs": epochs, "n_train": 64 * steps_per_epoch, "batch_size": 64}
    (folder / "run.json").write_text(json.dumps(run))
    return folder


def test_tse_estimators_match_their_definitions(tmp_path):
    losses = np.linspace(3.0, 1.0, 100)  # 10 epochs of 10 steps
    run = write_run(tmp_path / "r", losses, 10, 10, val=0.9)
    curve = RunCurve.from_dir(run)
    assert curve.steps_per_epoch == 10 and curve.planned_steps == 100 and curve.final_val_loss == 0.9
    e = estimates(curve, fraction=0.3, gamma=0.9)
    window = losses[:30]
    assert e["tse"] == pytest.approx(window.sum() / 10)  # the three epochs' mean losses, summed
    assert e["tse-e"] == pytest.approx(window[20:].mean())  # the last epoch of the window
    w = 0.9 ** np.arange(29, -1, -1)
    assert e["tse-ema"] == pytest.approx((w * window).sum() / w.sum())


def test_tse_ranks_runs_and_reports_agreement_and_compute_saved(tmp_path):
    # five configurations: faster early descent goes with a lower final loss, except run c (a late bloomer)
    speeds = {"a": 0.05, "b": 0.03, "c": 0.01, "d": 0.02, "e": 0.04}
    finals = {"a": 0.50, "b": 0.60, "c": 0.55, "d": 0.80, "e": 0.52}
    steps = np.arange(200)
    dirs = [write_run(tmp_path / k, 2.0 * np.exp(-v * steps) + finals[k], 20, 10, val=finals[k]) for k, v in speeds.items()]
    r = rank_runs(dirs, fraction=0.2)
    assert [row["name"] for row in r.rows] == ["a", "e", "b", "d", "c"]
    assert r.best_in_top is True and r.compute_saved == pytest.approx(1 - (0.2 * 5 + 0.8 * 2) / 5)
    from scipy.stats import spearmanr

    assert r.spearman == pytest.approx(spearmanr([1, 2, 3, 4, 5], [0.50, 0.52, 0.60, 0.80, 0.55]).statistic)
    result = invoke("tse", *dirs, "--fraction", 0.2)
    assert result.exit_code == 0 and "Spearman rho with the final validation loss: 0.700" in result.output
    assert "saves 48% of the sweep's compute (steps)" in result.output

    # the cost: CPU seconds where every run recorded them (a paused or crowded CPU run's wall time is not its compute)
    for d, (wall, cpu) in zip(dirs, [(10, 5), (10, 5), (100, 5), (10, 5), (10, 5)]):
        (d / "metrics.json").write_text(json.dumps({"metrics": {"wall_time_s": wall, "cpu_time_s": cpu}}))
    r = rank_runs(dirs, fraction=0.2)
    assert r.cost_unit == "cpu_s" and r.compute_saved == pytest.approx(1 - (0.2 * 5 + 0.8 * 2) / 5)
    (dirs[0] / "metrics.json").write_text(json.dumps({"metrics": {"wall_time_s": 10, "cpu_time_s": None}}))
    r = rank_runs(dirs, fraction=0.2)  # one run without CPU time: wall seconds for all
    assert r.cost_unit == "wall_s" and r.compute_saved == pytest.approx(1 - (0.2 * 140 + 0.8 * 20) / 140)


def test_tse_refuses_runs_it_cannot_rank(tmp_path):
    short = write_run(tmp_path / "short", np.ones(5), 10, 10)
    full = write_run(tmp_path / "full", np.ones(100), 10, 10)
    with pytest.raises(ScalingDataError, match="short: 5 steps logged, 20 needed"):
        rank_runs([short, full], fraction=0.2)
    one_line_error(invoke("tse", tmp_path / "nowhere", full), "no such run folder")
    diverged = write_run(tmp_path / "nan", [1.0, float("nan")] + [1.0] * 98, 10, 10)
    one_line_error(invoke("tse", diverged, full), "training loss at step 1 is nan")


def test_the_committed_chemgpt_ladder_table_fits_and_plots(tmp_path):
    """The committed ladder rows (training/results/chemgpt.csv) re-render through `chemzoo scaling plot`."""
    from pathlib import Path

    table = Path(__file__).resolve().parent.parent / "training" / "results" / "chemgpt.csv"
    out = tmp_path / "sizes.png"
    result = invoke("plot", table, "--x", "non_embedding_params", "--group", "n_train", "--bootstrap", 50, "-o", out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fits = json.loads(invoke("fit", table, "--x", "non_embedding_params", "--group", "n_train", "--json",
                             "--bootstrap", 50).stdout)["groups"]  # stdout: a group too small is warned on stderr
    for group in fits.values():  # larger models reach a lower validation loss at every data size
        assert 0.02 < group["alpha"] < 0.5


def test_the_committed_potential_ladder_scales_with_size_and_equivariance_scales_with_data():
    """training/results/potential.csv and potential-data.csv (GPU ladder rows) fit as training/results/README.md says."""
    from pathlib import Path

    results = Path(__file__).resolve().parent.parent / "training" / "results"
    sizes = json.loads(invoke("fit", results / "potential.csv", "--x", "non_embedding_params", "--group", "architecture",
                              "--where", "n_train=30000", "--json", "--bootstrap", 200).stdout)["groups"]
    for arch in ("schnet", "painn"):
        assert sizes[arch]["n_points"] == 4 and 0.1 < sizes[arch]["alpha"] < 0.3
    data = json.loads(invoke("fit", results / "potential-data.csv", "--x", "n_train", "--group", "architecture", "--json",
                             "--bootstrap", 200).stdout)["groups"]
    assert data["schnet"]["alpha_ci"][1] < data["painn"]["alpha_ci"][0]  # the equivariant model gains more from data


def test_a_group_too_small_to_fit_is_left_out_with_a_warning(tmp_path):
    rows = [["c", f"m{k}", p, 1000, 5 * p**-0.2] for k, p in enumerate([1e3, 1e4, 1e5, 1e6])]
    rows += [["c", "lonely", 1e3, 10_000, 1.0]]
    table = write_table(tmp_path / "t.csv", rows)
    result = invoke("fit", table, "--group", "n_train", "--bootstrap", 50)
    assert result.exit_code == 0 and "1000: alpha = 0.2000" in result.output
    assert "Warning: " in result.output and "n_train = 10000: column params has 1 distinct value(s)" in result.output
    only_small = write_table(tmp_path / "s.csv", rows[-1:])
    one_line_error(invoke("fit", only_small, "--group", "n_train"), "no group could be fitted (n_train = 10000")


def test_training_speed_pruning_stops_configurations_that_rank_low_early():
    """The Lightning callback: in a sequential sweep, a run whose TSE after 10 % of its steps is not among the two
    best so far stops there; the best configurations train to the end; its estimate is chemzoo's TSE."""
    import lightning as L
    import torch

    from chemzoo.scaling.pruning import TrainingSpeedPruning

    torch.manual_seed(0)
    x = torch.randn(640, 8)
    y = x @ torch.randn(8, 1) + 0.1 * torch.randn(640, 1)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)

    class Regression(L.LightningModule):
        def __init__(self, lr):
            super().__init__()
            torch.manual_seed(1)
            self.lr, self.net, self.losses = lr, torch.nn.Linear(8, 1), []

        def training_step(self, batch, _):
            loss = torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])
            self.losses.append(float(loss))
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.lr)

    rivals, results = [], {}
    for lr in (0.1, 0.03, 1e-4, 0.2, 3e-4):  # planned: 10 epochs x 20 steps
        module, pruning = Regression(lr), TrainingSpeedPruning(rivals, fraction=0.1, keep=2)
        trainer = L.Trainer(max_epochs=10, callbacks=[pruning], logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
        trainer.fit(module, loader)
        results[lr] = (pruning.pruned, trainer.global_step, pruning.estimate)
        rivals.append(pruning.estimate)
        window = np.array(module.losses[:20])  # the first 10 %: one epoch of 20 steps
        assert pruning.estimate == pytest.approx(window.sum() / 20)  # TSE: the epoch's mean loss
    assert [results[lr][:2] for lr in (0.1, 0.03)] == [(False, 200), (False, 200)]  # the first two always finish
    assert results[1e-4][:2] == (True, 20) and results[3e-4][:2] == (True, 20)  # slow learners stop at 10 %
    assert results[0.2][:2] == (False, 200)  # faster than the second best so far: trains on
    with pytest.raises(ScalingDataError, match="unknown estimator"):
        TrainingSpeedPruning([], estimator="tpe")
