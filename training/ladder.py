"""Size x data ladders: one driver per grid, resumable, one results row per finished run.

    python -m training.ladder --family chemgpt --grid cpu            # runs/ladder/chemgpt/<run>/
    python -m training.ladder --family chemgpt --grid cpu --list     # the grid and what is done
    python -m training.ladder --family chemgpt --grid gpu --accelerator gpu --devices 4
    python -m training.ladder --family potential --grid cpu         # needs data/xtb-moses-12.5k (README)

Each run is the ordinary single-run trainer (``training.chemgpt.train``, ``training.potentials.train``)
with the grid's recipe, so
a killed ladder resumes mid-run from that run's last checkpoint, skips finished runs and goes on.
Every finished run appends (or replaces) its row in ``training/results/<family>.csv`` (``loss`` is
the family's headline loss: final validation nats/token for ChemGPT) and copies
its per-step loss curve and metrics to ``training/results/<family>/<run>/`` (small, committed): the
scaling fits (``chemzoo scaling fit``), training speed estimation (``chemzoo scaling tse``) and the
registry all read those records. Under SLURM or torchrun the same command runs with
``--accelerator gpu --devices N`` (Lightning's DDP; see the README's training section).

The ChemGPT recipe, the same across a grid: AdamW (lr 1e-3, betas 0.9/0.95, weight decay 0.01),
warmup then cosine decay to 0.1x, batch 64 molecules, max(2 epochs, 1,000 steps) - small data
sets see more epochs, so every run gets at least 1,000 updates - and validation (5,000 MOSES test
molecules, the same for every run, never used to choose anything) after every epoch. The potential
recipe: Adam (lr 1e-3) with cosine decay, batch 16 structures, energy/force loss 0.05/0.95,
max(3 epochs, 3,000 steps), training structures a seeded random subset of the train split (nested
across sizes); ``loss`` is the force MAE (meV/Å) on the dataset's whole, fixed test split.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "training" / "results"
LADDER_COLUMNS = ["family", "model", "architecture", "preset", "params", "non_embedding_params", "n_train", "epochs",
                  "steps", "batch_size", "lr", "seed", "loss", "train_loss", "val_loss", "best_val_loss",
                  "test_energy_mae_meV_per_atom", "test_force_mae_meV_per_A", "wall_time_s", "device", "cpu_time_s"]


@dataclass(frozen=True)
class Grid:
    """Presets (model sizes) x training-set sizes, and the recipe shared by every run."""

    presets: tuple[str, ...]
    n_train: tuple[int, ...]
    batch_size: int = 64
    lr: float = 1e-3
    min_epochs: int = 2
    min_steps: int = 1000
    n_val: int = 5000
    seed: int = 0
    lrs: tuple[float, ...] = ()  # a hyperparameter sweep: every lr x batch size (instead of lr, batch_size)
    batch_sizes: tuple[int, ...] = ()
    table: str = ""  # results table name [default: the family's]; sweeps keep theirs apart from the ladder

    def epochs(self, n_train: int, batch_size: int | None = None) -> int:
        steps_per_epoch = max(1, n_train // (batch_size or self.batch_size))
        return max(self.min_epochs, math.ceil(self.min_steps / steps_per_epoch))


@dataclass(frozen=True)
class PotentialGrid:
    """Architectures x widths x training-set sizes (structures) of potentials, one recipe for all."""

    architectures: tuple[str, ...]
    features: tuple[int, ...]
    n_train: tuple[int, ...]
    interactions: int = 3
    lmax: int = 1  # nequip only
    batch_size: int = 16
    lr: float = 1e-3
    schedule: str = "cosine"
    min_epochs: int = 3
    min_steps: int = 3000
    cutoff: float = 5.0
    data: str = "data/xtb-moses-12.5k"
    seed: int = 0
    table: str = ""
    lrs: tuple[float, ...] = ()  # a hyperparameter sweep: every lr x batch size (instead of lr, batch_size)
    batch_sizes: tuple[int, ...] = ()
    steps: int = 0  # when set, every run takes exactly this many steps, whatever its data (min_* unused)
    validations: int = 0  # about this many validations per run, evenly spaced (0: after every epoch)

    def epochs(self, n_train: int, batch_size: int | None = None) -> int:
        steps_per_epoch = max(1, n_train // (batch_size or self.batch_size))
        if self.steps:
            return math.ceil(self.steps / steps_per_epoch)
        return max(self.min_epochs, math.ceil(self.min_steps * (batch_size or self.batch_size) / n_train))


GRIDS = {
    "chemgpt": {
        # 25k .. 2.7M non-embedding parameters (2 decades) x 1 decade of molecules: ~2 h on one CPU core per
        # data size, smallest first so rows land early
        "cpu": Grid(("tiny-l2-h32", "tiny-l2-h64", "tiny-l4-h64", "small-l4-h128", "small-l6-h192"),
                    (10_000, 30_000, 100_000)),
        # the data axis to 10^6 molecules for the three smallest sizes (same recipe and table: ~2 CPU-hours)
        "cpu-1m": Grid(("tiny-l2-h32", "tiny-l2-h64", "tiny-l4-h64"), (1_000_000,)),
        # a GPU continues the ladder in size and data (same recipe)
        "gpu": Grid(("tiny-l2-h32", "tiny-l4-h64", "small-l4-h128", "small-l6-h192", "base-l8-h256", "h128", "h256"),
                    (10_000, 100_000, 1_000_000)),
        # training speed estimation: 4 learning rates x 2 batch sizes of one model, 4 epochs each
        "tse": Grid(("tiny-l2-h64",), (30_000,), min_epochs=4, min_steps=0, lrs=(3e-4, 1e-3, 3e-3, 1e-2),
                    batch_sizes=(32, 128), table="chemgpt-tse"),
        # the smallest possible grid, for tests
        "test": Grid(("tiny-l2-h32", "tiny-l2-h64"), (256,), min_steps=8, n_val=64),
    },
    "potential": {
        # invariant SchNet and equivariant PaiNN, 4 widths x 4 training-set sizes of the 12.5k-molecule xTB
        # dataset (test split fixed: 10,040 structures of 1,255 held-out molecules); ~4 CPU-hours per architecture
        "cpu": PotentialGrid(("schnet", "painn"), (16, 32, 64, 128), (1_000, 3_000, 10_000, 30_000)),
        # a GPU continues in size and data (the 25k-molecule build, 160k training structures)
        "gpu": PotentialGrid(("schnet", "painn", "nequip"), (32, 64, 128, 256), (1_000, 10_000, 30_000, 100_000, 160_000),
                             min_steps=20_000, data="data/xtb-moses-25k"),
        # what one GPU does in minutes (several runs at once, --workers; training/potentials/ladder_gpu.sh): the
        # CPU grid's sizes from 30,000 training structures of the first 5,000 molecules of the xTB build, with a
        # fixed test subset of 3,000+ structures (375 held-out molecules), packed to travel
        # (training.potentials.pack; README); batch 32, max(3 epochs, 1,500 steps)
        "gpu-short": PotentialGrid(("schnet", "painn"), (16, 32, 64, 128), (1_000, 3_000, 10_000, 30_000), batch_size=32,
                                   min_steps=1500, data="data/xtb-moses-5k-ladder"),
        # the data axis at equal compute: every run 4,000 steps whatever its data, at the learning rate the
        # tse sweep ranks high (3e-3; gpu-short's 1e-3 leaves runs optimisation-limited), one width
        "gpu-data": PotentialGrid(("schnet", "painn"), (32,), (1_000, 3_000, 10_000, 30_000), batch_size=32, lr=3e-3,
                                  steps=4000, validations=8, data="data/xtb-moses-5k-ladder", table="potential-data"),
        # training speed estimation: 4 learning rates x 2 batch sizes of one SchNet, 10 epochs of 4,000 structures
        "tse": PotentialGrid(("schnet",), (32,), (4_000,), min_epochs=10, min_steps=0, lrs=(3e-4, 1e-3, 3e-3, 1e-2),
                             batch_sizes=(16, 64), data="data/xtb-moses-5k-ladder", table="potential-tse"),
        # the same sweep, widened to 16 configurations (x widths 16, 32) and run on this machine's CPU, where a run's
        # cost follows the structures it processes, not its number of steps as on a shared GPU
        "tse-cpu": PotentialGrid(("schnet",), (16, 32), (4_000,), min_epochs=10, min_steps=0,
                                 lrs=(3e-4, 1e-3, 3e-3, 1e-2), batch_sizes=(16, 64), data="data/xtb-moses-5k-ladder",
                                 table="potential-tse-cpu"),
        "test": PotentialGrid(("schnet", "painn"), (4, 8), (64,), interactions=2, cutoff=4.0, min_epochs=1, min_steps=4,
                              data="tests/data/xtb-moses-200"),
    },
}


def run_name(prefix: str, preset: str, n_train: int, seed: int, lr: float | None = None, batch: int | None = None) -> str:
    knobs = "" if lr is None else f"-lr{lr:g}-b{batch}"
    return f"{prefix}-{preset}-n{n_train}{knobs}-s{seed}"


def chemgpt_runs(grid: Grid, accelerator: str, devices: int) -> list[dict]:
    """The run configs of a ChemGPT grid (the keys of ``training.chemgpt.train.train``), data-major."""
    sweep = list(itertools.product(grid.lrs, grid.batch_sizes)) if grid.lrs else [(None, None)]
    return [dict(family="chemgpt", name=run_name("chemgpt", preset, n, grid.seed, lr, batch), preset=preset,
                 n_train=n, n_val=grid.n_val, epochs=grid.epochs(n, batch), max_steps=-1,
                 batch_size=batch or grid.batch_size, lr=lr or grid.lr, seed=grid.seed, devices=devices,
                 ckpt_every=200, accelerator=accelerator)
            for n in grid.n_train for preset in grid.presets for lr, batch in sweep]


def potential_runs(grid: PotentialGrid, accelerator: str, devices: int) -> list[dict]:
    """The run configs of a potential grid (the keys of ``training.potentials.train.train``), data-major."""
    sweep = (list(itertools.product(grid.lrs, grid.batch_sizes)) if grid.lrs
             else [(grid.lr, grid.batch_size)] if grid.steps else [(None, None)])  # knobs in the name when not the usual

    def val_every(n: int, batch: int | None) -> dict:
        return {"val_every": max(1, grid.epochs(n, batch) // grid.validations)} if grid.validations else {}

    return [dict(family="potential", name=run_name(arch, f"f{features}-i{grid.interactions}", n, grid.seed, lr, batch),
                 data=grid.data, architecture=arch, features=features, interactions=grid.interactions, lmax=grid.lmax,
                 cutoff=grid.cutoff, n_train=n, epochs=grid.epochs(n, batch), max_steps=grid.steps or -1,
                 max_minutes=None, batch_size=batch or grid.batch_size, lr=lr or grid.lr, schedule=grid.schedule,
                 seed=grid.seed, accelerator=accelerator, devices=devices, ckpt_every=200, init=None,
                 **val_every(n, batch))
            for n in grid.n_train for arch in grid.architectures for features in grid.features for lr, batch in sweep]


def non_embedding_params(checkpoint: Path) -> int:
    """Trainable weights outside the embeddings (Kaplan et al.'s N): ChemGPT's token and position tables,
    a potential's element table."""
    config = json.loads((checkpoint / "config.json").read_text())
    if config.get("model_type") == "gpt_neo":
        from safetensors import safe_open

        with safe_open(str(checkpoint / "model.safetensors"), "pt") as f:
            return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys() if not any(e in k for e in ("wte", "wpe")))
    from chemzoo.potentials.model import Potential

    net = Potential.from_pretrained(checkpoint).net
    return sum(p.numel() for name, p in net.named_parameters() if not name.startswith("embedding"))


