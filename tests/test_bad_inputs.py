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
from chemzoo.errors import ChemzooError, InvalidSettingError

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
    "far.xyz": "2\n\nC 0 0 0\nH 1e30 0 0\n",  # once killed the process (SIGFPE in the neighbour list)
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
    (["md", "-m", "chemgpt-2.7m-moses", "--smiles", "CCO", "-o", "t.extxyz"], ["is a language model (ChemGPT), not a potential"], [],
     ["t.extxyz", "t.csv"]),
    (["md", "--smiles", "CCO", "-o", "old.extxyz"], ["old.extxyz exists; pass --overwrite"], ["old.extxyz"],
     ["old.extxyz.csv", "old.csv"]),
    (["md", "--smiles", "CCO", "-o", "in.smi"], ["use a .extxyz (or .xyz) file name"], ["in.smi"], []),
    (["sample", "-n", "2", "--top-p", "nan", "-o", "s.smi"], ["'nan' is not a finite number"], [], ["s.smi"]),
    (["sample", "-n", "2", "--seed", "12345678901234567890123", "-o", "s.smi"], ["seed must be in [0, 2^63)"], [],
     ["s.smi"]),
    (["sample", "-m", "no_config", "-n", "2", "-o", "s.smi"], ["no_config has no config.json"], [], ["s.smi"]),
    (["sample", "-m", "truncated", "-n", "2", "-o", "s.smi"], ["truncated/model.safetensors", "truncated or corrupt"],
     [], ["s.smi"]),
    (["sample", "-m", "models/chemgpt-2.7m-mosse", "-n", "2", "-o", "s.smi"], ["no folder models/chemgpt-2.7m-mosse here",
     "a mistyped path?"], [], ["s.smi"]),
    (["score", "-m", "painn-xtb-moses-53k", "in.smi"], ["is a potential, not a language model"], [], []),
    (["md", "--smiles", "[Cl-]", "-o", "t.extxyz"], ["net charge of -1"], [], ["t.extxyz"]),
    (["md", "--smiles", "[CH3]", "-o", "t.extxyz"], ["1 unpaired electron(s)", "closed-shell"], [], ["t.extxyz"]),
    (["md", "--smiles", "CCO", "--timestep", "nan", "-o", "t.extxyz"], ["'nan' is not a finite number"], [], ["t.extxyz"]),
    (["md", "--structure", "far.xyz", "-o", "t.extxyz"], ["a coordinate is 1e+30 Å from the origin"], [],
     ["t.extxyz", "t.csv"]),
    (["scaling", "fit", "in.smi"], ["no column 'params'"], [], []),
    (["models", "info", "ChemGPT-4.8M"], ["did you mean ChemGPT-4.7M"], [], []),
]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    import shutil

    from chemzoo.registry import PACKAGE_DIR

    for name, text in FILES.items():
        if text is None:
            (tmp_path / name).write_bytes("CCO\n".encode("utf-16"))
        else:
            (tmp_path / name).write_text(text)
    (tmp_path / "no_config").mkdir()  # a folder that is not a model
    (tmp_path / "no_config" / "model.safetensors").write_bytes(b"")
    truncated = shutil.copytree(PACKAGE_DIR / "checkpoints" / "chemgpt-34.5k-moses-100k", tmp_path / "truncated")
    weights = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    (truncated / "chemzoo.json").write_text('{"name": "truncated", "family": "chemgpt"}')  # no checksums: the read fails
    (tmp_path / "models").mkdir()  # so that models/<typo> reads as a mistyped path, not a hub id
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


