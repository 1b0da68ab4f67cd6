"""The xTB dataset (real GFN2-xTB labels, split by molecule, resumable) and potential training."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest
import torch

import chemzoo
from chemzoo.potentials.datasets import load_dataset
from training.potentials.dataset import SPLIT_FRACTIONS, build_chunk, worker_threads
from training.potentials.train import train

SLICE = Path(__file__).parent / "data" / "xtb-moses-200"

SPLITS = list(SPLIT_FRACTIONS)  # build_chunk's molecules to label: all splits


@pytest.fixture(scope="module")
def data():
    return load_dataset(SLICE)


def test_labels_are_gfn2_xtb_energies_and_forces(data):
    from ase import Atoms
    from tblite.ase import TBLite

    starts = np.concatenate([[0], np.cumsum(data["n_atoms"])])
    for k in (0, 777):
        a, b = starts[k], starts[k + 1]
        atoms = Atoms(numbers=data["numbers"][a:b], positions=data["positions"][a:b])
        atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
        assert atoms.get_potential_energy() == pytest.approx(data["energy"][k], abs=1e-6)
        np.testing.assert_allclose(atoms.get_forces(), data["forces"][a:b], atol=1e-3)  # SCF restarts differ slightly


def test_splits_are_by_molecule(data):
    by_split = {s: set(data["mol_index"][data["split"] == s]) for s in ("train", "val", "test")}
    assert all(by_split.values())
    assert not (by_split["train"] & by_split["val"] or by_split["train"] & by_split["test"] or by_split["val"] & by_split["test"])
    assert set(np.unique(data["numbers"])) <= {1, 6, 7, 8, 9, 16, 17, 35}


def test_finished_chunks_are_not_redone(tmp_path):
    job = (0, ["CCO"], [0], 2, 0, "thermal", None, SPLITS, tmp_path)
    assert build_chunk(job)[1] == 2
    chunk = tmp_path / "chunk-00000.npz"
    stamp = chunk.stat().st_mtime_ns
    assert build_chunk(job)[1] == 2 and chunk.stat().st_mtime_ns == stamp
    assert not list(tmp_path.glob("*.tmp*"))


def test_a_split_alone_is_the_full_builds_structures_of_that_split(tmp_path):
    """--split test labels the test molecules only, with the structures the full build gives them; a chunk with
    none of them is still a valid (empty) chunk."""
    from training.potentials.dataset import split_of

    first = next(m for m in range(100) if split_of(m, 0) == "test" and split_of(m + 1, 0) == "train")
    full, part = tmp_path / "full", tmp_path / "part"
    full.mkdir(), part.mkdir()
    assert build_chunk((0, ["CCO", "CC=O"], [first, first + 1], 2, 0, "thermal", None, SPLITS, full))[1:] == (4, 0)
    assert build_chunk((0, ["CCO", "CC=O"], [first, first + 1], 2, 0, "thermal", None, ["test"], part))[1:] == (2, 0)
    assert build_chunk((1, ["CC=O"], [first + 1], 2, 0, "thermal", None, ["test"], part))[1:] == (0, 0)
    a, b = load_dataset(full), load_dataset(part)
    assert b["mol_index"].tolist() == [first, first] and b["split"].tolist() == ["test", "test"]
    assert b["n_atoms"].tolist() == [9, 9]  # ethanol's, not acetaldehyde's
    np.testing.assert_array_equal(b["positions"], a["positions"][:18])
    np.testing.assert_array_equal(b["energy"], a["energy"][:2])


def test_a_split_alone_is_refused_for_the_md_recipe(tmp_path):
    from click.testing import CliRunner

    from training.potentials.dataset import main

    result = CliRunner().invoke(main, ["--recipe", "md", "--split", "test", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "--split is for the per-molecule recipes" in result.output
    # without --split the md recipe gets past that check (here to the next one: a folder built otherwise)
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "build.json").write_text(json.dumps({"molecules": 1, "recipe": "thermal"}))
    result = CliRunner().invoke(main, ["--recipe", "md", "--md-model", "schnet-xtb-moses-53k-md7", "--out", str(tmp_path / "y")])
    assert result.exit_code == 2 and "was built with another config" in result.output


RUN = dict(family="potential", name="schnet-test", data=str(SLICE), architecture="schnet", features=16,
           interactions=2, lmax=1, cutoff=4.0, n_train=96, epochs=1, batch_size=16, lr=1e-3, seed=0, devices=1,
           ckpt_every=50)


def baselines(data) -> tuple[float, float]:
    """Test-split force MAE of a zero predictor (meV/Å) and energy MAE of a mean-energy-per-atom predictor
    fitted on the train split (meV/atom): what a model that learnt nothing scores."""
    starts = np.concatenate([[0], np.cumsum(data["n_atoms"])])
    test = np.flatnonzero(data["split"] == "test")
    forces = np.concatenate([data["forces"][starts[k]:starts[k + 1]] for k in test])
    per_atom = data["energy"] / data["n_atoms"]
    mean = per_atom[data["split"] == "train"].mean()
    return 1000 * np.abs(forces).mean(), 1000 * np.abs(per_atom[test] - mean).mean()


def test_training_writes_a_checkpoint_that_beats_predicting_nothing(tmp_path, data):
    metrics = train({**RUN, "epochs": 25, "lr": 3e-3}, tmp_path)  # 150 steps of 16 structures, ~6 s
    zero_forces, mean_energy = baselines(data)
    assert 850 < zero_forces < 1000  # the slice's test forces are large: thermal displacements
    assert metrics["steps"] == 150 and metrics["test_force_mae_meV_per_A"] < 0.5 * zero_forces  # measured 384
    assert metrics["test_energy_mae_meV_per_atom"] < 0.2 * mean_energy  # measured 66 vs ~2,000
    card = (tmp_path / "checkpoint" / "README.md").read_text()
    assert "- schnet" in card and f"| test force MAE | {metrics['test_force_mae_meV_per_A']:.1f} meV/Å" in card
    row = next(csv.DictReader(open(tmp_path / "results.csv")))
    assert row["family"] == "potential" and row["n_train"] == "96" and row["architecture"] == "schnet"
    curve = list(csv.DictReader(open(tmp_path / "curve.csv")))
    assert any(r.get("val_force_mae_meV_per_A") for r in curve)
    from ase.build import molecule

    atoms = molecule("CH3CH2OH")
    atoms.calc = chemzoo.calculator(tmp_path / "checkpoint")
    assert atoms.get_forces().shape == (9, 3)
    # fitted reference energies put the total within ~1 eV/atom of xTB (-310 eV for ethanol)
    assert abs(atoms.get_potential_energy() - (-309.98)) / len(atoms) < 1.0


def test_ddp_on_two_cpu_processes(tmp_path, repo_root):
    cmd = [sys.executable, "-m", "training.potentials.train", "--data", str(SLICE), "--architecture", "painn",
           "--features", "8", "--interactions", "1", "--n-train", "64", "--epochs", "1", "--batch-size", "8",
           "--devices", "2", "--out", str(tmp_path)]
    subprocess.run(cmd, check=True, cwd=repo_root, timeout=600, capture_output=True)
    metrics = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    assert metrics["steps"] == 4  # 64 structures / (8 per step x 2 processes)


def test_a_dataset_grows_only_when_its_existing_chunks_stay_valid():
    from training.potentials.dataset import can_extend

    built = dict(molecules=6000, per_molecule=8, chunk_molecules=50, seed=0)
    assert can_extend(built, built)
    assert can_extend(built, {**built, "molecules": 12500})
    assert not can_extend(built, {**built, "molecules": 5000})  # shrinking would keep stale chunks
    assert not can_extend(built, {**built, "molecules": 12500, "seed": 1})
    assert not can_extend({**built, "molecules": 6010}, {**built, "molecules": 12500})  # last chunk was partial
    assert can_extend(built, {**built, "recipe": "thermal"})  # folders from before recipes are thermal
    assert not can_extend(built, {**built, "recipe": "contact"})


def test_pulled_pairs_keep_their_axis_and_the_distance_floor():
    from training.potentials.dataset import CONTACT_FLOOR, pull_pair

    positions = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.5, 1.2, 0.0]])
    topology = np.array([[0, 1, 2], [1, 0, 1], [2, 1, 0]])
    rng = np.random.default_rng(0)
    for _ in range(50):
        moved = pull_pair(positions, topology, 2, 0.3, 0.9, rng)
        d0, d = np.linalg.norm(positions[2] - positions[0]), np.linalg.norm(moved[2] - moved[0])
        assert max(CONTACT_FLOOR, 0.3 * d0) - 1e-12 <= d <= 0.9 * d0
        np.testing.assert_allclose(np.cross(moved[2] - moved[0], positions[2] - positions[0]), 0, atol=1e-12)
        np.testing.assert_array_equal(moved[1], positions[1])  # only the pair moves
        np.testing.assert_allclose(moved.mean(0), positions.mean(0))  # symmetrically
    assert pull_pair(positions, topology, 3, 0.5, 0.9, rng) is None  # no 1-4 pair in a triatomic


def test_contact_recipe_labels_close_contacts_with_xtb(tmp_path):
    from ase import Atoms
    from tblite.ase import TBLite

    from training.potentials.dataset import MAX_FORCE, label_molecule

    rows = label_molecule("CCO", 0, 4, 0, "contact")
    assert 2 <= len(rows) <= 4 and {r[4] for r in rows} <= {300.0, 2500.0}
    for numbers, positions, energy, forces, _ in rows:
        d = np.linalg.norm(positions[:, None] - positions[None], axis=-1) + 9 * np.eye(len(numbers))
        assert d.min() >= 0.5 and np.abs(forces).max() <= MAX_FORCE
        atoms = Atoms(numbers=numbers, positions=positions, calculator=TBLite(method="GFN2-xTB", verbosity=0))
        assert atoms.get_potential_energy() == pytest.approx(energy, abs=1e-6)
    # the geminal pull (the first geometry) costs energy against the relaxed thermal geometries
    thermal = label_molecule("CCO", 0, 3, 0, "thermal")
    assert rows[0][2] > max(r[2] for r in thermal) + 0.1


def test_stretch_recipe_pulls_one_bond_of_each_kind_apart_and_xtb_charges_for_it():
    """Each geometry stretches one covalent bond (to S/Cl/Br, another heavy-atom bond, a bond to H) to
    110-160 % of its length; xTB puts it above the molecule's 300 K thermal geometry."""
    from rdkit import Chem

    from training.potentials.dataset import MAX_FORCE, STRETCH, bonds_of_kind, conformers, label_molecule

    smiles = "CSc1ccc(Br)cc1"
    numbers, (conformer,), topology = conformers(smiles, 1, 0 + 3)
    weak_i, weak_j = bonds_of_kind(numbers, topology, "weak")
    assert sorted(tuple(sorted((numbers[a], numbers[b]))) for a, b in zip(weak_i, weak_j)) == [(6, 16), (6, 16), (6, 35)]
    assert all(1 in (numbers[a], numbers[b]) for a, b in zip(*bonds_of_kind(numbers, topology, "hydrogen")))
    assert len(bonds_of_kind(numbers, topology, "heavy")[0]) == 6  # the ring
    # a molecule with no S, Cl or Br stretches its heavy-atom bonds in the weak slot
    n2, _, t2 = conformers("CCO", 1, 0)
    assert len(bonds_of_kind(n2, t2, "weak")[0]) == 2

    rows = label_molecule(smiles, 3, 4, 0, "stretch")
    thermal = label_molecule(smiles, 3, 3, 0, "thermal")
    assert [r[4] for r in rows] == [300.0, 300.0, 300.0, 1000.0]
    bonded = np.triu(Chem.GetAdjacencyMatrix(Chem.AddHs(Chem.MolFromSmiles(smiles)))).astype(bool)
    for kind, (_, positions, energy, forces, _) in zip(["weak", "heavy", "hydrogen"], rows):
        ratio = np.where(bonded, np.linalg.norm(positions[:, None] - positions[None], axis=-1)
                         / np.linalg.norm(conformer[:, None] - conformer[None], axis=-1).clip(1e-9), 0)
        # the most stretched bond is of the geometry's kind, stretched beyond what 300 K noise does
        a, b = np.unravel_index(ratio.argmax(), ratio.shape)
        i, j = bonds_of_kind(numbers, topology, kind)
        assert (a, b) in set(zip(i, j)) and STRETCH[0] - 0.05 < ratio.max() < STRETCH[1] + 0.05
        assert np.abs(forces).max() <= MAX_FORCE
        assert energy > thermal[0][2] + 0.3  # the same noise (300 K) without the stretch