def device_name(accelerator: str) -> str:
    import torch

    if accelerator in ("gpu", "cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def result_row(run: dict, out: Path, device: str | None = None) -> dict:
    """The ladder's row of a finished run, from its own records (``device``: where it trained, default here)."""
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    val = metrics.get("val_loss_per_epoch") or [metrics["val_loss"]]
    row = dict(family=run["family"], model=run["name"], params=metrics["params"],
               non_embedding_params=non_embedding_params(out / "checkpoint"), n_train=run["n_train"],
               epochs=run["epochs"], steps=metrics["steps"], batch_size=run["batch_size"], lr=run["lr"], seed=run["seed"],
               train_loss=metrics["train_loss"], val_loss=metrics["val_loss"], best_val_loss=min(val),
               wall_time_s=metrics["wall_time_s"], device=device or device_name(run.get("accelerator", "cpu")),
               cpu_time_s=metrics.get("cpu_time_s"))
    if run["family"] == "potential":  # the headline loss: force MAE on the dataset's fixed test split
        return dict(row, architecture=run["architecture"], preset=f"f{run['features']}-i{run['interactions']}",
                    loss=metrics["test_force_mae_meV_per_A"],
                    test_energy_mae_meV_per_atom=metrics["test_energy_mae_meV_per_atom"],
                    test_force_mae_meV_per_A=metrics["test_force_mae_meV_per_A"])
    return dict(row, architecture="gpt_neo", preset=run["preset"], loss=metrics["val_loss"])


def recorded_devices(table: Path) -> dict[str, str]:
    """model -> device of the rows already in the table (a rewrite keeps where a run trained)."""
    if not table.exists():
        return {}
    with open(table) as f:
        return {r["model"]: r["device"] for r in csv.DictReader(f)}


def append_row(table: Path, row: dict) -> None:
    """Add ``row`` to the family's table, replacing an earlier row of the same model (atomic write)."""
    rows = []
    if table.exists():
        with open(table) as f:
            rows = [r for r in csv.DictReader(f) if r["model"] != row["model"]]
    rows.append({k: row.get(k, "") for k in LADDER_COLUMNS})
    rows.sort(key=lambda r: (int(r["n_train"]), int(r["non_embedding_params"] or 0), r["model"]))
    table.parent.mkdir(parents=True, exist_ok=True)
    tmp = table.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=LADDER_COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    tmp.replace(table)


def keep_records(out: Path, dest: Path) -> None:
    """The small records of a run (its per-step curve, metrics and config), for the repository."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("curve.csv", "metrics.json", "run.json"):
        shutil.copy2(out / name, dest / name)


def registry_name(params: int, n_train: int, architecture: str = "gpt_neo") -> str:
    """chemgpt-<parameters>-moses-<molecules>, e.g. chemgpt-118k-moses-100k; potentials
    <architecture>-<parameters>-xtb-moses-<structures>, e.g. painn-151k-xtb-moses-30k."""
    from chemzoo.zoo import human

    def short(n: float) -> str:  # 1234567 -> 1.23m, 30000 -> 30k
        return human(n).lower()

    if architecture == "gpt_neo":
        return f"chemgpt-{short(params)}-moses-{short(n_train)}"
    return f"{architecture}-{short(params)}-xtb-moses-{short(n_train)}"


def size_key(run: dict) -> str:
    """What makes a model size in a grid: the preset (ChemGPT), the architecture and width (potentials)."""
    return run["preset"] if run["family"] == "chemgpt" else f"{run['architecture']}-f{run['features']}"


def ladder_description(run: dict, row: dict) -> str:
    params, non_embedding = int(row["params"]), int(row["non_embedding_params"])
    if run["family"] == "chemgpt":
        return (f"ChemGPT size ladder, preset {run['preset']}: {params:,} parameters ({non_embedding:,} non-embedding), "
                f"trained by chemzoo on {run['n_train']:,} MOSES molecules with the ladder recipe of training/ladder.py "
                f"({row['epochs']} epochs, {row['steps']} steps of {row['batch_size']}): validation loss "
                f"{float(row['loss']):.3f} nats/token on 5,000 MOSES test molecules. Its row: training/results/chemgpt.csv "
                f"({run['name']}).")
    return (f"Potential size ladder, {run['architecture']} with {run['features']} features x {run['interactions']} "
            f"interactions: {params:,} parameters, trained by chemzoo on {run['n_train']:,} GFN2-xTB structures of MOSES "
            f"molecules with the ladder recipe of training/ladder.py ({row['epochs']} epochs, {row['steps']} steps of "
            f"{row['batch_size']}): force MAE {float(row['test_force_mae_meV_per_A']):.1f} meV/Å, energy MAE "
            f"{float(row['test_energy_mae_meV_per_atom']):.1f} meV/atom on the ladder's fixed test subset (held-out "
            f"molecules). Trained on near-equilibrium thermal geometries only and for scaling studies: not tested in "
            f"molecular dynamics (use the default potential for MD). Its row: training/results/potential.csv "
            f"({run['name']}).")


def register_sizes(runs: list[dict], runs_dir: Path, table: Path) -> list[str]:
    """Bundle and register the largest-data finished run of every model size (sha256 of each file)."""
    from chemzoo.files import write_metadata
    from chemzoo.registry import PACKAGE_DIR
    from hub_upload.stage import registry_row, write_registry_row
    from training.cards import render_card

    rows = {}
    if table.exists():
        with open(table) as f:
            rows = {r["model"]: r for r in csv.DictReader(f)}
    top = max(run["n_train"] for run in runs)  # only runs at the grid's largest data size are published
    largest = {size_key(run): run for run in runs if run["name"] in rows and run["n_train"] == top
               and is_finished(runs_dir / run["family"] / run["name"])}
    names = []
    for run in largest.values():
        row = rows[run["name"]]
        name = registry_name(int(row["params"]), run["n_train"], row["architecture"])
        target = PACKAGE_DIR / "checkpoints" / name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(runs_dir / run["family"] / run["name"] / "checkpoint", target)
        meta = json.loads((target / "chemzoo.json").read_text())
        meta.update(name=name, run_name=run["name"], non_embedding_params=int(row["non_embedding_params"]))
        write_metadata(target, meta)
        (target / "README.md").write_text(render_card(run["family"], meta))  # the card names the registered model
        entry = registry_row(target, name, bundled=True, default=False, description=ladder_description(run, row))
        entry["extra"]["non_embedding_params"] = int(row["non_embedding_params"])
        entry["extra"]["ladder_run"] = run["name"]
        write_registry_row(entry)
        names.append(name)
    return names


def is_finished(out: Path) -> bool:
    return (out / "metrics.json").exists() and (out / "checkpoint" / "model.safetensors").exists()


def run_cost(run: dict) -> float:
    """A rough relative cost of a run (steps x width, equivariant blocks dearer), to start the longest first."""
    width = run.get("features") or 1
    steps = run["epochs"] * max(1, run["n_train"] // run["batch_size"])
    return steps * (1 + width / 32) * (3 if run.get("architecture") == "painn" else 1)


def record(run: dict, out: Path, table: Path, results_dir: Path, grid, recorded: dict, done_before: bool) -> None:
    append_row(table, result_row(run, out, recorded.get(run["name"]) if done_before else None))
    keep_records(out, results_dir / (grid.table or run["family"]) / run["name"])


def train_in_parallel(runs: list[dict], workers: int, child_args: list[str], runs_dir: Path, on_finished) -> bool:
    """Train ``runs`` in up to ``workers`` processes at once (small runs sharing one GPU or many cores), longest
    first; ``on_finished(run)`` records each as it ends (only this process writes the table). Each child's
    output goes to its run folder's ``ladder.log``. True when every run finished."""
    import signal
    import subprocess
    import sys
    import time

    queue = sorted(runs, key=run_cost, reverse=True)
    active: dict[str, tuple[subprocess.Popen, dict]] = {}
    failed = []

    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        while queue or active:
            while queue and len(active) < workers:
                run = queue.pop(0)
                out = runs_dir / run["family"] / run["name"]
                out.mkdir(parents=True, exist_ok=True)
                with open(out / "ladder.log", "ab") as log:
                    active[run["name"]] = (subprocess.Popen([sys.executable, "-m", "training.ladder", *child_args,
                                                             "--only", run["name"]], stdout=log, stderr=log), run)
            time.sleep(1)
            for name, (proc, run) in list(active.items()):
                if proc.poll() is None:
                    continue
                del active[name]
                out = runs_dir / run["family"] / run["name"]
                if proc.returncode == 0 and is_finished(out):
                    on_finished(run)
                    click.echo(f"finished {name} ({len(queue) + len(active)} left)", err=True)
                else:
                    failed.append(name)
                    click.echo(f"FAILED {name} (exit {proc.returncode}; see {out / 'ladder.log'})", err=True)
    except KeyboardInterrupt:
        for proc, _ in active.values():
            proc.terminate()
        for proc, _ in active.values():
            proc.wait()
        click.echo("interrupted; rerun the same command to resume", err=True)
        return False
    finally:
        signal.signal(signal.SIGTERM, previous)
    return not failed


@click.command()
@click.option("--family", type=click.Choice(sorted(GRIDS)), default="chemgpt", show_default=True)
@click.option("--grid", "grid_name", default="cpu", show_default=True, help="A grid of the family (cpu, gpu, test).")
@click.option("--runs", "runs_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/ladder"),
              show_default=True, help="Where run folders (checkpoints, logs) go.")
