"""The chemzoo command line: outputs, summaries, and one-line errors for bad input."""

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import chemzoo
from chemzoo.cli import main
from chemzoo.registry import default_model

from .helpers import one_line_error


@pytest.fixture
def run():
    def invoke(*args):
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)

    return invoke


@pytest.mark.parametrize("command", [[], ["models"], ["models", "info"], ["sample"], ["score"], ["md"], ["evaluate"], ["relax"], ["scaling"],
                                     *[["scaling", c] for c in ("fit", "plot", "predict", "advise", "tse")]])
def test_every_command_has_help(run, command):
    result = run(*command, "--help")
    assert result.exit_code == 0 and "Usage:" in result.output


def test_models_lists_the_bundled_default(run):
    result = run("models")
    assert result.exit_code == 0
    header, *rows = result.output.splitlines()
    assert header.split() == ["name", "family", "params", "n_train", "source"]
    marked = [r.split()[0] for r in rows if "(default)" in r]  # each family's default
    assert marked == [default_model(f).name for f in ("chemgpt", "potential")]
    assert any(r.split()[0] == default_model().name and r.split()[-1] == "bundled" for r in rows)
    info = run("models", "info", default_model().name)
    assert info.exit_code == 0 and "750,000 molecules" in info.output and "bundled" in info.output