def test_proton_recipe_moves_a_hydrogen_onto_its_acceptor_and_xtb_charges_for_it():
    """Salicylaldehyde's phenolic H is moved along its intramolecular hydrogen bond onto the carbonyl O (the
    transfer hot MD made where xTB does not); with no polar H, an H moves onto a neighbour of its carbon."""
    from training.potentials.dataset import BOND_TO_H, MAX_FORCE, conformers, label_molecule, move_proton, proton_pairs

    smiles = "O=Cc1ccccc1O"
    numbers, (conformer,), topology = conformers(smiles, 1, 3)
    h, a = proton_pairs(conformer, numbers, topology)
    carbonyl = 0  # the first atom of the SMILES
    assert list(zip(numbers[h], a)) == [(1, carbonyl)] and topology[h[0], carbonyl] == 5
    # the whole way: the H ends a bond length from the acceptor, on the side it came from; only the H moves
    moved = move_proton(conformer, numbers, topology, 1.0, 1.0, np.random.default_rng(0))
    assert np.linalg.norm(moved[h[0]] - moved[carbonyl]) == pytest.approx(BOND_TO_H[8])
    assert np.linalg.norm(moved[h[0]] - conformer[h[0]]) == pytest.approx(np.linalg.norm(conformer[h[0]] - conformer[carbonyl]) - BOND_TO_H[8])
    np.testing.assert_array_equal(np.delete(moved, h[0], 0), np.delete(conformer, h[0], 0))
    # xTB: the further along, the higher (20-50, 50-80, 80-100 % with 300 K noise; 20-100 % at 1000 K)
    rows = label_molecule(smiles, 3, 4, 0, "proton")
    thermal = label_molecule(smiles, 3, 3, 0, "thermal")
    assert [r[4] for r in rows] == [300.0, 300.0, 300.0, 1000.0]
    rise = [r[2] - thermal[0][2] for r in rows[:3]]
    assert 0.05 < rise[0] < rise[1] < rise[2] and all(np.abs(r[3]).max() <= MAX_FORCE for r in rows)

    numbers, (conformer,), topology = conformers("CCC", 1, 0)
    h, a = proton_pairs(conformer, numbers, topology)
    assert len(h) == 10 and set(numbers[a]) == {6} and set(topology[h, a]) == {2}  # 1,2-shifts only
    assert proton_pairs(np.zeros((1, 3)), np.array([6]), np.zeros((1, 1)))[0].size == 0  # no hydrogen


