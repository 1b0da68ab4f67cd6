"""The ladder driver: a grid of real (tiny) ChemGPT runs, one results row each, resumable, ranked by TSE."""

import csv

from click.testing import CliRunner

from chemzoo.lm.presets import PRESETS
from training.ladder import GRIDS, main


def test_a_grid_writes_one_row_per_run_and_skips_finished_runs(tmp_path):
    runs, results = tmp_path / "runs", tmp_path / "results"
    args = ["--family", "chemgpt", "--grid", "test", "--runs", str(runs), "--results", str(results)]
    first = CliRunner().invoke(main, args, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    rows = list(csv.DictReader(open(results / "chemgpt.csv")))
    grid = GRIDS["chemgpt"]["test"]
    assert [r["preset"] for r in rows] == list(grid.presets)
    for row in rows:
        shape = PRESETS[row["preset"]]
        h, layers = shape.hidden_size, shape.num_layers
        assert int(row["non_embedding_params"]) == layers * (12 * h * h + 10 * h) + 2 * h  # blocks + final LayerNorm
        assert int(row["steps"]) == grid.epochs(256) * (256 // grid.batch_size) == 8
        assert float(row["loss"]) == float(row["val_loss"]) and 0 < float(row["loss"]) < 6  # nats/token
        assert (results / "chemgpt" / row["model"] / "curve.csv").exists()
        assert 0 < float(row["cpu_time_s"]) < 10 * float(row["wall_time_s"]) + 1  # this process's CPU seconds
    weights = runs / "chemgpt" / rows[0]["model"] / "checkpoint" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    again = CliRunner().invoke(main, args, catch_exceptions=False)
    assert again.exit_code == 0 and again.output.count("(finished)") == 2
    assert weights.stat().st_mtime_ns == stamp  # not retrained
    assert list(csv.DictReader(open(results / "chemgpt.csv"))) == rows  # rows replaced, not duplicated

    from chemzoo.scaling import rank_runs

    ranking = rank_runs([results / "chemgpt" / r["model"] for r in rows], fraction=0.5)
    assert {r["name"] for r in ranking.rows} == {r["model"] for r in rows}
    assert all(r["final_val_loss"] is not None for r in ranking.rows) and ranking.cost_unit == "cpu_s"


def test_a_potential_grid_writes_force_mae_rows_the_same_one_by_one_or_side_by_side(tmp_path):
    """One force-MAE row per run for both architectures; --workers trains each run in its own process, and on
    a CPU its rows match a sequential ladder's exactly."""
    tables = {}
    for workers in (1, 2):
        results = tmp_path / f"results-{workers}"
        args = ["--family", "potential", "--grid", "test", "--runs", str(tmp_path / f"runs-{workers}"),
                "--results", str(results), "--workers", str(workers)]
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        tables[workers] = {r["model"]: r for r in csv.DictReader(open(results / "potential.csv"))}
    assert tables[1].keys() == tables[2].keys() and len(tables[2]) == 4
    rows = tables[1].values()
    assert sorted(r["architecture"] for r in rows) == ["painn", "painn", "schnet", "schnet"]
    for row in rows:
        assert float(row["loss"]) == float(row["test_force_mae_meV_per_A"]) > 0  # meV/Å on the fixed test split
        assert int(row["params"]) - int(row["non_embedding_params"]) == 8 * int(row["preset"][1:].split("-")[0])
        assert int(row["n_train"]) == 64 and row["family"] == "potential"
    for name, row in tables[2].items():
        assert (tmp_path / "runs-2" / "potential" / name / "ladder.log").exists()  # trained by a child process
        for column in ("loss", "test_energy_mae_meV_per_atom", "train_loss", "steps", "params"):
            assert row[column] == tables[1][name][column], (name, column)


def test_runs_with_a_recorded_row_are_not_retrained_in_a_fresh_checkout(tmp_path):
    results = tmp_path / "results"
    first = ["--family", "chemgpt", "--grid", "test", "--runs", str(tmp_path / "runs"), "--results", str(results)]
    assert CliRunner().invoke(main, first, catch_exceptions=False).exit_code == 0
    fresh = ["--family", "chemgpt", "--grid", "test", "--runs", str(tmp_path / "elsewhere"), "--results", str(results)]
    again = CliRunner().invoke(main, fresh, catch_exceptions=False)
    assert again.exit_code == 0 and again.output.count("(finished: its row is recorded)") == 2
    assert not (tmp_path / "elsewhere").exists()
