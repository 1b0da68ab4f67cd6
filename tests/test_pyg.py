"""PyTorch Geometric in: a PyG user's Data/Batch works with a chemzoo potential, and a PyG dataset and loader
train one with chemzoo's training module."""

from pathlib import Path

import numpy as np
import pytest
import torch

import chemzoo
from chemzoo.errors import ChemzooError
from chemzoo.potentials.datasets import load_dataset, structures

pyg = pytest.importorskip("torch_geometric")
from torch_geometric.data import Batch, Data  # noqa: E402
from torch_geometric.loader import DataLoader  # noqa: E402

DATA = Path(__file__).parent / "data" / "xtb-moses-200"


def as_pyg(atoms) -> Data:
    """What a PyG user holds: z, pos (Å) and MD17-named labels (energy eV, force eV/Å)."""
    return Data(z=torch.as_tensor(atoms.numbers), pos=torch.as_tensor(atoms.positions, dtype=torch.float32),
                energy=torch.tensor([atoms.get_potential_energy()], dtype=torch.float32),
                force=torch.as_tensor(atoms.get_forces(), dtype=torch.float32))


def test_a_pyg_batch_gives_the_calculators_energies_and_forces():
    frames = structures(load_dataset(DATA), range(5))
    calc = chemzoo.calculator()
    reference = calc.evaluate(frames)
    potential = calc.potential
    batch = Batch.from_data_list([as_pyg(a) for a in frames])
    batch.edge_index = torch.zeros(2, 0, dtype=torch.long)  # a PyG graph built for another cutoff: ignored
    out = potential(batch)
    torch.testing.assert_close(out["energy"].double(), torch.tensor([r["energy"] for r in reference], dtype=torch.float64), atol=2e-3, rtol=0)
    torch.testing.assert_close(out["forces"].double(), torch.as_tensor(np.concatenate([r["forces"] for r in reference])),
                               atol=2e-4, rtol=0)
    one = potential(as_pyg(frames[0]))  # a single Data
    assert one["energy"].shape == (1,) and one["energy"].item() == pytest.approx(reference[0]["energy"], abs=2e-3)

    box = as_pyg(frames[0])  # periodic: cell and pbc per structure
    box.cell, box.pbc = torch.eye(3)[None] * 12.0, torch.tensor([[True, True, True]])
    atoms = frames[0].copy()
    atoms.cell, atoms.pbc = np.eye(3) * 12.0, True
    atoms.calc = calc
    assert potential(box)["energy"].item() == pytest.approx(atoms.get_potential_energy(), abs=2e-3)
    with pytest.raises(ChemzooError, match="needs `z` \\(atomic numbers\\) and `pos`"):
        potential(Data(x=torch.zeros(3, 1)))


def test_a_pyg_dataset_and_loader_train_a_chemzoo_potential():
    import lightning as L

    from chemzoo.potentials.model import PotentialConfig
    from training.potentials.module import PotentialModule, prediction_errors

    frames = structures(load_dataset(DATA), range(64))
    loader = DataLoader([as_pyg(a) for a in frames], batch_size=16, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    elements = [1, 6, 7, 8, 9, 16, 17, 35]
    counts = np.array([[np.sum(a.numbers == z) for z in elements] for a in frames], dtype=float)
    reference = np.linalg.lstsq(counts, [a.get_potential_energy() for a in frames], rcond=None)[0].tolist()
    torch.manual_seed(0)
    config = PotentialConfig("schnet", elements, 4.0, dict(features=16, interactions=2), reference_energies=reference)
    module = PotentialModule(config.__dict__, lr=3e-3, schedule="cosine")
    def force_mae(batches):  # what a PyG batch gives through chemzoo's training errors, before and after
        return float(torch.cat([prediction_errors(module.model, b)[1].detach().abs().ravel() for b in batches]).mean())

    batches = list(loader)[:2]
    first = force_mae(batches)
    trainer = L.Trainer(max_steps=120, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, inference_mode=False, accelerator="cpu")
    trainer.fit(module, loader)
    last = force_mae(batches)
    assert np.isfinite(last) and last < 0.6 * first, (first, last)  # eV/Å; the zero predictor ~0.9
