"""Bad and edge inputs, table-driven: every case exits with a one-line error naming the problem (or behaves
correctly), starts no work it can check before, and leaves no partial or replaced file. Then properties
(Hypothesis) of the Python API over arbitrary SMILES text and structures: chemzoo raises only its own
errors and never returns a non-finite energy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ase import Atoms
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chemzoo
from chemzoo.cli import main
from chemzoo.errors import ChemzooError

from .helpers import one_line_error

FILES = {  # name -> text of the input files every case may use
    "in.smi": "CCO\nc1ccccc1\n",
    "old.smi": "previous output\n",
    "old.extxyz": "previous trajectory\n",
    "clash.xyz": "2\n\nC 0 0 0\nC 0 0 0.1\n",
    "silicon.xyz": "2\n\nSi 0 0 0\nH 0 0 1.5\n",
    "long.smi": "C" * 300 + "\n",
    "utf16.smi": None,  # written as UTF-16 below
    "table.csv": "id,mol\n1,CCO\n",
}

# (arguments, message fragments, files that must keep their text, files that must not exist afterwards)
CASES = [
    (["sample", "-n", "2", "-o", "old.smi"], ["old.smi exists; pass --overwrite"], ["old.smi"], ["old.smi.json"]),
    (["sample", "-n", "2", "-o", "/proc/x.smi"], ["cannot write /proc/x.smi"], [], []),
    (["sample", "-n", "2", "-o", "nowhere/x.smi"], ["folder nowhere does not exist"], [], ["nowhere"]),
    (["sample", "-n", "2", "--temperature", "nan", "-o", "s.smi"], ["'nan' is not a finite number"], [], ["s.smi"]),
    (["sample", "-m", "painn-xtb-moses-53k", "-n", "2", "-o", "s.smi"], ["is a potential, not a language model"], [],
     ["s.smi"]),
    (["sample", "-m", "chemgpt-2.7m-mose", "-n", "2", "-o", "s.smi"], ["did you mean chemgpt-2.7m-moses"], [], ["s.smi"]),
    (["score", "in.smi", "-o", "in.smi"], ["is the input file"], ["in.smi"], []),
    (["score", "long.smi", "-o", "scores.csv"], ["none of the 1 SMILES", "could be scored"], [], ["scores.csv"]),
    (["score", "utf16.smi"], ["is not UTF-8 text"], [], []),
    (["score", "table.csv", "--column", "smiles"], ["has no column 'smiles'; its columns: id, mol"], [], []),
    (["md", "--smiles", "[O-]", "-o", "t.extxyz"], ["net charge of -1", "neutral molecules"], [], ["t.extxyz", "t.csv"]),
    (["md", "--structure", "clash.xyz", "-o", "t.extxyz"], ["0.10 Å apart"], [], ["t.extxyz", "t.csv"]),
    (["md", "--structure", "silicon.xyz", "-o", "t.extxyz"], ["element(s) Si not supported", "H C N O F S Cl Br"], [],
     ["t.extxyz", "t.csv"]),
    (["md", "--smiles", "CCO", "--temperature", "1e9", "-o", "t.extxyz"], ["--temperature"], [], ["t.extxyz"]),
    (["md", "-m", "chemgpt-2.7m-moses", "--smiles", "CCO", "-o", "t.extxyz"], ["is not a chemzoo potential"], [],
     ["t.extxyz", "t.csv"]),
    (["md", "--smiles", "CCO", "-o", "old.extxyz"], ["old.extxyz exists; pass --overwrite"], ["old.extxyz"],
     ["old.extxyz.csv", "old.csv"]),
    (["md", "--smiles", "CCO", "-o", "in.smi"], ["use a .extxyz (or .xyz) file name"], ["in.smi"], []),
    (["scaling", "fit", "in.smi"], ["no column 'params'"], [], []),
    (["models", "info", "ChemGPT-4.8M"], ["did you mean ChemGPT-4.7M"], [], []),
]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    for name, text in FILES.items():
        if text is None:
            (tmp_path / name).write_bytes("CCO\n".encode("utf-16"))
        else:
            (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("args, fragments, unchanged, absent", CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_command_line_input(workdir, args, fragments, unchanged, absent):
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    one_line_error(result, *fragments)
    assert "unexpected" not in result.output
    for name in unchanged:
        assert (workdir / name).read_text() == FILES[name], f"{name} was changed"
    for name in absent:
        assert not (workdir / name).exists(), f"{name} was left behind"
    assert not list(workdir.glob(".*.tmp*")), "a temporary file was left behind"


def test_atomic_writes_keep_the_old_file_when_writing_fails(tmp_path):
    from chemzoo.files import save_figure, write_atomically

    target = write_atomically(tmp_path / "a.csv", "old\n")
    with pytest.raises(TypeError):
        write_atomically(target, 12345)  # neither text nor bytes: fails while writing
    assert target.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["a.csv"]

    class Broken:
        def savefig(self, path, **kwargs):
            open(path, "wb").write(b"half a PNG")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_figure(Broken(), tmp_path / "plot.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv"]


def test_charges_and_spins_are_refused_not_dropped():
    from ase.build import molecule

    with pytest.raises(ChemzooError, match="charge=-1: chemzoo potentials were trained on neutral"):
        chemzoo.calculator(charge=-1)
    with pytest.raises(ChemzooError, match="unknown calculator option"):
        chemzoo.calculator(spin=1)
    water = molecule("H2O")
    water.calc = chemzoo.calculator()
    energy = water.get_potential_energy()
    water.set_initial_charges([0, 0, -1])
    with pytest.raises(ChemzooError, match="net charge of -1 e"):
        water.get_potential_energy()
    water.set_initial_charges([0.4, -0.2, -0.2])  # partial charges summing to zero are fine
    water.set_initial_magnetic_moments([0, 0, 1])
    with pytest.raises(ChemzooError, match="closed-shell"):
        water.get_potential_energy()
    water.set_initial_magnetic_moments([0, 0, 0])
    assert water.get_potential_energy() == pytest.approx(energy)


# -- properties of the Python API ------------------------------------------------------------------

@pytest.fixture(scope="module")
def calc():
    return chemzoo.calculator()


@pytest.fixture(scope="module")
def gpt():
    return chemzoo.load()


coordinate = st.one_of(st.floats(-6, 6), st.sampled_from([math.nan, math.inf, -math.inf, 1e30]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(numbers=st.lists(st.sampled_from([1, 6, 7, 8, 9, 16, 17, 35, 14, 79, 0]), min_size=1, max_size=6),
       data=st.data())
def test_any_structure_gives_a_finite_energy_or_a_chemzoo_error(calc, numbers, data):
    positions = data.draw(st.lists(st.tuples(coordinate, coordinate, coordinate), min_size=len(numbers),
                                   max_size=len(numbers)))
    cell = data.draw(st.one_of(st.none(), st.floats(0.5, 20)))
    try:
        atoms = Atoms(numbers=numbers, positions=positions, cell=None if cell is None else [cell] * 3,
                      pbc=cell is not None)
    except Exception:  # ASE itself refuses some inputs (e.g. atomic number 0 is fine, this is not ours to test)
        return
    atoms.calc = calc
    try:
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    except ChemzooError:
        return
    assert math.isfinite(energy) and np.isfinite(forces).all()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.text(max_size=40),
                      st.text(alphabet="CNOScnos()[]=#@+-123456789%/\\.Brl", max_size=40)))
def test_any_smiles_text_is_scored_or_refused_per_molecule(gpt, text):
    (row,) = chemzoo.score(gpt, [text])
    if row.error is None:
        assert math.isfinite(row.log_likelihood) and row.log_likelihood < 0 and row.n_unk >= 0
    else:
        assert isinstance(row.error, str) and row.log_likelihood is None


@settings(max_examples=40, deadline=None)
@given(text=st.text(alphabet="CNOScnos()[]=#@+-1234.", max_size=24))
def test_any_smiles_text_builds_a_neutral_molecule_or_a_chemzoo_error(text):
    from chemzoo.potentials.md import atoms_from_smiles

    try:
        atoms = atoms_from_smiles(text, seed=0)
    except ChemzooError:
        return
    assert len(atoms) > 0 and np.isfinite(atoms.positions).all()