def test_squeeze_recipe_pushes_a_hydrogen_bonds_oxygens_together_with_their_hydrogens():
    """Salicylaldehyde's two O (four bonds apart, 2.6 Å across the hydrogen bond) pushed together to 70-95 % of
    their distance, not under 2.0 Å, each O carrying its H; xTB charges for it."""
    from training.potentials.dataset import MAX_FORCE, SQUEEZE, SQUEEZE_FLOOR, conformers, label_molecule, squeeze, squeeze_pairs

    smiles = "O=Cc1ccccc1O"
    numbers, (conformer,), topology = conformers(smiles, 1, 3)
    i, j = squeeze_pairs(conformer, numbers, topology, polar=True)
    assert list(zip(i, j)) == [(0, 8)] and topology[0, 8] == 4  # carbonyl O and phenol O
    hydroxyl = int(np.flatnonzero((topology[8] == 1) & (numbers == 1))[0])
    d0 = np.linalg.norm(conformer[8] - conformer[0])
    for seed in range(5):
        moved = squeeze(conformer, numbers, topology, True, np.random.default_rng(seed))
        d = np.linalg.norm(moved[8] - moved[0])
        assert max(SQUEEZE_FLOOR, SQUEEZE[0] * d0) - 1e-9 <= d <= SQUEEZE[1] * d0
        np.testing.assert_allclose(moved[hydroxyl] - moved[8], conformer[hydroxyl] - conformer[8])  # O-H kept
        still = np.setdiff1d(np.arange(len(numbers)), [0, 8, hydroxyl])
        np.testing.assert_array_equal(moved[still], conformer[still])
    assert squeeze_pairs(conformer, numbers, topology, polar=False)[0].size >= 1

    rows = label_molecule(smiles, 3, 4, 0, "squeeze")
    thermal = label_molecule(smiles, 3, 3, 0, "thermal")
    assert [r[4] for r in rows] == [300.0, 300.0, 300.0, 1000.0]
    assert all(r[2] > thermal[0][2] + 0.1 for r in rows[:3]) and all(np.abs(r[3]).max() <= MAX_FORCE for r in rows)
    numbers, (conformer,), topology = conformers("CCO", 1, 0)
    assert squeeze(conformer, numbers, topology, False, np.random.default_rng(0)) is None  # nothing 4 bonds apart


