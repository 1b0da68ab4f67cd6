"""`chemzoo md`: trajectory, log and plot from a SMILES or a file; one-line errors for bad input."""

import csv
import json
from types import SimpleNamespace

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.io import read, write
from click.testing import CliRunner

from chemzoo.cli import main
from chemzoo.potentials.calculator import InvalidStructureError
from chemzoo.potentials.md import md_tested_warning, run_md

from .helpers import one_line_error
from .test_potentials import make_potential


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_potential("schnet").save_pretrained(tmp_path_factory.mktemp("pot") / "schnet")


def run(*args):
    return CliRunner().invoke(main, ["md", *[str(a) for a in args]], catch_exceptions=False)


def test_nve_from_smiles_writes_trajectory_log_and_plot(model_dir, tmp_path):
    out = tmp_path / "traj.extxyz"
    result = run("-m", model_dir, "--smiles", "CCO", "--ensemble", "nve", "--temperature", 300, "--timestep", 0.25,
                 "--steps", 40, "--log-every", 10, "--dtype", "float64", "-o", out)
    assert result.exit_code == 0, result.output
    frames = read(out, index=":")
    assert len(frames) == 5 and len(frames[0]) == 9
    rows = list(csv.DictReader(open(tmp_path / "traj.csv")))
    assert [float(r["time_fs"]) for r in rows] == [0.0, 2.5, 5.0, 7.5, 10.0]
    total = np.array([float(r["total_eV"]) for r in rows])
    assert np.abs(total - total[0]).max() < 1e-3  # NVE conserves energy with a conservative potential
    assert (tmp_path / "traj.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "total-energy change" in result.output


def test_langevin_from_a_structure_file_is_seeded(model_dir, tmp_path):
    from chemzoo.potentials.md import atoms_from_smiles

    src = tmp_path / "in.xyz"
    write(src, atoms_from_smiles("CC(=O)O"))
    a, b = tmp_path / "a.extxyz", tmp_path / "b.extxyz"
    for out in (a, b):
        assert run("-m", model_dir, "--structure", src, "--steps", 20, "--seed", 4, "-o", out).exit_code == 0
    assert a.read_text() == b.read_text()


def test_bad_inputs_are_one_line_errors(model_dir, tmp_path):
    out = tmp_path / "t.extxyz"
    one_line_error(run("-m", model_dir, "--smiles", "C1CC", "-o", out), "invalid SMILES 'C1CC'")
    bad = tmp_path / "bad.xyz"
    bad.write_text("this is not\na structure\n")
    one_line_error(run("-m", model_dir, "--structure", bad, "-o", out), f"cannot read a structure from {bad}")
    si = tmp_path / "si.xyz"
    write(si, read_si())
    one_line_error(run("-m", model_dir, "--structure", si, "-o", out), "element(s) Si not supported")
    one_line_error(run("-m", "painn-typo", "--smiles", "CCO", "-o", out), "unknown model 'painn-typo'")
    usage = run("-m", model_dir, "-o", out)
    assert usage.exit_code == 2 and "exactly one of --structure FILE or --smiles SMILES" in usage.output


def read_si():
    from ase import Atoms

    return Atoms("SiH4", positions=[[0, 0, 0], [0.9, 0.9, 0.9], [-0.9, -0.9, 0.9], [-0.9, 0.9, -0.9], [0.9, -0.9, -0.9]])


def test_md_runs_on_the_bundled_default_potential(tmp_path):
    out = tmp_path / "default.extxyz"
    result = run("--smiles", "CCO", "--steps", 20, "-o", out)
    assert result.exit_code == 0, result.output
    assert len(read(out, index=":")) == 3


class Collapsing(Calculator):
    """Two atoms under E = -k / r (k in eV Å): they fall onto each other; refused below 0.5 Å like
    chemzoo's calculator."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, k: float):
        super().__init__()
        self.k = k

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        d = self.atoms.positions[1] - self.atoms.positions[0]
        r = float(np.linalg.norm(d))
        if r < 0.5:
            raise InvalidStructureError(f"atoms 0 and 1 are {r:.2f} Å apart, closer than 0.5 Å")
        f1 = -self.k / r**2 * d / r
        self.results = {"energy": -self.k / r, "forces": np.array([-f1, f1])}


@pytest.mark.parametrize("k, temperature, reason", [(0.5, 300.0, "closer than 0.5 Å"), (5.0, 10.0, "temperature reached")])
def test_a_collapse_mid_run_ends_as_a_blow_up_with_its_reason_and_frames_kept(tmp_path, k, temperature, reason):
    atoms = Atoms("H2", positions=[[0, 0, 0], [1.5, 0, 0]], calculator=Collapsing(k))
    result = run_md(atoms, "nve", temperature, 0.5, 5000, tmp_path / "traj.extxyz", log_every=1, progress=False,
                    watch_bonds=False)
    assert result.blew_up and reason in result.reason and not result.reacted
    assert 1 < result.frames < 1000 and len(read(tmp_path / "traj.extxyz", index=":")) == result.frames
    t_end = result.log[-1]["time_fs"]
    assert t_end > 0 and f"at {t_end + 0.5:g} fs" in result.reason or f"at {t_end:g} fs" in result.reason


def test_a_new_bond_stops_the_run_before_the_atoms_overlap(tmp_path):
    atoms = Atoms("H2", positions=[[0, 0, 0], [1.5, 0, 0]], calculator=Collapsing(0.5))
    log = tmp_path / "traj.csv"
    result = run_md(atoms, "nve", 300.0, 0.5, 5000, tmp_path / "traj.extxyz", log_every=1, progress=False,
                    log_path=log)
    assert result.reacted and not result.blew_up
    assert result.reason.startswith("bond H0-H1 formed (0.6") and result.reason.endswith(f"at {result.log[-1]['time_fs']:g} fs")
    frames = read(tmp_path / "traj.extxyz", index=":")
    assert len(frames) == result.frames and frames[-1].get_distance(0, 1) < 1.1 * 0.62  # the frame showing it
    rows = list(csv.DictReader(open(log)))  # written row by row
    assert len(rows) == result.frames and float(rows[-1]["time_fs"]) == result.log[-1]["time_fs"]


def test_allow_reactions_logs_each_bond_change_and_goes_on(tmp_path):
    atoms = Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]], calculator=Collapsing(-0.3))  # repulsive: H2 flies apart
    result = run_md(atoms, "nve", 300.0, 0.5, 200, tmp_path / "traj.extxyz", log_every=2, progress=False,
                    allow_reactions=True)
    assert not result.reacted and not result.blew_up and result.log[-1]["time_fs"] == 100.0
    assert len(result.bond_changes) == 1 and result.bond_changes[0].startswith("bond H0-H1 broken")


def test_bond_watch_ignores_vibrations_and_sees_a_broken_bond():
    from chemzoo.potentials.bonds import BondWatch
    from chemzoo.potentials.md import atoms_from_smiles

    aspirin = atoms_from_smiles("CC(=O)Oc1ccccc1C(=O)O")
    watch = BondWatch(aspirin)
    assert len(watch.bonds) == 21  # 13 heavy-atom bonds + 8 X-H
    hot = aspirin.copy()
    hot.positions += np.random.default_rng(0).normal(scale=0.08, size=hot.positions.shape)  # ~thermal at 1000 K
    assert watch.check(hot) is None
    o_h = next((i, j) for i, j in watch.bonds if sorted(aspirin.numbers[[i, j]]) == [1, 8])
    torn = aspirin.copy()
    torn.set_distance(*o_h, 1.6, fix=0)  # O-H beyond 1.5 x (0.66 + 0.31) Å
    change = watch.check(torn)
    assert change.kind == "broken" and (change.i, change.j) == o_h and change.distance == pytest.approx(1.6)


def test_after_an_allowed_change_the_watch_reports_only_new_changes_not_vibrations():
    """A run that allows reactions goes on from the graph with the change in it: a bond elsewhere that happens to
    be stretched (past the 1.2x of the starting graph, short of the 1.5x break) at that moment is not dropped
    and later reported "formed" when it vibrates back (a re-derived graph did that: in a box of 25 molecules
    at 1500 K one real change was followed by ten such reports within 0.4 ps)."""
    from chemzoo.potentials.bonds import BondWatch

    # C0-H1 bonded (1.09 Å); O2-H3 bonded (0.97 Å) 10 Å away; H4 free, 3 Å from O2
    start = Atoms("CHOHH", positions=[[0, 0, 0], [1.09, 0, 0], [10, 0, 0], [10.97, 0, 0], [7.0, 0, 0]])
    watch = BondWatch(start)
    assert watch.bonds == {(0, 1), (2, 3)}
    moved = start.copy()
    moved.positions[4] = [9.05, 0, 0]  # H4 onto O2 (0.95 Å): a new bond
    moved.positions[1] = [1.35, 0, 0]  # C0-H1 stretched to 1.35 Å: above 1.2 x 1.07, below 1.5 x 1.07
    change = watch.check(moved)
    assert (change.kind, change.i, change.j) == ("formed", 2, 4)
    watch.accept(change)
    assert watch.bonds == {(0, 1), (2, 3), (2, 4)} and watch.check(moved) is None
    back = moved.copy()
    back.positions[1] = [1.09, 0, 0]  # C0-H1 vibrates back: nothing new
    assert watch.check(back) is None
    torn = back.copy()
    torn.positions[3] = [11.8, 0, 0]  # O2-H3 at 1.8 Å: broken, reported once
    change = watch.step(torn)  # check and accept in one
    assert (change.kind, change.i, change.j) == ("broken", 2, 3)
    assert watch.step(torn) is None and watch.bonds == {(0, 1), (2, 4)}


def test_md_cli_stops_with_one_line_when_a_bond_changes(tmp_path, monkeypatch):
    import chemzoo

    def collapsing(*args, **kwargs):
        calc = Collapsing(0.5)
        calc.elements, calc.min_distance, calc.model_name = [1], 0.5, "collapsing-toy"
        return calc

    monkeypatch.setattr(chemzoo, "calculator", collapsing)
    src = tmp_path / "h2.xyz"
    write(src, Atoms("H2", positions=[[0, 0, 0], [1.5, 0, 0]]))
    out = tmp_path / "t.extxyz"
    result = run("--structure", src, "--ensemble", "nve", "--steps", 5000, "--log-every", 1, "-o", out)
    one_line_error(result, "the bond graph changed: bond H0-H1 formed")
    assert "--allow-reactions" in result.output
    settings = json.loads((tmp_path / "t.extxyz.json").read_text())
    assert settings["model"] == "collapsing-toy" and settings["ensemble"] == "nve" and settings["seed"] == 0
    assert len(read(out, index=":")) == len(list(csv.DictReader(open(tmp_path / "t.csv"))))


def test_md_refuses_to_overwrite_its_input(model_dir, tmp_path):
    src = tmp_path / "w.xyz"
    write(src, Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]))
    before = src.read_text()
    one_line_error(run("-m", model_dir, "--structure", src, "-o", src), "is the input structure")
    assert src.read_text() == before


def test_an_extxyz_with_momenta_continues_from_them(model_dir, tmp_path):
    first = tmp_path / "first.extxyz"
    assert run("-m", model_dir, "--smiles", "CCO", "--ensemble", "langevin", "--steps", 20, "--dtype", "float64",
               "-o", first).exit_code == 0
    last = read(first, index=-1)
    assert np.abs(last.get_momenta()).max() > 0
    second = tmp_path / "second.extxyz"
    result = run("-m", model_dir, "--structure", first, "--ensemble", "nve", "--steps", 10, "--log-every", 10,
                 "--dtype", "float64", "-o", second)
    assert result.exit_code == 0 and "continuing from the momenta" in result.output
    start = read(second, index=0)
    np.testing.assert_allclose(start.get_momenta(), last.get_momenta(), atol=1e-6)
    assert json.loads((tmp_path / "second.extxyz.json").read_text())["continued_from_momenta"] is True


def test_equilibrate_runs_langevin_first(model_dir, tmp_path):
    out = tmp_path / "eq.extxyz"
    result = run("-m", model_dir, "--smiles", "CCO", "--ensemble", "nve", "--equilibrate", 0.01, "--steps", 10,
                 "--dtype", "float64", "-o", out)
    assert result.exit_code == 0, result.output
    plain = tmp_path / "plain.extxyz"
    run("-m", model_dir, "--smiles", "CCO", "--ensemble", "nve", "--steps", 10, "--dtype", "float64", "-o", plain)
    assert not np.allclose(read(out, index=0).positions, read(plain, index=0).positions)  # 20 Langevin steps moved it
    assert json.loads((tmp_path / "eq.extxyz.json").read_text())["equilibrate_ps"] == 0.01


def test_md_with_a_committee_logs_the_force_spread_and_stops_when_it_is_too_large(tmp_path):
    from tests.test_potentials import make_potential

    folders = [make_potential("schnet", seed=s).save_pretrained(tmp_path / f"m{s}") for s in (0, 1)]
    out = tmp_path / "c.extxyz"
    result = run("--committee", ",".join(map(str, folders)), "--smiles", "CCO", "--steps", 20, "--log-every", 5,
                 "--dtype", "float64", "-o", out)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(open(tmp_path / "c.csv")))
    spreads = [float(r["max_force_spread_eV_per_A"]) for r in rows]
    assert len(rows) == 5 and all(s > 0 for s in spreads)
    assert json.loads((tmp_path / "c.extxyz.json").read_text())["committee"] == [str(f) for f in folders]
    stopped = run("--committee", ",".join(map(str, folders)), "--smiles", "CCO", "--steps", 20, "--log-every", 5,
                  "--max-spread", min(spreads) / 2, "--dtype", "float64", "-o", tmp_path / "s.extxyz")
    one_line_error(stopped, "the potentials disagree: committee force spread")
    usage = run("--max-spread", 1, "--smiles", "CCO", "-o", tmp_path / "u.extxyz")
    assert usage.exit_code == 2 and "--max-spread needs --committee" in usage.output


def test_an_interrupted_run_keeps_its_frames_log_and_plot(model_dir, tmp_path, monkeypatch):
    import chemzoo.potentials.md as md

    calls = {"n": 0}
    real = md.write

    def interrupt_on_the_fourth_frame(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(md, "write", interrupt_on_the_fourth_frame)
    out = tmp_path / "i.extxyz"
    (tmp_path / "i.png").write_bytes(b"an old plot")
    result = run("-m", model_dir, "--smiles", "CCO", "--steps", 100, "--log-every", 5, "-o", out, "--overwrite")
    one_line_error(result, "interrupted at 7.5 fs; the trajectory, log and plot up to then are saved")
    assert len(read(out, index=":")) == 3 == len(list(csv.DictReader(open(tmp_path / "i.csv"))))
    assert (tmp_path / "i.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # this run's plot, not the old file


@pytest.mark.parametrize("args, fragment", [
    (["--temperature", "nan"], "'nan' is not a finite number"),
    (["--timestep", "nan"], "'nan' is not a finite number"),
    (["--seed", "99999999999"], "99999999999 is not in the range 0<=x<=2147483647"),
])
def test_md_refuses_nan_and_out_of_range_settings(model_dir, tmp_path, args, fragment):
    result = run("-m", model_dir, "--smiles", "CCO", *args, "-o", tmp_path / "t.extxyz")
    assert result.exit_code == 2 and fragment in result.output


def test_a_multi_fragment_smiles_is_embedded_with_its_pieces_apart():
    from chemzoo.potentials.md import FRAGMENT_GAP, atoms_from_smiles

    from scipy.sparse.csgraph import connected_components

    from chemzoo.potentials.bonds import bond_set

    atoms = atoms_from_smiles("CCO.O")
    bonds = np.array(sorted(bond_set(atoms)))
    adjacency = np.zeros((len(atoms), len(atoms)))
    adjacency[bonds[:, 0], bonds[:, 1]] = 1
    n, label = connected_components(adjacency, directed=False)
    assert n == 2 and sorted(np.bincount(label)) == [3, 9]  # water and ethanol, each bonded within itself
    d = np.linalg.norm(atoms.positions[label == 0][:, None] - atoms.positions[label == 1][None], axis=-1)
    assert d.min() >= FRAGMENT_GAP - 1e-6


def test_bussi_thermostat_holds_the_temperature_and_records_its_time_constant(tmp_path):
    """NVT by velocity rescaling (ASE's Bussi): where NVE would halve it (equipartition), aspirin stays near 400 K."""
    from pathlib import Path

    from click.testing import CliRunner

    from chemzoo.cli import main

    out = tmp_path / "nvt.extxyz"
    args = ["md", "--structure", str(Path(__file__).parent / "data" / "aspirin.xyz"), "--ensemble", "bussi", "--taut", "20",
            "--temperature", "400", "--steps", "1200", "--seed", "0", "-o", str(out)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    temps = [float(r["temperature_K"]) for r in csv.DictReader(open(tmp_path / "nvt.csv"))]
    late = sum(temps[len(temps) // 2:]) / len(temps[len(temps) // 2:])
    assert 280 < late < 520  # 21 atoms fluctuate; the mean of the last 0.3 ps is near 400 K
    assert json.loads((tmp_path / "nvt.extxyz.json").read_text())["taut_fs"] == 20


def test_side_by_side_molecules_are_far_apart_each_at_its_own_temperature():
    from ase import units
    from ase.build import molecule

    from chemzoo.potentials.md import SPACING, side_by_side

    mols = [molecule("C6H6"), molecule("CH3CH2OH"), molecule("H2O")] * 4
    box, owner = side_by_side(mols, [100.0, 3000.0, 1000.0] * 4, seed=0)
    assert len(box) == sum(len(m) for m in mols) and owner.tolist() == [n for n, m in enumerate(mols) for _ in m]
    centres = np.array([box.positions[owner == n].mean(0) for n in range(len(mols))])
    gaps = np.linalg.norm(centres[:, None] - centres[None], axis=-1) + 1e9 * np.eye(len(mols))
    assert gaps.min() == pytest.approx(SPACING)
    for n, mol in enumerate(mols):  # no net momentum per molecule, shape kept
        assert np.abs(box.get_momenta()[owner == n].sum(0)).max() < 1e-9
        np.testing.assert_allclose(box.positions[owner == n] - centres[n], mol.positions - mol.positions.mean(0), atol=1e-9)
    def temperature(n):  # K, from the kinetic energy over the 3N - 6 internal degrees of freedom
        p, m = box.get_momenta()[owner == n], box.get_masses()[owner == n, None]
        return 2 * (0.5 * (p**2 / m).sum()) / ((3 * len(m) - 6) * units.kB)

    benzene, ethanol = (np.mean([temperature(n) for n in range(k, len(mols), 3)]) for k in (0, 1))
    assert 50 < benzene < 200 and 1500 < ethanol < 6000
    again, _ = side_by_side(mols, [100.0, 3000.0, 1000.0] * 4, seed=0)
    np.testing.assert_array_equal(again.get_momenta(), box.get_momenta())


def test_md_warns_up_front_when_the_potential_is_not_shown_to_keep_molecules_intact(tmp_path):
    """`chemzoo md` says before it runs whether the chosen potential was tested in MD at that temperature
    (its chemzoo.json's md_safe_K): not safe (a ladder checkpoint too), never tested, or tested only cooler; the
    default at 300 K runs without a warning. The settings JSON keeps the line."""
    out = tmp_path / "t.extxyz"
    cases = [(["-m", "painn-xtb-moses-53k"], 300, "painn-xtb-moses-53k is not safe in molecular dynamics"),
             (["-m", "schnet-4.5k-xtb-moses-30k"], 300, "schnet-4.5k-xtb-moses-30k is not safe in molecular dynamics"),
             ([], 1000, "has been tested in molecular dynamics up to 300 K, not at 1000 K"),
             ([], 300, None)]
    for args, temperature, warning in cases:
        result = CliRunner().invoke(main, ["md", *args, "--smiles", "CCO", "--steps", "2", "--temperature", str(temperature),
                                           "-o", str(out), "--overwrite"])
        assert result.exit_code == 0, result.output
        settings = json.loads((tmp_path / "t.extxyz.json").read_text())
        if warning is None:
            assert "Warning" not in result.output and settings["md_tested_warning"] is None
        else:
            line = next(x for x in result.output.splitlines() if x.startswith("Warning: "))
            assert warning in line and "chemzoo models info" in line and settings["md_tested_warning"] in line
    untested = md_tested_warning(SimpleNamespace(model_name="my-potential", md_safe_K=None), 300)
    assert untested.startswith("my-potential has not been tested in molecular dynamics") and "schnet-xtb-moses-53k-md7" in untested
    assert "for MD use the default potential, schnet-xtb-moses-53k-md" in CliRunner().invoke(
        main, ["md", "-m", "nequip-xtb-moses-53k", "--smiles", "CCO", "--steps", "1", "-o", str(out), "--overwrite"]).output


def test_a_committee_warns_for_its_first_member_not_tested_in_md():
    import chemzoo
    from chemzoo.potentials.md import md_tested_warning

    committee = chemzoo.calculator(["schnet-xtb-moses-53k-contact", "painn-xtb-moses-53k"])
    assert md_tested_warning(committee, 300.0).startswith("painn-xtb-moses-53k is not safe")
    assert md_tested_warning(chemzoo.calculator("schnet-xtb-moses-53k-contact"), 300.0) is None
