"""`chemzoo md`: trajectory, log and plot from a SMILES or a file; one-line errors for bad input."""

import csv

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.io import read, write
from click.testing import CliRunner

from chemzoo.cli import main
from chemzoo.potentials.calculator import InvalidStructureError
from chemzoo.potentials.md import run_md

from .test_potentials import make_potential


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_potential("schnet").save_pretrained(tmp_path_factory.mktemp("pot") / "schnet")


def run(*args):
    return CliRunner().invoke(main, ["md", *[str(a) for a in args]], catch_exceptions=False)


def one_line_error(result, fragment):
    assert result.exit_code != 0 and "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and fragment in errors[0], result.output


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
    result = run_md(atoms, "nve", temperature, 0.5, 5000, tmp_path / "traj.extxyz", log_every=1, progress=False)
    assert result.blew_up and reason in result.reason
    assert 1 < result.frames < 1000 and len(read(tmp_path / "traj.extxyz", index=":")) == result.frames