@click.option("--results", "results_dir", type=click.Path(file_okay=False, path_type=Path), default=RESULTS_DIR,
              show_default=True, help="Where the results table and curves go.")
@click.option("--accelerator", type=click.Choice(["cpu", "gpu", "auto"]), default="cpu", show_default=True)
@click.option("--devices", type=click.IntRange(min=1), default=1, show_default=True, help="Processes (DDP when > 1).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Runs trained at once, each in its own process (small runs sharing one GPU).")
@click.option("--list", "list_only", is_flag=True, help="Print the grid and which runs are finished; train nothing.")
@click.option("--records-only", is_flag=True, help="Rewrite the rows and records of finished runs; train nothing.")
@click.option("--register", is_flag=True, help="Then bundle and register the largest-data run of every size.")
@click.option("--only", default=None, hidden=True, help="Train this one run and write no row (a --workers child).")
def main(family, grid_name, runs_dir, results_dir, accelerator, devices, workers, list_only, records_only, register, only):
    """Train every run of a size x data grid that is not finished yet (resumable)."""
    if grid_name not in GRIDS[family]:
        raise click.BadParameter(f"unknown grid {grid_name!r}; choose one of {', '.join(GRIDS[family])}",
                                 param_hint="--grid")
    grid = GRIDS[family][grid_name]
    if family == "potential":
        from training.potentials.train import train

        runs = potential_runs(grid, accelerator, devices)
    else:
        from training.chemgpt.train import train

        runs = chemgpt_runs(grid, accelerator, devices)
    if only is not None:
        run = next((r for r in runs if r["name"] == only), None)
        if run is None:
            raise click.BadParameter(f"no run {only!r} in the {family} grid {grid_name}", param_hint="--only")
        raise SystemExit(0 if train(run, runs_dir / family / run["name"]) is not None else 1)
    table = results_dir / f"{grid.table or family}.csv"
    recorded = recorded_devices(table)  # runs with a committed row: finished, even in a fresh checkout
    pending = []
    for k, run in enumerate(runs, start=1):
        out = runs_dir / family / run["name"]
        done = is_finished(out)
        on_record = not done and run["name"] in recorded
        click.echo(f"[{k}/{len(runs)}] {run['name']}: {run['epochs']} epochs"
                   + (" (finished)" if done else " (finished: its row is recorded)" if on_record else ""), err=True)
        if list_only or on_record or (records_only and not done):
            continue
        if done:
            record(run, out, table, results_dir, grid, recorded, done_before=True)
        elif workers > 1:
            pending.append(run)
        elif train(run, out) is None:
            click.echo("interrupted; rerun the same command to resume", err=True)
            return
        else:
            record(run, out, table, results_dir, grid, recorded, done_before=False)
        recorded = recorded_devices(table)
    if pending:
        child_args = ["--family", family, "--grid", grid_name, "--runs", str(runs_dir), "--results", str(results_dir),
                      "--accelerator", accelerator, "--devices", str(devices)]
        if not train_in_parallel(pending, workers, child_args, runs_dir,
                                 lambda run: record(run, runs_dir / family / run["name"], table, results_dir, grid,
                                                    {}, done_before=False)):
            raise SystemExit(1)
    if register:
        for name in register_sizes(runs, runs_dir, table):
            click.echo(f"registered and bundled {name}", err=True)


if __name__ == "__main__":
    main()