API_CASES = [  # (call, exception type, message fragment)
    (lambda: chemzoo.sample(n=2.5), InvalidSettingError, "number of molecules must be a whole number, got 2.5"),
    (lambda: chemzoo.score(None, ["CCO"], batch_size=0), InvalidSettingError, "batch_size must be a positive integer"),
    (lambda: chemzoo.score(None, "CCO"), TypeError, "score() takes a list of SMILES; for one molecule use"),
    (lambda: chemzoo.load("ChemGPT-4.8M"), ChemzooError, "did you mean ChemGPT-4.7M"),
    (lambda: chemzoo.calculator("chemgpt-2.7m-moses"), ChemzooError,
     "chemgpt-2.7m-moses is a language model (ChemGPT), not a potential; `chemzoo models --family potential`"),
    (lambda: chemzoo.sample("painn-xtb-moses-53k", n=2), ChemzooError, "is a potential, not a language model (ChemGPT)"),
    (lambda: chemzoo.load("painn-xtb-moses-53k", dtype="bfloat16"), ChemzooError,
     "dtype 'bfloat16' is not one a potential runs in; use float32, float64"),
    (lambda: chemzoo.list_models("proteins"), ChemzooError, "unknown family 'proteins'; choose one of chemgpt, potential"),
    (lambda: chemzoo.calculator(dtype="float16"), ChemzooError, "cannot run in float16; it supports float32, float64"),
    (lambda: chemzoo.calculator(charge=1), ChemzooError, "trained on neutral closed-shell molecules"),
]


@pytest.mark.parametrize("call, kind, fragment", API_CASES, ids=[str(k) for k in range(len(API_CASES))])
def test_bad_python_api_input(call, kind, fragment):
    """Each a one-line error of the right type (chemzoo's setting errors are also ValueErrors)."""
    with pytest.raises(kind) as info:
        call()
    assert fragment in str(info.value) and "\n" not in str(info.value)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_a_gpu_asked_for_where_there_is_none_is_named():
    with pytest.raises(ChemzooError, match=r"device 'cuda:7' asked for, but torch sees no CUDA GPU here"):
        chemzoo.load(device="cuda:7")


def test_atomic_writes_keep_the_old_file_when_writing_fails(tmp_path):
    from chemzoo.files import save_figure, write_atomically

    target = write_atomically(tmp_path / "a.csv", "old\n")
    with pytest.raises(TypeError, match="data must be str, not int"):
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


def test_far_coordinates_and_tiny_cells_are_refused_not_fatal():
    from chemzoo.potentials.calculator import InvalidStructureError

    atoms = Atoms("CH", positions=[[0, 0, 0], [1e30, 0, 0]])
    atoms.calc = chemzoo.calculator()
    with pytest.raises(InvalidStructureError, match="a coordinate is 1e\\+30 Å from the origin"):
        atoms.get_potential_energy()
    from chemzoo.potentials.calculator import check_structure

    rng = np.random.default_rng(0)  # a big box is not a small cell: 8,000 atoms at water's density (43 Å) is fine
    box = Atoms(numbers=rng.choice([1, 8], 8000), positions=rng.uniform(0, 43, (8000, 3)), cell=[43] * 3, pbc=True)
    check_structure(box, [1, 8], min_distance=0, cutoff=5.0)
    tiny = Atoms("CH", positions=[[0, 0, 0], [0.005, 0, 0]], cell=[0.01] * 3, pbc=True)  # once ran out of memory
    tiny.calc = chemzoo.calculator()
    with pytest.raises(InvalidStructureError, match="the periodic cell is too small for the 5 Å cutoff"):
        tiny.get_potential_energy()


# -- properties of the Python API ------------------------------------------------------------------

@pytest.fixture(scope="module")
def calc():
    return chemzoo.calculator()


@pytest.fixture(scope="module")
def gpt():
    return chemzoo.load()


coordinate = st.one_of(st.floats(-6, 6), st.sampled_from([math.nan, math.inf, -math.inf, 1e30]))


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(numbers=st.lists(st.sampled_from([1, 6, 7, 8, 9, 16, 17, 35, 14, 79, 0]), min_size=1, max_size=6),
       data=st.data())
def test_any_structure_gives_a_finite_energy_or_a_chemzoo_error(calc, numbers, data):
    """(Found: a coordinate of 1e30 Å killed the process inside the neighbour list; now refused. Derandomized, so
    CI runs the same examples each time; test_far_coordinates_and_tiny_cells_are_refused_not_fatal pins it.)"""
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


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.text(max_size=40),
                      st.text(alphabet="CNOScnos()[]=#@+-123456789%/\\.Brl", max_size=40)))
def test_any_smiles_text_is_scored_or_refused_per_molecule(gpt, text):
    (row,) = chemzoo.score(gpt, [text])
    if row.error is None:
        assert math.isfinite(row.log_likelihood) and row.log_likelihood < 0 and row.n_unk >= 0
    else:
        assert isinstance(row.error, str) and row.log_likelihood is None