def test_a_reader_that_stops_early_ends_the_command_quietly():
    """`chemzoo models | head -1`: the closed pipe is no error message, and the shell sees SIGPIPE's status."""
    import subprocess
    import sys

    code = ("import os, sys; from chemzoo.cli import main; r, w = os.pipe(); os.close(r); os.dup2(w, 1); "
            "sys.stdout = os.fdopen(1, 'w', buffering=1); main(['models'])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 141 and result.stderr == ""


def test_sample_writes_smiles_settings_and_a_summary(run, tmp_path):
    out = tmp_path / "mols.smi"
    result = run("sample", "-n", 30, "--seed", 3, "--top-p", 0.95, "-o", out)
    assert result.exit_code == 0, result.output
    smiles = out.read_text().split()
    assert len(smiles) == 30
    record = json.loads((tmp_path / "mols.smi.json").read_text())
    assert record["seed"] == 3 and record["top_p"] == 0.95 and record["model"] == default_model().name
    assert "valid 100.0%" in result.output and "novel" in result.output and "molecules/s" in result.output
    again = tmp_path / "again.smi"
    run("sample", "-n", 30, "--seed", 3, "--top-p", 0.95, "-o", again)
    assert again.read_text() == out.read_text()


def test_sample_to_csv_has_selfies_and_novelty(run, tmp_path):
    out = tmp_path / "mols.csv"
    assert run("sample", "-n", 10, "-o", out).exit_code == 0
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 10 and set(rows[0]) == {"smiles", "selfies", "valid", "novel", "log_likelihood"}
    assert all(r["selfies"].startswith("[") and r["valid"] == "1" and r["novel"] in {"0", "1"} for r in rows)


def test_score_writes_likelihoods_and_reports_invalid_lines(run, tmp_path):
    src = tmp_path / "in.smi"
    src.write_text("smiles\nCCO\nC1CC\nc1ccccc1\nnot_a_smiles\n")
    out = tmp_path / "scores.csv"
    result = run("score", src, "-o", out)
    assert result.exit_code == 0 and "scored 2 of 4 SMILES" in result.output and "2 skipped (lines 3, 5)" in result.output
    assert "line 3: invalid SMILES 'C1CC'" in result.output
    rows = list(csv.DictReader(open(out)))
    assert [r["smiles"] for r in rows] == ["CCO", "c1ccccc1"] and {r["n_unk"] for r in rows} == {"0"}
    assert all(float(r["log_likelihood"]) < 0 and int(r["num_tokens"]) > 1 for r in rows)
    strict = run("score", src, "-o", out, "--overwrite", "--strict")  # the rest is written, the exit says so
    one_line_error(strict, "scored 2 of 4 SMILES", "2 skipped (lines 3, 5)", "--strict")
    assert [r["smiles"] for r in csv.DictReader(open(out))] == ["CCO", "c1ccccc1"]
    junk = tmp_path / "junk.smi"
    junk.write_text("C1CC\nxyz\n")
    one_line_error(run("score", junk), "none of the 2 SMILES", "could be scored")


def test_score_counts_unknown_symbols_and_scores_the_flat_graph_on_request(run, tmp_path):
    src = tmp_path / "in.smi"
    src.write_text("CC[Xe]\nC[C@H](N)C(=O)O alanine\nCC(N)C(=O)O\n")
    result = run("score", src, "-o", tmp_path / "a.csv")
    assert result.exit_code == 0
    assert "Warning:" in result.output and "[Xe]" in result.output and "[UNK]" in result.output
    assert "--strip-stereo" in result.output and "2 with unknown symbols (n_unk > 0)" in result.output
    rows = list(csv.DictReader(open(tmp_path / "a.csv")))
    assert [r["n_unk"] for r in rows] == ["1", "1", "0"]
    assert run("score", src, "--strip-stereo", "-o", tmp_path / "b.csv").exit_code == 0
    stripped = list(csv.DictReader(open(tmp_path / "b.csv")))
    assert [r["n_unk"] for r in stripped] == ["1", "0", "0"]
    assert stripped[1]["log_likelihood"] == stripped[2]["log_likelihood"] == rows[2]["log_likelihood"]  # the flat graph
    assert float(rows[1]["log_likelihood"]) < float(rows[2]["log_likelihood"]) - 10  # [UNK] costs many nats


def test_score_reads_a_csv_column_by_name(run, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("name,SMILES\r\nethanol,CCO\r\nbenzene,c1ccccc1\r\n")
    result = run("score", src)
    assert result.exit_code == 0 and [r["smiles"] for r in csv.DictReader(io.StringIO(result.stdout))] == ["CCO", "c1ccccc1"]
    other = tmp_path / "other.csv"
    other.write_text("id,mol\n1,CCO\n")
    assert [r["smiles"] for r in csv.DictReader(io.StringIO(run("score", other, "--column", "mol").stdout))] == ["CCO"]
    one_line_error(run("score", other, "--column", "smiles"), "has no column 'smiles'; its columns: id, mol")


def test_unknown_model_is_one_line_with_close_names(run, tmp_path):
    one_line_error(run("sample", "-m", "chemgpt-2.7m-mose", "-n", 1, "-o", tmp_path / "x.smi"),
                   "unknown model 'chemgpt-2.7m-mose'", "did you mean chemgpt-2.7m-moses")
    one_line_error(run("models", "info", "ChemGPT-4.8M"), "did you mean ChemGPT-4.7M")


@pytest.mark.parametrize("args, fragment", [
    (["-n", 0], "-n"),
    (["-n", -3], "-n"),
    (["--temperature", 0], "--temperature"),
    (["--top-p", 1.5], "--top-p"),
])
def test_bad_numbers_are_usage_errors(run, tmp_path, args, fragment):
    result = run("sample", *args, "-o", tmp_path / "x.smi")
    assert result.exit_code == 2 and fragment in result.output and "Traceback" not in result.output


def test_unwritable_output_fails_before_sampling(run, tmp_path):
    one_line_error(run("sample", "-n", 5, "-o", tmp_path / "missing" / "x.smi"), "does not exist")
    (tmp_path / "d.smi").mkdir()
    result = run("sample", "-n", 5, "-o", tmp_path / "d.smi")
    assert result.exit_code == 2 and "directory" in result.output


def test_offline_without_cache_is_one_line(run, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    one_line_error(run("sample", "-m", "ChemGPT-19M", "-n", 1, "-o", tmp_path / "x.smi"),
                   "HF_HUB_OFFLINE", "ncfrey/ChemGPT-19M", str(tmp_path / "empty"))


def test_corrupt_bundled_file_is_named(run, tmp_path, monkeypatch):

    import chemzoo.registry as registry

    entry = default_model()
    fake_pkg = tmp_path / "pkg"
    import shutil

    shutil.copytree(entry.bundled_dir, fake_pkg / "checkpoints" / entry.name)
    (fake_pkg / "checkpoints" / entry.name / "config.json").write_text("{}")
    monkeypatch.setattr(registry, "PACKAGE_DIR", fake_pkg)
    one_line_error(run("sample", "-n", 1, "-o", tmp_path / "x.smi"), "checksum mismatch", "config.json")


def test_an_over_long_molecule_is_skipped_with_its_line_and_the_rest_scored(run, tmp_path):
    smi = tmp_path / "long.smi"
    smi.write_text("CCO\n" + "C" * 300 + "\nc1ccccc1\n")
    out = tmp_path / "out.csv"
    result = run("score", str(smi), "-o", str(out))
    assert result.exit_code == 0 and "scored 2 of 3 SMILES" in result.output and "1 skipped (lines 2)" in result.output
    assert "line 2: 302 tokens, longer than the 256 positions" in result.output
    assert [r["smiles"] for r in csv.DictReader(open(out))] == ["CCO", "c1ccccc1"]


def test_score_refuses_a_bare_string_and_a_zero_batch():
    import chemzoo

    gpt = chemzoo.load()
    with pytest.raises(TypeError, match=r"score\(\) takes a list of SMILES"):
        chemzoo.score(gpt, "CCO")
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        chemzoo.score(gpt, ["CCO"], batch_size=0)


@pytest.mark.parametrize("args, fragment", [
    (["--temperature", "nan"], "'nan' is not a finite number"),
    (["--top-p", "nan"], "'nan' is not a finite number"),
    (["--seed", "12345678901234567890123"], "seed must be in [0, 2^63)"),
])
def test_nan_and_huge_settings_are_one_line_errors_not_unexpected(run, tmp_path, args, fragment):
    result = run("sample", "-n", "2", *args, "-o", str(tmp_path / "x.smi"))
    one_line_error(result, fragment)
    assert "unexpected" not in result.output


def test_score_reads_samples_own_csv_a_bom_and_refuses_binary_and_its_own_input(run, tmp_path):
    sampled = tmp_path / "s.csv"
    assert run("sample", "-n", "5", "--seed", "3", "-o", str(sampled)).exit_code == 0
    wanted = [r["smiles"] for r in csv.DictReader(open(sampled)) if r["smiles"]]
    out = tmp_path / "scores.csv"
    assert run("score", str(sampled), "-o", str(out)).exit_code == 0
    assert [r["smiles"] for r in csv.DictReader(open(out))] == wanted
    bom = tmp_path / "bom.smi"
    bom.write_bytes("\ufeffCCO\nc1ccccc1\n".encode("utf-8"))
    assert run("score", str(bom), "-o", str(out), "--overwrite").exit_code == 0
    assert [r["smiles"] for r in csv.DictReader(open(out))] == ["CCO", "c1ccccc1"]
    utf16 = tmp_path / "u16.smi"
    utf16.write_bytes("CCO\n".encode("utf-16"))
    one_line_error(run("score", str(utf16)), "is not UTF-8 text")
    before = bom.read_bytes()
    one_line_error(run("score", str(bom), "-o", str(bom)), "is the input file")
    assert bom.read_bytes() == before


def test_replacing_an_output_needs_overwrite_and_a_directory_companion_is_refused_before_sampling(run, tmp_path):
    out = tmp_path / "x.smi"
    out.write_text("old\n")
    one_line_error(run("sample", "-n", "2", "-o", str(out)), f"{out} exists; pass --overwrite to replace it")
    assert out.read_text() == "old\n"
    assert run("sample", "-n", "2", "-o", str(out), "--overwrite").exit_code == 0 and out.read_text() != "old\n"
    (tmp_path / "y.smi.json").mkdir()
    one_line_error(run("sample", "-n", "2", "-o", str(tmp_path / "y.smi")), "y.smi.json is a directory")
    assert not (tmp_path / "y.smi").exists() and not list(tmp_path.glob(".*tmp"))


def test_a_potential_given_to_sample_or_score_is_named(run, tmp_path):
    one_line_error(run("sample", "-m", "painn-xtb-moses-53k", "-n", "2", "-o", str(tmp_path / "x.smi")),
                   "painn-xtb-moses-53k is a potential, not a language model")
    smi = tmp_path / "a.smi"
    smi.write_text("CCO\n")
    one_line_error(run("score", "-m", "painn-xtb-moses-53k", str(smi)), "is a potential, not a language model")


def test_unexpected_errors_print_one_line(run, tmp_path, monkeypatch):
    import chemzoo.loading

    def boom(*args, **kwargs):
        raise RuntimeError("first line\nsecond line\nthird line")

    monkeypatch.setattr(chemzoo.loading, "load", boom)
    result = run("sample", "-n", "2", "-o", str(tmp_path / "x.smi"))
    one_line_error(result, "unexpected RuntimeError: first line (set CHEMZOO_DEBUG=1 for the traceback)")
    assert "second line" not in result.output


def test_sample_writes_each_molecules_log_likelihood_as_sampled(run, tmp_path):
    """The CSV's log_likelihood is the model's on the sampled tokens: where the sampled SELFIES is the canonical
    one, `score` (which scores the canonical SELFIES) gives the same number."""
    from chemzoo.lm.molecules import smiles_to_selfies

    out = tmp_path / "s.csv"
    assert run("sample", "-n", "12", "--seed", "5", "-o", out).exit_code == 0
    rows = [r for r in csv.DictReader(open(out)) if r["valid"] == "1"]
    assert all(float(r["log_likelihood"]) < 0 for r in rows)
    scored = {r["smiles"]: float(r["log_likelihood"]) for r in csv.DictReader(io.StringIO(run("score", out).stdout))}
    same = [r for r in rows if smiles_to_selfies(r["smiles"]) == r["selfies"]]
    assert len(same) >= 3
    for r in same:
        assert float(r["log_likelihood"]) == pytest.approx(scored[r["smiles"]], abs=2e-3)


def test_the_readme_model_table_is_the_registry_and_models_info_prints_measured_metrics(run):
    """README's zoo table is generated (`python -m hub_upload.readme`): it must equal what the registry renders now."""
    from pathlib import Path

    from chemzoo.loading import list_models
    from chemzoo.zoo import END, START, markdown_table

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert readme.split(START, 1)[1].split(END, 1)[0].strip() == markdown_table(list_models()), \
        "README's model table is stale: run python -m hub_upload.readme"
    assert run("models", "--markdown").output.strip() == markdown_table(list_models())
    info = run("models", "info", "painn-151k-xtb-moses-30k").output
    assert "measured (from its card):" in info and "Force MAE (meV/Å): 74.06" in info


def test_evaluate_writes_every_structures_energy_and_forces(run, tmp_path):
    """`chemzoo evaluate FILE -o out.extxyz`: all frames, batched, the calculator's numbers."""
    import numpy as np
    from ase import Atoms
    from ase.io import read, write

    from chemzoo.potentials.datasets import load_dataset

    data = load_dataset(Path(__file__).parent / "data" / "xtb-moses-200")
    starts = np.concatenate([[0], np.cumsum(data["n_atoms"])])
    frames = [Atoms(numbers=data["numbers"][a:b], positions=data["positions"][a:b]) for a, b in zip(starts[:6], starts[1:7])]
    write(tmp_path / "in.xyz", frames)
    result = run("evaluate", tmp_path / "in.xyz", "-o", tmp_path / "out.extxyz", "--batch-size", "4")
    assert result.exit_code == 0, result.output
    out = read(tmp_path / "out.extxyz", index=":")
    calc = chemzoo.calculator()
    for atoms, got in zip(frames, out):
        atoms.calc = calc
        assert got.get_potential_energy() == pytest.approx(atoms.get_potential_energy(), abs=2e-3)
        np.testing.assert_allclose(got.get_forces(), atoms.get_forces(), atol=1e-4)
    one_line_error(run("evaluate", tmp_path / "in.xyz", "-o", tmp_path / "in.xyz"), "is the input file")


def test_relax_reaches_fmax_and_says_when_it_did_not(run, tmp_path):
    import numpy as np
    from ase.io import read

    out = tmp_path / "relaxed.extxyz"
    result = run("relax", "--smiles", "CC(=O)Oc1ccccc1C(=O)O", "--fmax", "0.05", "-o", out)
    assert result.exit_code == 0 and "1 of 1 structures relaxed" in result.output
    (aspirin,) = read(out, index=":")
    assert aspirin.info["relaxed"] and np.linalg.norm(aspirin.get_forces(), axis=1).max() < 0.05
    calc = chemzoo.calculator()
    check = aspirin.copy()
    check.calc = calc  # the written energy is the model's at the written geometry
    assert check.get_potential_energy() == pytest.approx(aspirin.get_potential_energy(), abs=2e-3)
    short = run("relax", "--structure", out, "--fmax", "1e-6", "--steps", "1", "-o", tmp_path / "short.extxyz")
    one_line_error(short, "structure(s) 0 not converged in 1 steps")
    assert (tmp_path / "short.extxyz").is_file()  # written as it ended


def test_relax_writes_sdf_with_the_molecules_bonds_and_reads_sdf_back(run, tmp_path):
    """SDF out keeps the SMILES' (or input SDF's) bonds, perceives them for xyz input, and carries the energy."""
    from ase.io import read, write
    from rdkit import Chem
    from rdkit.Chem import AllChem

    from chemzoo.potentials.md import atoms_from_smiles

    aspirin = "CC(=O)Oc1ccccc1C(=O)O"
    result = run("relax", "--smiles", aspirin, "-o", tmp_path / "aspirin.sdf")
    assert result.exit_code == 0, result.output
    (mol,) = Chem.SDMolSupplier(str(tmp_path / "aspirin.sdf"), removeHs=False)
    assert Chem.MolToSmiles(Chem.RemoveHs(mol)) == Chem.CanonSmiles(aspirin) and mol.GetNumAtoms() == 21
    props = mol.GetPropsAsDict()
    assert props["relaxed"] == 1 and props["max_force_eV_per_A"] < 0.05 and props["model"] == default_model("potential").name
    atoms = atoms_from_smiles(aspirin)
    atoms.positions = mol.GetConformer().GetPositions()
    atoms.calc = chemzoo.calculator()
    assert props["energy_eV"] == pytest.approx(atoms.get_potential_energy(), abs=2e-3)
    assert mol.GetProp("_Name") == aspirin

    again = run("relax", "--structure", tmp_path / "aspirin.sdf", "--fmax", "0.01", "-o", tmp_path / "tighter.sdf")
    assert again.exit_code == 0, again.output
    (tight,) = Chem.SDMolSupplier(str(tmp_path / "tighter.sdf"), removeHs=False)
    assert Chem.MolToSmiles(tight) == Chem.MolToSmiles(mol) and tight.GetDoubleProp("max_force_eV_per_A") < 0.01

    caffeine = "Cn1cnc2c1c(=O)n(C)c(=O)n2C"  # from xyz: bonds and bond orders perceived from the geometry
    write(tmp_path / "caffeine.xyz", atoms_from_smiles(caffeine))
    assert run("relax", "--structure", tmp_path / "caffeine.xyz", "-o", tmp_path / "caffeine.sdf").exit_code == 0
    (caf,) = Chem.SDMolSupplier(str(tmp_path / "caffeine.sdf"))
    assert Chem.MolToSmiles(caf) == Chem.CanonSmiles(caffeine)

    no_h = Chem.MolFromSmiles("CCO")  # an SDF without hydrogens: they are added
    with_h = Chem.AddHs(no_h)
    AllChem.EmbedMolecule(with_h, randomSeed=0)
    Chem.MolToMolFile(Chem.RemoveHs(with_h), str(tmp_path / "ethanol.sdf"))
    assert run("relax", "--structure", tmp_path / "ethanol.sdf", "-o", tmp_path / "ethanol.extxyz").exit_code == 0
    assert len(read(tmp_path / "ethanol.extxyz")) == 9

    flat = Chem.MolFromSmiles("CCO")
    AllChem.Compute2DCoords(flat)
    Chem.MolToMolFile(flat, str(tmp_path / "flat.sdf"))
    one_line_error(run("relax", "--structure", tmp_path / "flat.sdf", "-o", tmp_path / "x.sdf"), "record 1 has 2D coordinates")
    box = atoms_from_smiles("O")
    box.cell, box.pbc = [8, 8, 8], True
    write(tmp_path / "box.extxyz", box)
    one_line_error(run("relax", "--structure", tmp_path / "box.extxyz", "-o", tmp_path / "box.sdf"),
                   "periodic structures cannot be written as SDF")
    one_line_error(run("relax", "--smiles", "CCO", "-o", tmp_path / "x.pdb"), "use a .extxyz (or .xyz, .sdf) file name")


def test_batched_relax_takes_ases_own_path():
    """chemzoo.relax (forces batched, one ASE optimizer per structure) == ASE's optimizer run one by one."""
    import numpy as np
    from ase.optimize import FIRE, LBFGS

    from chemzoo.potentials.md import atoms_from_smiles

    frames = [atoms_from_smiles(s, seed=1) for s in ("CCO", "c1ccccc1", "CC(=O)N")]
    for atoms in frames:
        atoms.rattle(0.05, seed=2)
    calc = chemzoo.calculator(dtype="float64")
    for name, optimizer in (("lbfgs", LBFGS), ("fire", FIRE)):
        relaxed = chemzoo.relax(calc, frames, fmax=0.02, steps=40, optimizer=name, batch_size=2)
        assert all(r is not a for r, a in zip(relaxed, frames)) and frames[0].calc is None  # copies; inputs untouched
        for atoms, got in zip(frames, relaxed):
            ref = atoms.copy()
            ref.calc = calc
            opt = optimizer(ref, logfile=None)
            converged = opt.run(fmax=0.02, steps=40)
            assert (got.info["relaxed"], got.info["optimizer_steps"]) == (converged, opt.nsteps)
            np.testing.assert_allclose(got.positions, ref.positions, atol=1e-7)
            assert got.get_potential_energy() == pytest.approx(ref.get_potential_energy(), abs=1e-8)
    with pytest.raises(chemzoo.ChemzooError, match="unknown optimizer 'bfgs'"):
        chemzoo.relax(calc, frames, optimizer="bfgs")