@pytest.mark.parametrize("recipe", ["md", "langevin"])
def test_md_recipes_label_a_potentials_own_trajectory_with_xtb(tmp_path, recipe):
    """Frames of the potential's MD - NVE from hot starts (md) or Langevin at 300/450/600 K after EQUILIBRATE_FS
    (langevin), by molecule - labelled by xTB; the chunk holds the same molecules and splits as the thermal recipe's,
    and the same job gives the same frames."""
    from ase import Atoms
    from tblite.ase import TBLite

    from chemzoo.potentials.bonds import BondWatch
    from training.potentials.dataset import split_of
    from training.potentials.sampling import start_temperature, thermal_temperature

    job = (0, ["CCO", "CC(=O)O"], [4, 5], 2, 0, recipe, "schnet-xtb-moses-53k-md7", SPLITS, tmp_path / "a")
    (tmp_path / "a").mkdir()
    assert build_chunk(job)[1:] == (4, 0)
    got = load_dataset(tmp_path / "a")
    assert got["mol_index"].tolist() == [4, 4, 5, 5]
    temperature_of = start_temperature if recipe == "md" else thermal_temperature
    assert got["temperature"].tolist() == [temperature_of(4)] * 2 + [temperature_of(5)] * 2
    assert recipe == "md" or got["temperature"].tolist() == [450.0] * 2 + [600.0] * 2
    assert got["split"].tolist() == [split_of(m, 0) for m in got["mol_index"]]
    first = Atoms(numbers=got["numbers"][:9].astype(int), positions=got["positions"][:9])
    first.calc = TBLite(method="GFN2-xTB", verbosity=0)
    assert first.get_potential_energy() == pytest.approx(got["energy"][0], abs=1e-6)
    np.testing.assert_allclose(first.get_forces(), got["forces"][:9], atol=1e-6)
    second = Atoms(numbers=first.numbers, positions=got["positions"][9:18])
    assert np.abs(second.positions - first.positions).max() > 0.05  # it moved between frames, still ethanol:
    assert BondWatch(first).check(second) is None
    (tmp_path / "b").mkdir()
    build_chunk(job[:-1] + (tmp_path / "b",))
    np.testing.assert_array_equal(load_dataset(tmp_path / "b")["positions"], got["positions"])


def test_several_builds_train_together_only_when_they_split_molecules_alike(tmp_path, data):
    import shutil

    from training.potentials.data import load_datasets

    for name in ("a", "b"):
        shutil.copytree(SLICE, tmp_path / name)
    both = load_datasets([tmp_path / "a", tmp_path / "b"])
    assert len(both["energy"]) == 2 * len(data["energy"]) and len(both["numbers"]) == 2 * len(data["numbers"])
    chunk = next((tmp_path / "b").glob("chunk-*.npz"))
    arrays = dict(np.load(chunk))
    moved = arrays["mol_index"][arrays["split"] == "test"][0]
    arrays["split"][arrays["mol_index"] == moved] = "train"
    np.savez(chunk, **arrays)
    with pytest.raises(ValueError, match=rf"molecule {moved} is in the test split of one folder and the train split"):
        load_datasets([tmp_path / "a", tmp_path / "b"])


