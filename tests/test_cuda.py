"""The same models on a CUDA device: skipped where there is none (CI); run on a GPU machine with
``pytest -m 'not slow' tests/test_cuda.py``."""

from pathlib import Path

import numpy as np
import pytest
import torch
from ase.io import read

import chemzoo
from chemzoo.lm.fixed_step import FixedStep
from chemzoo.lm.sampler import NeoDecoder, sample_tokens
from training.potentials.data import Structures, collate_structures
from chemzoo.potentials.datasets import load_dataset
from training.potentials.module import PotentialModule

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("name", [None, "painn-xtb-moses-53k"])  # the default (SchNet), PaiNN: hand-written backwards
def test_bundled_potential_gives_the_same_energy_and_forces_on_cuda(name):
    atoms = read(DATA / "aspirin.xyz")
    cpu = atoms.copy()
    cpu.calc = chemzoo.calculator(name, dtype="float64")
    atoms.calc = chemzoo.calculator(name, device="cuda", dtype="float64")
    assert atoms.get_potential_energy() == pytest.approx(cpu.get_potential_energy(), abs=1e-8)  # eV
    np.testing.assert_allclose(atoms.get_forces(), cpu.get_forces(), atol=1e-8)  # eV/Å


def test_decoder_on_cuda_matches_the_cpu_logits_and_samples_valid_molecules():
    gpt = chemzoo.load()
    x = torch.tensor([[2, 10, 11, 12, 13]])
    with torch.no_grad():
        reference = gpt.model(x).logits[0, -1]
        cuda_model = chemzoo.load(device="cuda").model
        decoder = NeoDecoder(cuda_model)
        cache = decoder.new_cache(1, 8)
        for i in range(5):
            logits = decoder.step(x[:, i].cuda(), i, cache)
    torch.testing.assert_close(logits[0].cpu(), reference, atol=1e-4, rtol=1e-4)
    a = sample_tokens(cuda_model, n=64, seed=3, batch_size=32)
    assert a == sample_tokens(cuda_model, n=64, seed=3, batch_size=32)
    assert a != sample_tokens(cuda_model, n=64, seed=3, batch_size=32, fixed_shapes=False)  # another random stream
    result = chemzoo.sample(chemzoo.load(device="cuda"), n=64, seed=3)
    assert sum(s is not None for s in result.smiles) >= 60


def test_a_cuda_graph_step_replays_the_eager_logits_and_its_cache_grows():
    gpt = chemzoo.load()
    x = torch.randint(5, gpt.model.config.vocab_size, (3, 12))
    x[:, 0] = 2
    with torch.no_grad():
        reference = gpt.model(x).logits
        decoder = NeoDecoder(chemzoo.load(device="cuda").model)
        small, big = FixedStep(decoder, 3, 8), FixedStep(decoder, 3, 16)
        assert small.graph is not None
        ours = [small(x[:, i].cuda(), i).cpu() for i in range(8)]
        big.take_cache(small)
        ours += [big(x[:, i].cuda(), i).cpu() for i in range(8, 12)]
    torch.testing.assert_close(torch.stack(ours, 1), reference, atol=1e-4, rtol=1e-4)


def test_a_potential_training_step_runs_on_cuda():
    data = Structures(load_dataset(DATA / "xtb-moses-200"), "val", 5.0)
    config = dict(architecture="painn", elements=[1, 6, 7, 8, 9, 16, 17, 35], cutoff=5.0,
                  hyperparameters=dict(features=16, interactions=2), energy_scale=1.0)
    module = PotentialModule(config).cuda()
    graph, energy, forces = collate_structures(data.items[:8])
    loss = module.training_step((graph.to("cuda"), energy.cuda(), forces.cuda()), 0)
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in module.model.net.parameters())
