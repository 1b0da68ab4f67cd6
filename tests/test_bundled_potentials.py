"""Every bundled potential: loads, runs, gives its pinned outputs, and is close to GFN2-xTB on held-out molecules.

The pinned energies and forces (tests/data/pinned_potentials.json) were computed once, in float32,
with the checkpoints as committed; any change to a checkpoint's weights, to an architecture's code
or to the graph building shows up here. Re-pin only on purpose, after a checkpoint is replaced:

    python -m tests.test_bundled_potentials   # rewrites the file; commit it with the new checkpoint
"""

import json
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.io import read

import chemzoo
from chemzoo.loading import list_models
from chemzoo.registry import PACKAGE_DIR
from chemzoo.potentials.datasets import load_dataset

DATA = Path(__file__).parent / "data"
PINNED = DATA / "pinned_potentials.json"
BUNDLED = [e.name for e in list_models("potential") if e.bundled]
# upper bounds of the force MAE (meV/Å) on the first 40 test structures of the slice: each model's
# measured test-split MAE (its card) with room for the smaller sample; a zero predictor scores ~910
FORCE_MAE_BOUND = {"painn-xtb-moses-53k": 75.0, "schnet-xtb-moses-53k-contact": 160.0, "nequip-xtb-moses-53k": 250.0,
                   "schnet-xtb-moses-53k-md7": 120.0,
                   # the potential size ladder (training/results/potential.csv): ~1.25x its ladder test-subset MAE
                   "schnet-4.5k-xtb-moses-30k": 300.0, "schnet-15.4k-xtb-moses-30k": 245.0,
                   "schnet-56.4k-xtb-moses-30k": 210.0, "schnet-215k-xtb-moses-30k": 170.0,
                   "painn-12.1k-xtb-moses-30k": 175.0, "painn-41.4k-xtb-moses-30k": 125.0,
                   "painn-151k-xtb-moses-30k": 95.0, "painn-577k-xtb-moses-30k": 75.0}


def structures() -> dict[str, Atoms]:
    """Aspirin (MMFF geometry) and three held-out structures of the committed xTB slice."""
    data = load_dataset(DATA / "xtb-moses-200")
    starts = np.concatenate([[0], np.cumsum(data["n_atoms"])])
    out = {"aspirin": read(DATA / "aspirin.xyz")}
    for k in np.flatnonzero(data["split"] == "test")[[0, 17, 101]]:
        out[f"slice-{k}"] = Atoms(numbers=data["numbers"][starts[k]:starts[k + 1]],
                                  positions=data["positions"][starts[k]:starts[k + 1]])
    return out


def outputs(name: str) -> dict[str, dict]:
    calc = chemzoo.calculator(name)  # float32, as `chemzoo md` runs by default
    out = {}
    for label, atoms in structures().items():
        atoms.calc = calc
        out[label] = {"energy": float(atoms.get_potential_energy()), "forces": atoms.get_forces().tolist()}
    return out


def test_every_bundled_potential_is_pinned():
    assert sorted(json.loads(PINNED.read_text())) == sorted(BUNDLED)
    assert "schnet-xtb-moses-53k-contact" in BUNDLED and chemzoo.default_model("potential").bundled


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_potential_gives_its_pinned_energies_and_forces(name):
    pinned = json.loads(PINNED.read_text())[name]
    for label, got in outputs(name).items():
        want = pinned[label]
        assert got["energy"] == pytest.approx(want["energy"], abs=2e-3), label  # eV; float32 sums of ~1e3 eV
        np.testing.assert_allclose(got["forces"], want["forces"], atol=2e-4, err_msg=label)  # eV/Å


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_potential_is_close_to_xtb_on_held_out_molecules(name):
    data = load_dataset(DATA / "xtb-moses-200")
    starts = np.concatenate([[0], np.cumsum(data["n_atoms"])])
    calc = chemzoo.calculator(name)
    f_err, e_err, zero = [], [], []
    for k in np.flatnonzero(data["split"] == "test")[:40]:
        a, b = starts[k], starts[k + 1]
        atoms = Atoms(numbers=data["numbers"][a:b], positions=data["positions"][a:b], calculator=calc)
        f_err.append(np.abs(atoms.get_forces() - data["forces"][a:b]).mean())
        zero.append(np.abs(data["forces"][a:b]).mean())
        e_err.append(abs(atoms.get_potential_energy() - data["energy"][k]) / len(atoms))
    force_mae = 1000 * np.mean(f_err)
    assert force_mae < FORCE_MAE_BOUND[name] and force_mae < 0.3 * 1000 * np.mean(zero)
    assert 1000 * np.mean(e_err) < 100  # meV/atom; total energies are ~ -1,500 eV


if __name__ == "__main__":
    PINNED.write_text(json.dumps({name: outputs(name) for name in BUNDLED}, indent=1) + "\n")
    print(f"pinned {', '.join(BUNDLED)} -> {PINNED}")


@pytest.mark.parametrize("name", [e.name for e in list_models() if e.bundled])
def test_every_bundled_card_re_renders_from_its_records(name):
    from training.cards import render_card

    folder = PACKAGE_DIR / "checkpoints" / name
    meta = json.loads((folder / "chemzoo.json").read_text())
    assert render_card(meta["family"], meta) == (folder / "README.md").read_text()


@pytest.mark.parametrize("name", [e.name for e in list_models() if e.bundled])
def test_every_bundled_card_parses_with_huggingface_hub_and_reports_its_measured_metrics(name):
    """ModelCard.load reads the front matter the library wrote; its model-index holds the records' numbers."""
    from huggingface_hub import ModelCard

    folder = PACKAGE_DIR / "checkpoints" / name
    meta = json.loads((folder / "chemzoo.json").read_text())
    card = ModelCard.load(folder / "README.md")
    assert card.data.license == "mit" and "chemzoo" in card.data.tags and card.data.model_name == name
    values = {(r.dataset_type, r.metric_name): r.metric_value for r in card.data.eval_results}
    if meta["family"] == "chemgpt":
        assert card.data.library_name == "transformers" and card.data.pipeline_tag == "text-generation"
        assert values[("moses", "Validation loss (nats/token)")] == pytest.approx(meta["metrics"]["val_loss"], abs=1e-4)
        if meta.get("evaluation"):
            assert values[("moses", "FCD/Test")] == pytest.approx(meta["evaluation"]["metrics"]["fcd"], abs=1e-4)
    else:
        assert card.data.library_name == "chemzoo" and meta["architecture"] in card.data.tags
        errors = meta["test_errors"]
        assert values[("xtb-moses", "Force MAE (meV/Å)")] == pytest.approx(errors["test_force_mae_meV_per_A"], abs=0.01)
        assert values[("xtb-moses", "Energy MAE (meV/atom)")] == pytest.approx(errors["test_energy_mae_meV_per_atom"], abs=0.01)
    for section in ("## Intended use", "## Limitations", "## Citation", "Neural scaling of deep chemical models"):
        assert section in card.text