def test_md_sampling_keeps_the_frame_where_a_molecule_went_wrong():
    """A molecule the calculator refuses (atoms 0.3 Å apart) leaves the box with its geometry; the others go on."""
    from ase import Atoms

    import chemzoo
    from training.potentials.sampling import md_frames

    calc = chemzoo.calculator("schnet-xtb-moses-53k-contact")
    water = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    clash = Atoms("CH4", positions=[[0, 0, 0], [0.63, 0.63, 0.63], [-0.63, -0.63, 0.63], [-0.63, 0.63, -0.63],
                                    [0.63 + 0.3, 0.63, 0.63]])
    frames = md_frames([water, clash], [300.0, 300.0], 3, calc, seed=0)
    assert len(frames[0]) == 3 and len(frames[1]) == 1
    np.testing.assert_allclose(frames[1][0] - frames[1][0].mean(0), clash.positions - clash.positions.mean(0), atol=1e-9)
    # water's frames are FRAME_FS apart: it moved, but stayed a molecule
    steps = [np.abs(b - a).max() for a, b in zip(frames[0], frames[0][1:])]
    assert all(0 < s < 1.0 for s in steps)


def test_packed_parts_hold_whole_train_molecules_and_finish_by_evaluation(tmp_path, data, repo_root):
    for part in (0, 1):
        cmd = [sys.executable, "-m", "training.potentials.pack", "--data", str(SLICE), "--part", str(part), "--of", "2",
               "--val-structures", "40", "--out", str(tmp_path / "packed")]
        subprocess.run(cmd, check=True, cwd=repo_root, timeout=300, capture_output=True)
    packed = load_dataset(tmp_path / "packed")
    train_rows = data["split"] == "train"
    assert (packed["split"] == "train").sum() == train_rows.sum() and (packed["split"] == "val").sum() == 40
    assert not (packed["split"] == "test").any()
    starts = np.concatenate([[0], np.cumsum(packed["n_atoms"])])
    k = int(np.flatnonzero(packed["split"] == "train")[5])
    full_k = int(np.flatnonzero((data["mol_index"] == packed["mol_index"][k]) & train_rows)[0])
    first = int(np.flatnonzero(packed["mol_index"] == packed["mol_index"][k])[0])
    full_start = int(np.concatenate([[0], np.cumsum(data["n_atoms"])])[full_k + k - first])
    a, b = starts[k], starts[k + 1]
    np.testing.assert_allclose(packed["forces"][a:b], data["forces"][full_start : full_start + b - a], atol=2e-3)
    np.testing.assert_allclose(packed["positions"][a:b], data["positions"][full_start : full_start + b - a], atol=1e-5)
    # a tagged part (e.g. of a contact build of the same molecules) sits beside the others without replacing them
    cmd = [sys.executable, "-m", "training.potentials.pack", "--data", str(SLICE), "--part", "1", "--of", "2",
           "--tag", "again-", "--out", str(tmp_path / "packed")]
    subprocess.run(cmd, check=True, cwd=repo_root, timeout=300, capture_output=True)
    assert len(load_dataset(tmp_path / "packed")["energy"]) == len(packed["energy"]) + ((packed["split"] == "train") & (packed["mol_index"] % 2 == 1)).sum()
    (tmp_path / "packed" / "chunk-again-00001.npz").unlink()

    from training.potentials.evaluate import evaluate

    out = tmp_path / "run"
    metrics = train({**RUN, "data": str(tmp_path / "packed")}, out)
    assert metrics["test_force_mae_meV_per_A"] is None  # no test split travelled
    metrics = evaluate(out, SLICE)
    assert metrics["n_test"] == (data["split"] == "test").sum() and 0 < metrics["test_force_mae_meV_per_A"] < 5000
    row = next(csv.DictReader(open(out / "results.csv")))
    assert float(row["test_force_mae_meV_per_A"]) == pytest.approx(metrics["test_force_mae_meV_per_A"])
    assert json.loads((out / "checkpoint" / "chemzoo.json").read_text())["test_errors"]["n_test"] == metrics["n_test"]


def test_continued_training_starts_from_the_checkpoint_weights(tmp_path):
    from safetensors.torch import load_file

    train(RUN, tmp_path / "first")
    start = tmp_path / "first" / "checkpoint"
    train({**RUN, "name": "continued", "init": str(start), "lr": 0.0}, tmp_path / "continued")  # Adam at lr 0: no step moves
    before, after = load_file(start / "model.safetensors"), load_file(tmp_path / "continued" / "checkpoint" / "model.safetensors")
    assert before.keys() == after.keys() and all((before[k] == after[k]).all() for k in before)
    with pytest.raises(click.UsageError, match="is a schnet"):
        train({**RUN, "name": "wrong", "init": str(start), "architecture": "painn"}, tmp_path / "wrong")


def test_continued_training_takes_the_new_datas_closest_contacts_into_its_table(tmp_path):
    """The calculator warns below the closest contact a model was trained on: after continued training that is
    the closer of the checkpoint's table and the new data's, pair by pair."""
    from chemzoo.files import write_metadata

    train(RUN, tmp_path / "first")
    start = tmp_path / "first" / "checkpoint"
    seen = json.loads((start / "config.json").read_text())["min_distances"]
    config = json.loads((start / "config.json").read_text())
    config["min_distances"] = {**{pair: 9.0 for pair in seen}, "Br-Br": 0.1}  # farther than the data, and a pair it lacks
    (start / "config.json").write_text(json.dumps(config))
    write_metadata(start, json.loads((start / "chemzoo.json").read_text()))
    train({**RUN, "name": "continued", "init": str(start), "lr": 0.0}, tmp_path / "continued")
    merged = json.loads((tmp_path / "continued" / "checkpoint" / "config.json").read_text())["min_distances"]
    assert merged == {**seen, "Br-Br": 0.1}