@settings(max_examples=40, deadline=None, derandomize=True)
@given(text=st.text(alphabet="CNOScnos()[]=#@+-1234.", max_size=24))
def test_any_smiles_text_builds_a_neutral_molecule_or_a_chemzoo_error(text):
    from chemzoo.potentials.md import atoms_from_smiles

    try:
        atoms = atoms_from_smiles(text, seed=0)
    except ChemzooError:
        return
    assert len(atoms) > 0 and np.isfinite(atoms.positions).all()


def test_a_local_folder_is_checked_against_the_checksums_written_beside_it(tmp_path):
    """Every checkpoint chemzoo writes carries sha256 of its files in chemzoo.json; a changed file is named."""
    import json
    import shutil

    from chemzoo.errors import ChecksumError
    from chemzoo.registry import PACKAGE_DIR

    folder = tmp_path / "my-potential"
    shutil.copytree(PACKAGE_DIR / "checkpoints" / "painn-12.1k-xtb-moses-30k", folder)
    meta = json.loads((folder / "chemzoo.json").read_text())
    meta["name"] = "my-potential"  # not a copy of a registered model: only its own manifest protects it
    (folder / "chemzoo.json").write_text(json.dumps(meta))
    assert chemzoo.calculator(str(folder)) is not None
    config = json.loads((folder / "config.json").read_text())
    config["cutoff"] = 4.0  # a plausible, silently wrong edit
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ChecksumError, match=r"config.json does not match the checksum chemzoo wrote beside it"):
        chemzoo.calculator(str(folder))
    (folder / "config.json").unlink()
    with pytest.raises(ChecksumError, match=r"config.json is missing \(its checksum is in"):
        chemzoo.calculator(str(folder))


def test_finite_but_wrong_weights_are_caught_by_a_reference_molecule(tmp_path):
    """A folder without checksums whose weights were scaled (finite, within the absurd-value limit) is refused
    on load: its methanol energy is implausible."""
    import json
    import shutil

    from safetensors.torch import load_file, save_file

    from chemzoo.errors import ChecksumError
    from chemzoo.registry import PACKAGE_DIR

    folder = tmp_path / "tampered"
    shutil.copytree(PACKAGE_DIR / "checkpoints" / "schnet-4.5k-xtb-moses-30k", folder)
    (folder / "chemzoo.json").write_text(json.dumps({"name": "tampered", "family": "potential"}))  # no checksums
    weights = load_file(folder / "model.safetensors")
    last = [k for k in weights if weights[k].is_floating_point() and weights[k].dim() == 2][-1]
    weights[last] = weights[last] * 2000.0
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ChecksumError, match=r"tampered: the model gives methanol an energy of .* eV/atom from its "
                                            r"reference energies\); its weights or config are corrupt"):
        chemzoo.calculator(str(folder))


def test_importing_chemzoo_leaves_rdkit_logging_alone_and_chemzoo_parses_quietly():
    """RDKit's parse messages are blocked only inside chemzoo's own parsing (rdBase.BlockLogs), not for the process."""
    import subprocess
    import sys

    code = ("import chemzoo, chemzoo.lm.molecules as m, chemzoo.potentials.md\n"
            "from rdkit import Chem\n"
            "assert m.canonical_smiles('C1CC') is None\n"
            "import sys; print('--', file=sys.stderr, flush=True)\n"
            "Chem.MolFromSmiles('C1CC')\n")
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stderr
    ours, theirs = err.split("--", 1)
    assert "Parse Error" not in ours and "SMILES Parse Error" in theirs


def test_potentials_leave_torchs_thread_count_alone(monkeypatch):
    """No process-wide setting is changed to evaluate a potential: another thread of the user's program would see it."""
    import torch

    from chemzoo.potentials.md import atoms_from_smiles

    if torch.get_num_threads() == 1:
        torch.set_num_threads(2)  # the toggle this test guards against only acted with several threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: pytest.fail(f"torch.set_num_threads({n}) called"))
    atoms = atoms_from_smiles("CC(=O)Oc1ccccc1C(=O)O")
    for name in (None, "painn-12.1k-xtb-moses-30k"):
        atoms.calc = chemzoo.calculator(name)
        assert np.isfinite(atoms.get_forces()).all()
        chemzoo.relax(atoms.calc, [atoms], steps=2)