def test_out_of_distribution_set_is_xtb_md_frames_of_drugs_outside_moses():
    from ase import Atoms
    from rdkit import Chem
    from tblite.ase import TBLite

    from training.potentials.ood import DRUGS

    folder = Path(__file__).parent / "data" / "xtb-drugs-ood"
    ood = load_dataset(folder)
    card = json.loads((folder / "dataset.json").read_text())
    assert len(card["molecules"]) == len(DRUGS) >= 15 and set(ood["split"]) == {"test"}
    assert sorted(np.unique(ood["mol_index"])) == list(range(len(DRUGS)))
    assert set(np.unique(ood["temperature"])) == {300.0, 450.0, 600.0}
    starts = np.concatenate([[0], np.cumsum(ood["n_atoms"])])
    for k in (0, len(ood["energy"]) - 1):  # first and last frame: GFN2-xTB energy and forces
        a, b = starts[k], starts[k + 1]
        atoms = Atoms(numbers=ood["numbers"][a:b], positions=ood["positions"][a:b])
        atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
        assert atoms.get_potential_energy() == pytest.approx(ood["energy"][k], abs=1e-5)
        np.testing.assert_allclose(atoms.get_forces(), ood["forces"][a:b], atol=1e-3)
        mol = Chem.AddHs(Chem.MolFromSmiles(card["molecules"][int(ood["mol_index"][k])]["smiles"]))
        assert sorted(a.GetAtomicNum() for a in mol.GetAtoms()) == sorted(atoms.numbers)  # the drug it names
    # MD frames, not noise around a minimum: geometries of one molecule differ by more than 0.1 Å rms
    first = [int(np.flatnonzero(ood["mol_index"] == 0)[i]) for i in (0, 1)]
    x0, x1 = (ood["positions"][starts[k]:starts[k + 1]] for k in first)
    assert np.sqrt(((x0 - x0.mean(0)) - (x1 - x1.mean(0))).__pow__(2).sum(1).mean()) > 0.1


def test_drugs_are_cleaned_to_one_neutral_labelable_molecule():
    """Salts and counter-ions dropped, acids and amines neutralised; what xTB cannot be run on here is refused."""
    from training.drugs import cleaned

    assert cleaned("Br.CC(N)Cc1ccc(O)cc1") == "CC(N)Cc1ccc(O)cc1"  # hydroxyamphetamine hydrobromide
    assert cleaned("O=C([O-])c1ccccc1.[Na+]") == "O=C(O)c1ccccc1"  # sodium benzoate
    assert cleaned("C[N+](C)(C)CCO") is None  # a quaternary ammonium stays charged
    assert cleaned("CC(=O)O[Pt]") is None and cleaned("[Li+].[Cl-]") is None  # other elements; one atom
    assert cleaned("CCN(CC)C(=O)c1ccc[nH]1.C" + "C" * 40) is None  # the largest fragment is 41 carbons: too large
    assert cleaned("not a smiles") is None


def test_the_out_of_distribution_drugs_and_their_analogues_are_never_trained_on():
    from rdkit import Chem

    from training.drugs import cleaned, without_held_out

    aspirin_other_form = cleaned("CC(=O)Oc1ccccc1C(=O)[O-].[Na+]")  # the OOD set's aspirin, as a salt
    methimazole_thiol = Chem.MolToSmiles(Chem.MolFromSmiles("Cn1ccnc1S"))  # the OOD thione, other tautomer
    ibuprofen_isomer = "CC(C)Cc1ccc([C@@H](C)C(=O)O)cc1"  # dexibuprofen: the same connectivity
    analogue = "CCC(C)Cc1ccc(C(C)C(=O)O)cc1"  # ibuprofen with one more carbon
    unrelated = "O=C(O)CCCc1ccccc1"  # phenylbutyric acid
    kept, same, analogues = without_held_out([aspirin_other_form, methimazole_thiol, ibuprofen_isomer, analogue, unrelated])
    assert kept == [unrelated]
    assert same == {aspirin_other_form, methimazole_thiol, ibuprofen_isomer} and analogues == {analogue}


def test_langevin_sampling_holds_each_molecule_near_its_own_temperature():
    """Each molecule in the box has its own thermostat temperature: of two waters side by side at 100 and 1200 K,
    the hot one's O-H bond length fluctuates more across its frames (thermal amplitude ~ sqrt(T): ~3.5x)."""
    from ase import Atoms

    import chemzoo
    from training.potentials.sampling import md_frames

    water = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    calc = chemzoo.calculator("schnet-xtb-moses-53k-md7")
    cold, hot = md_frames([water, water.copy()], [100.0, 1200.0], 12, calc, seed=0, thermostat=True)
    spread = [np.std([np.linalg.norm(x[1] - x[0]) for x in frames]) for frames in (cold, hot)]  # O-H bond length
    assert len(cold) == len(hot) == 12 and spread[1] > 1.5 * spread[0]


def test_a_drugs_build_numbers_its_molecules_apart_from_moses_and_says_so_in_its_card(tmp_path, monkeypatch):
    """--corpus drugs: molecules from training.drugs in a seeded order, mol_index offset past every MOSES index (so
    a drugs build trains beside MOSES builds without two molecules sharing an index), the corpus in build.json and
    the card; more molecules than the corpus holds is a usage error."""
    from click.testing import CliRunner

    from training import drugs
    from training.potentials.dataset import DRUG_INDEX, main

    monkeypatch.setattr(drugs, "training_drugs", lambda cache=None: (["CCO", "CC(=O)O", "CS"], {}))
    out = tmp_path / "d"
    result = CliRunner().invoke(main, ["--corpus", "drugs", "--molecules", "3", "--per-molecule", "1", "--workers", "1",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    got = load_dataset(out)
    assert sorted(np.unique(got["mol_index"])) == [DRUG_INDEX, DRUG_INDEX + 1, DRUG_INDEX + 2] and DRUG_INDEX > 1_584_663
    assert sorted(got["n_atoms"].tolist()) == [6, 8, 9]  # methanethiol, acetic acid, ethanol
    assert json.loads((out / "build.json").read_text())["corpus"] == "drugs"
    assert (out / "README.md").read_text().startswith("# GFN2-xTB energies and forces of approved drugs outside MOSES")
    result = CliRunner().invoke(main, ["--corpus", "drugs", "--molecules", "4", "--out", str(tmp_path / "e")])
    assert result.exit_code == 2 and "--molecules 4: the drugs corpus has 3; ask for at most that" in result.output
    assert not (tmp_path / "e").exists()


def test_moses_find_names_the_splits_that_hold_a_molecule_however_it_is_written(moses_cache):
    from rdkit import Chem

    from training import moses

    in_test = Chem.MolToSmiles(Chem.MolFromSmiles(moses.read_smiles("test")[24]))
    found = moses.find([in_test, "CC(=O)Oc1ccccc1C(=O)O"])  # aspirin is not in MOSES
    assert list(found) == [in_test] and "test" in found[in_test]


def test_the_drug_selection_is_computed_once_and_then_read_from_the_data_cache(tmp_path, monkeypatch):
    from training import drugs

    calls = []
    monkeypatch.setattr(drugs, "select_training_drugs", lambda cache=None: calls.append(cache) or (["CCO"], {"kept": 1}))
    assert drugs.training_drugs(tmp_path) == (["CCO"], {"kept": 1}) == drugs.training_drugs(tmp_path)
    assert calls == [tmp_path] and len(list(tmp_path.glob("chembl-drugs-training-*.json"))) == 1


def test_labelling_workers_share_the_cores_out():
    """Two 2-thread xTB workers on 2 cores spin against each other (20x slower): each worker gets its share."""
    assert worker_threads(2, 2, "2") == 1
    assert worker_threads(2, 2, None) == 1
    assert worker_threads(1, 16, None) == 16
    assert worker_threads(4, 16, "2") == 2  # never more than OMP_NUM_THREADS asks for
    assert worker_threads(4, 2, "8") == 1  # more workers than cores: one each
    assert worker_threads(2, 8, "junk") == 4


def test_a_time_budget_plans_its_steps_so_the_cosine_ends_annealed_even_when_the_machine_slows(tmp_path):
    """Cut by the clock, a cosine over --max-steps would stop half-way at a high learning rate; the plan made
    after 50 steps ends the run at the planned step with the rate at 1 %, and when the pace halves later (a
    loaded machine) the plan is shortened rather than cut; the plan is kept for a resume."""
    import time

    import lightning as L

    class SlowsDown(L.Callback):  # after the plan, every step takes twice the pace it was planned at
        def on_train_start(self, trainer, *args):
            self.start = time.time()

        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == 50:
                self.pace = (time.time() - self.start) / 50
            elif trainer.global_step > 50:
                time.sleep(self.pace)

    budgeted = {**RUN, "epochs": 10_000, "max_steps": 1_000_000, "max_minutes": 0.5, "schedule": "cosine"}
    metrics = train(budgeted, tmp_path, callbacks=(SlowsDown(),))
    state = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)
    fitted = next(v for k, v in state["callbacks"].items() if "FitStepsToBudget" in k)
    plan, replans = fitted["planned_steps"], fitted["replans"]
    assert replans and replans[-1][1] == plan and all(b < a for (_, a), (_, b) in zip([(0, 10**9)] + replans, replans))
    assert 50 < plan < 1_000_000 and metrics["steps"] == plan  # the clock did not cut it (ckpt: the last 50-step save)
    lr = [float(r["lr"]) for r in csv.DictReader(open(tmp_path / "curve.csv")) if r.get("lr")]
    assert len(lr) == plan and lr[0] == pytest.approx(RUN["lr"]) and lr[-1] == pytest.approx(0.01 * RUN["lr"], rel=0.05)  # one step short of the end


def test_a_card_names_the_drugs_when_a_drugs_build_is_in_the_mix(tmp_path):
    from training.cards import render_card
    from training.potentials.train import corpora

    for name, config in (("moses", {"recipe": "thermal"}), ("named-freely", {"recipe": "contact", "corpus": "drugs"})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "build.json").write_text(json.dumps(config))
    both = corpora([tmp_path / "moses", tmp_path / "named-freely"])  # the build's record, not its folder's name
    assert both == "MOSES molecules and approved drugs outside MOSES"
    assert corpora([tmp_path / "moses", tmp_path / "packed-without-a-build-json"]) == "MOSES molecules"
    meta = json.loads((Path(chemzoo.__file__).parent / "checkpoints" / "schnet-xtb-moses-53k-md7" / "chemzoo.json").read_text())
    assert "held-out MOSES molecules and approved drugs" in render_card("potential", {**meta, "molecules": both})


def test_halogen_recipe_pushes_atoms_onto_a_bromine_and_xtb_charges_for_it():
    """2-Bromophenyl methyl sulfone (PaiNN's hot failures: the Br bridging onto its ring neighbour, a sulfonyl O
    closing on the ortho Br): the geminal pairs are the Br and the two ring carbons beside its carbon; the facing
    pairs reach the sulfone's S and an O; each geometry moves one pair to its fraction; xTB charges for it."""
    from training.potentials.dataset import (CONTACT_FLOOR, HALOGEN_PAIRS, MAX_FORCE, SQUEEZE_FLOOR, conformers,
                                             halogen_pairs, label_molecule, move_halogen)

    smiles = "Brc1ccccc1S(=O)(=O)C"
    numbers, (conformer,), topology = conformers(smiles, 1, 3)
    br, carbon = 0, 1
    i, j = halogen_pairs(conformer, numbers, topology, "geminal")
    assert set(i) == {br} and sorted(j) == sorted(np.flatnonzero((topology[carbon] == 1) & (numbers == 6)))
    i, j = halogen_pairs(conformer, numbers, topology, "facing")
    assert set(i) == {br} and 16 in numbers[j] and 8 in numbers[j] and (topology[br, j] >= 3).all()
    i, j = halogen_pairs(conformer, numbers, topology, "near")
    assert set(topology[br, j]) == {2, 3} and 1 in numbers[j]  # the ring H two carbons away is near too
    for k, (which, low, high, _) in enumerate(HALOGEN_PAIRS[:3]):
        moved = move_halogen(conformer, numbers, topology, which, low, high, np.random.default_rng(k))
        d0 = np.linalg.norm(conformer[:, None] - conformer[None], axis=-1)
        d = np.linalg.norm(moved[:, None] - moved[None], axis=-1)
        partner = int(np.argmax(np.abs(d[br] - d0[br])))  # the atom the Br moved against
        floor = SQUEEZE_FLOOR if which == "facing" else CONTACT_FLOOR
        assert max(floor, low * d0[br, partner]) - 1e-9 <= d[br, partner] <= high * d0[br, partner]
    rows = label_molecule(smiles, 3, 4, 0, "halogen")
    thermal = label_molecule(smiles, 3, 3, 0, "thermal")
    assert [r[4] for r in rows] == [t for _, _, _, t in HALOGEN_PAIRS][: len(rows)] and len(rows) >= 3
    assert rows[0][2] > thermal[0][2] + 0.1 and all(np.abs(r[3]).max() <= MAX_FORCE for r in rows)
    assert label_molecule("CCO", 0, 4, 0, "halogen") == []  # no Cl or Br: nothing to push onto


def test_a_build_with_an_element_keeps_each_molecules_place_and_so_its_split(tmp_path, monkeypatch):
    """--with-element Br: only the molecules with a Br, counted by --molecules, each with mol_index its place in the
    seeded order of the whole corpus (the index, and so the split, every other build gives it); recorded in
    build.json and the card; asking for more such molecules than the corpus has is a usage error."""
    from click.testing import CliRunner

    from training import moses
    from training.potentials.dataset import containing, main, split_of

    pool = ["CCO", "CCBr", "CC(Cl)O", "CCN", "BrCC(=O)O", "CS"]
    order = np.random.default_rng(0).permutation(len(pool))
    assert containing(pool, order, ["Br"], 9) == [p for p, i in enumerate(order) if "Br" in pool[i]]
    assert containing(pool, order, ["Br", "Cl"], 1) == [min(p for p, i in enumerate(order) if pool[i] in pool[1:3] + pool[4:5])]
    monkeypatch.setattr(moses, "read_smiles", lambda split: pool)
    out = tmp_path / "br"
    result = CliRunner().invoke(main, ["--with-element", "Br", "--molecules", "2", "--per-molecule", "1", "--workers", "1",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    got = load_dataset(out)
    places = sorted(p for p, i in enumerate(order) if "Br" in pool[i])
    assert sorted(np.unique(got["mol_index"])) == places
    assert got["split"].tolist() == [split_of(m, 0) for m in got["mol_index"]]
    assert all(35 in got["numbers"][s:e] for s, e in zip(np.cumsum(got["n_atoms"]) - got["n_atoms"], np.cumsum(got["n_atoms"])))
    assert json.loads((out / "build.json").read_text())["elements"] == ["Br"]
    card = (out / "README.md").read_text()
    assert card.startswith("# GFN2-xTB energies and forces of MOSES molecules with Br")
    assert "--recipe thermal --with-element Br --out br`" in card  # the build command, as it is typed
    result = CliRunner().invoke(main, ["--with-element", "Br", "--molecules", "3", "--out", str(tmp_path / "e")])
    assert result.exit_code == 2 and "--molecules 3: the moses corpus has 2 molecules with Br; ask for at most that" in result.output
    assert not (tmp_path / "e").exists()
