"""Potentials: conservative forces, symmetry, periodic cells, checkpoints and the ASE calculator."""

from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.io import read
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from scipy.spatial.transform import Rotation

import chemzoo
from chemzoo.errors import ChemzooError
from chemzoo.loading import source
from chemzoo.potentials.calculator import ChemzooCalculator, InvalidStructureError
from chemzoo.potentials.model import Potential, PotentialConfig

ELEMENTS = [1, 6, 7, 8, 9, 16, 17, 35]
SMALL = {"schnet": dict(features=16, interactions=2), "painn": dict(features=16, interactions=2),
         "nequip": dict(features=4, interactions=2, lmax=2)}


def make_potential(architecture, dtypes=("float32", "float64"), seed=0):
    torch.manual_seed(seed)
    config = PotentialConfig(architecture, ELEMENTS, 4.0, SMALL[architecture],
                             reference_energies=[-10.0, -48.0, -71.0, -103.0, -130.0, -95.0, -120.0, -110.0],
                             energy_scale=1.3, dtypes=list(dtypes))
    return Potential(config)


def calc(architecture, dtype="float64", **kwargs):
    return ChemzooCalculator(make_potential(architecture), dtype=dtype, **kwargs)


@pytest.fixture
def aspirin():
    """Aspirin, 21 atoms (Å)."""
    return read(Path(__file__).parent / "data" / "aspirin.xyz")


@pytest.mark.parametrize("architecture", ["schnet", "painn", "nequip"])
def test_forces_match_finite_differences(architecture, aspirin):
    aspirin.calc = calc(architecture)
    forces = aspirin.get_forces()
    numeric = calculate_numerical_forces(aspirin, eps=1e-4)
    np.testing.assert_allclose(forces, numeric, atol=1e-6 * max(1.0, np.abs(forces).max()))
    assert np.abs(forces).max() > 1e-2  # not trivially zero


@pytest.mark.parametrize("architecture", ["schnet", "painn", "nequip"])
def test_energy_invariant_and_forces_equivariant_under_rotation_and_translation(architecture, aspirin):
    c = calc(architecture)
    aspirin.calc = c
    e, f = aspirin.get_potential_energy(), aspirin.get_forces()
    moved = aspirin.copy()
    rotation = Rotation.random(random_state=3).as_matrix()
    moved.positions = aspirin.positions @ rotation.T + np.array([3.0, -7.5, 12.0])
    moved.calc = c
    assert moved.get_potential_energy() == pytest.approx(e, abs=1e-9)
    np.testing.assert_allclose(moved.get_forces(), f @ rotation.T, atol=1e-9)


@pytest.mark.parametrize("architecture", ["schnet", "painn", "nequip"])
def test_invariant_under_atom_permutation(architecture, aspirin):
    c = calc(architecture)
    aspirin.calc = c
    e, f = aspirin.get_potential_energy(), aspirin.get_forces()
    order = np.random.default_rng(0).permutation(len(aspirin))
    shuffled = aspirin[order]
    shuffled.calc = c
    assert shuffled.get_potential_energy() == pytest.approx(e, abs=1e-9)
    np.testing.assert_allclose(shuffled.get_forces(), f[order], atol=1e-9)


@pytest.mark.parametrize("architecture", ["schnet", "painn", "nequip"])
def test_periodic_cell_and_its_supercell_give_the_same_energy_per_atom(architecture):
    box = Atoms("CO2H2", positions=[[0, 0, 0], [1.2, 0, 0], [-1.2, 0.1, 0], [0.3, 1.0, 0.4], [0.2, -0.9, 0.6]],
                cell=[[4.1, 0.2, 0.0], [0.0, 3.9, 0.3], [0.1, 0.0, 4.3]], pbc=True)
    box.wrap()
    c = calc(architecture)
    box.calc = c
    e = box.get_potential_energy()
    big = box.repeat((2, 2, 2))
    big.calc = c
    assert big.get_potential_energy() / len(big) == pytest.approx(e / len(box), abs=1e-9)
    np.testing.assert_allclose(big.get_forces()[: len(box)], box.get_forces(), atol=1e-9)
    stress = box.get_stress()
    np.testing.assert_allclose(stress, calculate_numerical_stress(box, eps=1e-5), atol=1e-6)
    np.testing.assert_allclose(big.get_stress(), stress, atol=1e-9)


def test_stress_is_not_offered_for_a_molecule(aspirin):
    from ase.calculators.calculator import PropertyNotImplementedError

    aspirin.calc = calc("schnet")
    with pytest.raises(PropertyNotImplementedError, match="periodic"):
        aspirin.get_stress()


def test_checkpoint_round_trip_is_config_and_safetensors(tmp_path, aspirin):
    potential = make_potential("painn")
    folder = potential.save_pretrained(tmp_path / "painn")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    a = aspirin.copy()
    a.calc = ChemzooCalculator(potential, dtype="float64")
    b = aspirin.copy()
    b.calc = chemzoo.calculator(folder, dtype="float64")
    assert b.get_potential_energy() == pytest.approx(a.get_potential_energy(), abs=1e-10)
    assert isinstance(chemzoo.load(folder), Potential)


def test_float32_and_float64_agree(aspirin):
    a, b = aspirin.copy(), aspirin.copy()
    potential = make_potential("nequip")
    a.calc = ChemzooCalculator(potential, dtype="float64")
    e64 = a.get_potential_energy()
    b.calc = ChemzooCalculator(potential, dtype="float32")
    assert b.get_potential_energy() == pytest.approx(e64, rel=1e-6)


def test_unsupported_element_names_it_and_the_supported_ones():
    atoms = Atoms("SiH4", positions=[[0, 0, 0], [0.9, 0.9, 0.9], [-0.9, -0.9, 0.9], [-0.9, 0.9, -0.9], [0.9, -0.9, -0.9]])
    atoms.calc = calc("schnet")
    with pytest.raises(InvalidStructureError, match=r"element\(s\) Si not supported.*trained on H C N O F S Cl Br"):
        atoms.get_potential_energy()


def test_overlapping_atoms_and_nan_positions_are_refused(aspirin):
    clash = aspirin.copy()
    c1, c2 = np.flatnonzero(aspirin.numbers == 6)[:2]
    clash.positions[c2] = clash.positions[c1] + [0.1, 0.0, 0.0]
    clash.calc = calc("schnet")
    with pytest.raises(InvalidStructureError, match=r"atoms \d+ \(C\) and \d+ \(C\) are 0.10 Å apart"):
        clash.get_potential_energy()
    broken = aspirin.copy()
    broken.positions[0, 1] = np.nan
    broken.calc = calc("schnet")
    with pytest.raises(InvalidStructureError, match="NaN"):
        broken.get_potential_energy()


def test_float64_request_on_a_float32_only_model_is_refused(tmp_path):
    folder = make_potential("schnet", dtypes=["float32"]).save_pretrained(tmp_path / "f32")
    with pytest.raises(ChemzooError, match="cannot run in float64; it supports float32"):
        chemzoo.calculator(folder, dtype="float64")
    with pytest.raises(ChemzooError, match="unknown dtype"):
        ChemzooCalculator(make_potential("schnet"), dtype="float16")


def test_default_potential_is_registered_and_bundled():
    from chemzoo.registry import default_model

    entry = default_model("potential")  # its accuracy: tests/test_bundled_potentials.py
    assert source(entry) == "bundled" and entry.extra["elements"] == ELEMENTS and entry.extra["cutoff"] == 5.0
    assert chemzoo.calculator().model_name == entry.name


@pytest.mark.parametrize("architecture", ["schnet", "painn", "nequip"])
def test_edges_in_blocks_give_the_same_energy_and_forces(architecture, aspirin, monkeypatch):
    from chemzoo.potentials import layers

    aspirin.calc = calc(architecture)
    energy, forces = aspirin.get_potential_energy(), aspirin.get_forces()
    monkeypatch.setattr(layers, "EDGE_BLOCK_BYTES", 1)  # 64-edge blocks: aspirin's 238 edges (4 Å) in four
    assert len(layers.edge_blocks(238, 64)) == 4
    assert len(layers.edge_blocks(238, 64, "cuda")) == 1  # on a GPU blocks only bound memory (1 GiB)
    blocked = aspirin.copy()
    blocked.calc = calc(architecture)
    assert blocked.get_potential_energy() == pytest.approx(energy, abs=1e-10)
    np.testing.assert_allclose(blocked.get_forces(), forces, atol=1e-10)


def test_folding_the_softplus_shift_into_the_bias_leaves_each_schnet_mlp_unchanged():
    from chemzoo.potentials.layers import ssp_mlp
    from chemzoo.potentials.schnet import SchNet

    torch.manual_seed(0)
    net = SchNet(features=16, interactions=1, num_basis=8).double()
    interaction = net.interactions[0]
    for mlp, width in ((interaction.filter, 8), (interaction.f2out, 16), (net.readout, 16)):
        x = torch.randn(50, width, dtype=torch.float64)
        torch.testing.assert_close(ssp_mlp(x, mlp), mlp(x), atol=1e-12, rtol=0)


def test_schnet_filters_once_per_pair_give_the_per_edge_energy_forces_and_stress(aspirin, monkeypatch):
    small_cell = Atoms("COH", positions=[[0.1, 0.2, 0.3], [1.3, 0.4, 0.2], [0.5, 1.4, 1.1]], cell=[3.1, 3.3, 2.9],
                       pbc=True)  # every atom sees its own periodic images within the 4 Å cutoff
    import chemzoo.potentials.model as model_module

    results = []
    for per_pair in (True, False):
        if not per_pair:  # Potential no longer knows it is a SchNet: the full list, SchNet called with its defaults
            monkeypatch.setattr(model_module, "SchNet", type("NotSchNet", (), {}))
        row = []
        for atoms in (aspirin, small_cell):
            atoms = atoms.copy()
            atoms.calc = calc("schnet")
            row.append((atoms.get_potential_energy(), atoms.get_forces(),
                        atoms.get_stress() if atoms.pbc.any() else np.zeros(6)))
        results.append(row)
    for (e1, f1, s1), (e2, f2, s2) in zip(*results):
        assert e1 == pytest.approx(e2, abs=1e-10)
        np.testing.assert_allclose(f1, f2, atol=1e-10)
        np.testing.assert_allclose(s1, s2, atol=1e-10)
    assert np.abs(results[0][1][1]).max() > 1e-3  # the small cell has real forces to compare


def _schnet_results(potential, atoms):
    from chemzoo.potentials.graph import build_graph

    graph = build_graph(atoms.numbers, atoms.positions, potential.config.cutoff, atoms.cell.array, atoms.pbc,
                        dtype=torch.float64)
    out = potential(graph, forces=True, stress=bool(atoms.pbc.any()))
    return {k: v.detach() for k, v in out.items()}


@pytest.mark.parametrize("blocks", ["one", "several"])
def test_schnet_hand_written_backward_equals_autograd(aspirin, blocks, monkeypatch):
    """Frozen parameters switch SchNet to schnet_fused (the calculator's path); same numbers as autograd
    for a molecule and for a small periodic cell (energy, forces, stress), in float64, with the pairs in
    one block or in blocks of 64."""
    from chemzoo.potentials import layers
    from chemzoo.potentials.schnet_fused import Plan

    if blocks == "several":
        monkeypatch.setattr(layers, "EDGE_BLOCK_BYTES", 1)  # the 64-pair minimum: aspirin's 164 pairs in 3

    from chemzoo.potentials.schnet_fused import FusedSchNet

    calls = []
    apply = FusedSchNet.apply
    monkeypatch.setattr(FusedSchNet, "apply", lambda *args: calls.append(1) or apply(*args))
    potential = make_potential("schnet").double().eval()
    small_cell = Atoms("COH", positions=[[0.1, 0.2, 0.3], [1.3, 0.4, 0.2], [0.5, 1.4, 1.1]], cell=[3.1, 3.3, 2.9],
                       pbc=True)
    water = read(Path(__file__).parent / "data" / "aspirin.xyz")
    water.set_cell([9.0, 9.5, 10.0])
    water.pbc = True
    for atoms in (aspirin, small_cell, water):
        assert Plan.of(potential.net) is None  # trainable: autograd
        reference = _schnet_results(potential, atoms)
        assert not calls
        potential.frozen()
        assert Plan.of(potential.net) is not None
        fused = _schnet_results(potential, atoms)
        assert calls == [1]  # the hand-written path ran, and only when asked for
        calls.clear()
        potential.requires_grad_(True)
        assert reference.keys() == fused.keys()
        for key in reference:
            torch.testing.assert_close(fused[key], reference[key], atol=1e-11, rtol=1e-11)
        assert reference["forces"].abs().max() > 1e-3


def test_schnets_filter_table_matches_its_filters_and_vanishes_at_the_cutoff():
    """The tables interpolate each interaction's filter x envelope with an error falling as spacing^4, far
    below float32 rounding at the default spacing, and are zero from the cutoff on."""
    from chemzoo.potentials.filter_table import DEFAULT_SPACING, FilterTable, filter_and_slope

    net = make_potential("schnet").double().net
    r = torch.linspace(0.7, 3.999, 5001, dtype=torch.float64)
    exact, exact_slope = filter_and_slope(net, r)

    def errors(spacing):
        table = FilterTable(net, spacing, dtype=torch.float64)
        index, t = table.locate(r)
        pairs = [table.value_and_slope(k, index, t) for k in range(len(exact))]
        value = torch.stack([v for v, _ in pairs])
        slope = torch.stack([d for _, d in pairs]) / spacing
        return (value - exact).abs().max().item(), (slope - exact_slope).abs().max().item()

    value_error, slope_error = errors(DEFAULT_SPACING)
    assert value_error < 1e-7 * exact.abs().max().item()
    assert slope_error < 1e-5 * exact_slope.abs().max().item()
    coarse, fine = errors(0.04)[0], errors(0.02)[0]
    assert 10 < coarse / fine < 25  # fourth order: halving the spacing divides the error by about 16

    table = FilterTable(net, dtype=torch.float64)
    beyond = torch.tensor([4.0, 4.001, 4.3], dtype=torch.float64)
    index, t = table.locate(beyond)
    for k in range(len(exact)):
        value, slope = table.value_and_slope(k, index, t)
        assert value.abs().max().item() < 1e-15 and slope.abs().max().item() < 1e-15  # zero up to rounding


@pytest.mark.parametrize("blocks", ["one", "several"])
def test_schnets_tabulated_filters_are_as_close_to_float64_as_the_exact_ones(aspirin, blocks, monkeypatch):
    """In float32 a frozen SchNet looks its filters up in tables; its energy, forces and stress are as close to
    float64 autograd as float32 with the exact filters (in one block of pairs and in blocks of 64)."""
    from chemzoo.potentials import layers, schnet_fused
    from chemzoo.potentials.graph import build_graph

    if blocks == "several":
        monkeypatch.setattr(layers, "EDGE_BLOCK_BYTES", 1)
    calls = []
    tabulated = schnet_fused.tabulated_forward
    monkeypatch.setattr(schnet_fused, "tabulated_forward", lambda *args: calls.append(1) or tabulated(*args))

    def results(potential, atoms, dtype):
        graph = build_graph(atoms.numbers, atoms.positions, 4.0, atoms.cell.array, atoms.pbc, dtype=dtype)
        out = potential(graph, forces=True, stress=bool(atoms.pbc.any()))
        return {k: v.detach().double() for k, v in out.items()}

    cell = aspirin.copy()
    cell.set_cell([9.0, 9.5, 10.0])
    cell.pbc = True
    for atoms in (aspirin, cell):
        reference = results(make_potential("schnet").double().eval(), atoms, torch.float64)
        potential = make_potential("schnet").frozen()  # float32
        table = results(potential, atoms, torch.float32)
        assert calls == [1]
        calls.clear()
        potential.net.tabulated_filters = False
        exact = results(potential, atoms, torch.float32)
        assert not calls
        for key in reference:
            error_table = (table[key] - reference[key]).abs().max().item()
            error_exact = (exact[key] - reference[key]).abs().max().item()
            scale = reference[key].abs().max().item()
            assert error_table < max(3 * error_exact, 1e-6 * scale), key
        assert reference["forces"].abs().max() > 1e-2


def test_schnets_tabulated_forces_are_the_gradient_of_its_energy(aspirin):
    """With tables in float64 too (``tabulated_filters = True``), forces equal central differences of the
    tabulated energy (what keeps NVE energy conserved), and differ from the exact filters' by the table error."""
    from chemzoo.potentials.graph import build_graph

    potential = make_potential("schnet").double().frozen()
    potential.net.tabulated_filters = True

    def energy_and_forces(positions):
        graph = build_graph(aspirin.numbers, positions, 4.0, dtype=torch.float64)
        out = potential(graph)
        return out["energy"].item(), out["forces"].detach().numpy()

    _, forces = energy_and_forces(aspirin.positions)
    step = 1e-5
    for atom, axis in [(0, 0), (7, 1), (12, 2), (20, 0)]:
        plus, minus = aspirin.positions.copy(), aspirin.positions.copy()
        plus[atom, axis] += step
        minus[atom, axis] -= step
        numeric = -(energy_and_forces(plus)[0] - energy_and_forces(minus)[0]) / (2 * step)
        assert numeric == pytest.approx(forces[atom, axis], abs=1e-7)
    potential.net.tabulated_filters = False
    _, exact = energy_and_forces(aspirin.positions)
    assert 0 < np.abs(forces - exact).max() < 1e-5 * np.abs(exact).max()


def test_schnet_hand_written_backward_follows_new_weights_and_refuses_second_derivatives(aspirin):
    from chemzoo.potentials.graph import build_graph

    potential = make_potential("schnet").double().frozen()
    before = _schnet_results(potential, aspirin)
    other = make_potential("schnet", seed=1).double().eval()
    potential.load_state_dict(other.state_dict())  # in place: the cached plan must notice
    after = _schnet_results(potential, aspirin)
    torch.testing.assert_close(after["forces"], _schnet_results(other, aspirin)["forces"], atol=1e-11, rtol=0)
    assert (after["forces"] - before["forces"]).abs().max() > 1e-3

    graph = build_graph(aspirin.numbers, aspirin.positions, 4.0, dtype=torch.float64)
    positions = graph.positions.requires_grad_(True)
    energy = potential.atomic_energies(graph, positions, graph.shifts).sum()
    with pytest.raises(RuntimeError, match="first derivatives only"):  # a Hessian would be silently wrong
        torch.autograd.grad(energy, positions, create_graph=True)


def test_a_batch_of_cells_gives_each_cell_its_own_energy_forces_and_stress():
    """Two periodic cells in one graph (training's batches) against each alone (the calculator's path)."""
    from chemzoo.potentials.graph import build_graph, collate

    potential = make_potential("painn").double().eval()
    cells = [Atoms("CO2H2", positions=[[0, 0, 0], [1.2, 0, 0], [-1.2, 0.1, 0], [0.3, 1.0, 0.4], [0.2, -0.9, 0.6]],
                   cell=[[4.1, 0.2, 0.0], [0.0, 3.9, 0.3], [0.1, 0.0, 4.3]], pbc=True),
             Atoms("NH3", positions=[[0, 0, 0], [1.0, 0, 0], [-0.3, 0.95, 0], [-0.3, -0.3, 0.9]],
                   cell=[[3.6, 0.0, 0.0], [0.4, 3.8, 0.0], [0.0, 0.2, 4.0]], pbc=True)]
    graphs = [build_graph(a.numbers, a.positions, 4.0, a.cell.array, a.pbc, dtype=torch.float64) for a in cells]
    alone = [potential(g, stress=True) for g in graphs]
    batch = potential(collate(graphs), stress=True)
    for k, single in enumerate(alone):
        torch.testing.assert_close(batch["energy"][k], single["energy"][0], atol=1e-10, rtol=0)
        torch.testing.assert_close(batch["stress"][k], single["stress"][0], atol=1e-12, rtol=0)
    torch.testing.assert_close(batch["forces"], torch.cat([s["forces"] for s in alone]), atol=1e-10, rtol=0)
    assert alone[1]["stress"].abs().max() > 1e-4


def test_the_calculator_takes_schnets_hand_written_backward(aspirin, monkeypatch):
    from chemzoo.potentials import schnet_fused

    calls = []
    forward = schnet_fused.FusedSchNet.forward
    monkeypatch.setattr(schnet_fused.FusedSchNet, "forward",
                        staticmethod(lambda ctx, *args: calls.append(1) or forward(ctx, *args)))
    aspirin.calc = calc("schnet")
    aspirin.get_forces()
    assert calls == [1]
    assert not any(p.requires_grad for p in aspirin.calc.potential.parameters())


def test_a_committee_averages_its_members_and_reports_their_spread(aspirin):
    from chemzoo.potentials.committee import CommitteeCalculator

    members = [ChemzooCalculator(make_potential("schnet", seed=s), dtype="float64") for s in (0, 1, 2)]
    energies, forces = [], []
    for m in members:
        atoms = aspirin.copy()
        atoms.calc = m
        energies.append(atoms.get_potential_energy())
        forces.append(atoms.get_forces())
    committee = CommitteeCalculator(members)
    aspirin.calc = committee
    assert aspirin.get_potential_energy() == pytest.approx(np.mean(energies), abs=1e-10)
    np.testing.assert_allclose(aspirin.get_forces(), np.mean(forces, axis=0), atol=1e-10)
    r = committee.results
    assert r["energy_std"] == pytest.approx(np.std(energies)) and r["energy_std"] > 0
    np.testing.assert_allclose(r["forces_std"], np.std(forces, axis=0), atol=1e-10)
    assert r["max_force_spread"] == pytest.approx(np.linalg.norm(np.std(forces, axis=0), axis=1).max())
    with pytest.raises(ChemzooError, match="a committee needs at least two potentials"):
        CommitteeCalculator(members[:1])


def test_chemzoo_calculator_of_a_list_is_a_committee_of_registered_potentials():
    calc = chemzoo.calculator(["painn-xtb-moses-53k", "schnet-xtb-moses-53k-contact"])
    assert calc.model_name == "committee(painn-xtb-moses-53k, schnet-xtb-moses-53k-contact)"
    assert calc.elements == ELEMENTS


def test_the_calculator_warns_once_below_the_closest_training_contact(aspirin):
    import warnings

    potential = make_potential("schnet")
    potential.config.min_distances = {"C-H": 1.0, "H-H": 1.5}
    calc = ChemzooCalculator(potential, dtype="float64")
    aspirin.calc = calc
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        aspirin.get_potential_energy()  # C-H 1.09 Å, geminal H-H none closer than 1.5 Å: no warning
    h = [k for k, z in enumerate(aspirin.numbers) if z == 1]
    squeezed = aspirin.copy()
    outward = squeezed.positions[h[1]] - squeezed.positions.mean(0)
    squeezed.positions[h[0]] = squeezed.positions[h[1]] + 1.2 * outward / np.linalg.norm(outward)
    squeezed.calc = calc
    with pytest.warns(UserWarning, match=rf"atoms {h[0]} and {h[1]} \(H-H\) are 1.20 Å apart, closer than any H-H "
                                         r"pair in this potential's training data \(1.50 Å\)") as record:
        squeezed.get_potential_energy()
    assert len(record) == 1
    squeezed.positions[h[0]] -= 0.1 * outward / np.linalg.norm(outward)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        squeezed.get_potential_energy()  # once per calculator


def test_training_records_the_closest_contact_of_each_element_pair():
    from training.potentials.data import Structures, closest_contacts
    from chemzoo.potentials.datasets import load_dataset

    data = load_dataset(Path(__file__).parent / "data" / "xtb-moses-200")
    structures = Structures(data, "val", 4.0)
    closest = closest_contacts(structures)
    starts = np.concatenate([[0], np.cumsum(data["n_atoms"])])
    direct = np.inf
    for k in np.flatnonzero(data["split"] == "val"):  # C-H by brute force over every structure
        a, b = starts[k], starts[k + 1]
        z, x = data["numbers"][a:b], data["positions"][a:b]
        d = np.linalg.norm(x[z == 6][:, None] - x[z == 1][None], axis=-1)
        direct = min(direct, d.min())
    assert closest["C-H"] == pytest.approx(direct, abs=1e-4) and 0.9 < closest["C-H"] < 1.1
    assert set(closest) >= {"C-C", "C-H", "H-H", "C-N", "C-O"}


@pytest.mark.parametrize("name", ["schnet-xtb-moses-53k-contact", "painn-xtb-moses-53k", "nequip-xtb-moses-53k"])
def test_atoms_beyond_the_cutoff_are_independent(name):
    """No pair within the cutoff (SchNet's fused path once failed on zero pairs): energies add, forces vanish."""
    calc = chemzoo.calculator(name, dtype="float64")
    energies = {}
    for symbol in ("C", "H"):
        single = Atoms(symbol, positions=[[0, 0, 0]], calculator=calc)
        energies[symbol] = single.get_potential_energy()
        assert np.abs(single.get_forces()).max() == 0
    apart = Atoms("CH", positions=[[0, 0, 0], [10, 0, 0]], calculator=calc)
    assert apart.get_potential_energy() == pytest.approx(energies["C"] + energies["H"], abs=1e-9)
    assert np.abs(apart.get_forces()).max() == 0


def test_a_charged_smiles_is_refused():
    from chemzoo.errors import InvalidMoleculeError
    from chemzoo.potentials.md import atoms_from_smiles

    with pytest.raises(InvalidMoleculeError, match=r"'\[Cl-\]' has a net charge of -1; chemzoo's potentials are trained"):
        atoms_from_smiles("[Cl-]")
    assert len(atoms_from_smiles("C[N+](=O)[O-]")) == 7  # formal charges that cancel are fine (nitromethane)


@pytest.mark.parametrize("name", ["schnet-xtb-moses-53k-contact", "painn-12.1k-xtb-moses-30k", "nequip-xtb-moses-53k"])
def test_batched_evaluation_equals_the_calculator_one_by_one(name):
    """chemzoo.evaluate: batched passes, the same energies, forces and stress as the calculator, float64."""
    from chemzoo.potentials.datasets import load_dataset

    data = load_dataset(Path(__file__).parent / "data" / "xtb-moses-200")
    starts = np.concatenate([[0], np.cumsum(data["n_atoms"])])
    structures = [Atoms(numbers=data["numbers"][a:b], positions=data["positions"][a:b])
                  for a, b in zip(starts[:11], starts[1:12])]
    periodic = structures[3].copy()
    periodic.set_cell([14.0, 15.0, 16.0])
    periodic.center()
    periodic.pbc = True
    structures.insert(5, periodic)
    calc = chemzoo.calculator(name, dtype="float64")
    batched = chemzoo.evaluate(calc, structures, batch_size=5)
    for atoms, got in zip(structures, batched):
        atoms = atoms.copy()
        atoms.calc = calc
        assert got["energy"] == pytest.approx(atoms.get_potential_energy(), abs=1e-9)
        np.testing.assert_allclose(got["forces"], atoms.get_forces(), atol=1e-9)
        if atoms.pbc.any():
            np.testing.assert_allclose(got["stress"], atoms.get_stress(), atol=1e-10)
        else:
            assert "stress" not in got
    bad = structures[:2] + [Atoms("CSi", positions=[[0, 0, 0], [1.8, 0, 0]])]
    with pytest.raises(ChemzooError, match=r"structure 2: element\(s\) Si not supported"):
        chemzoo.evaluate(calc, bad)


def test_the_dataset_reader_gives_labelled_structures_and_a_potentials_errors(tmp_path):
    """chemzoo.potentials.datasets (the format; the builder lives in training/): structures with their xTB
    labels, molecule-wise selection, and a calculator's MAE against the labels, checked one structure at a time."""
    from chemzoo.errors import ChemzooError
    from chemzoo.potentials.datasets import first_of_each_molecule, label_errors, load_dataset, split_indices, structure

    data = load_dataset(Path(__file__).parent / "data" / "xtb-moses-200")
    test = split_indices(data, "test")
    firsts = first_of_each_molecule(data, "test")
    assert len(firsts) == len(np.unique(data["mol_index"][test])) and set(firsts) <= set(test)
    assert all(k == test[data["mol_index"][test] == data["mol_index"][k]][0] for k in firsts)
    k = int(firsts[1])
    atoms = structure(data, k)
    a = int(data["n_atoms"][:k].sum())
    np.testing.assert_array_equal(atoms.positions, data["positions"][a:a + len(atoms)])
    assert atoms.get_potential_energy() == data["energy"][k] and atoms.info["split"] == "test"
    np.testing.assert_array_equal(atoms.get_forces(), data["forces"][a:a + len(atoms)])

    calc = chemzoo.calculator()
    errors = label_errors(calc, data, firsts[:4])
    e, f = [], []
    for k in firsts[:4]:
        labelled = structure(data, int(k))
        plain = labelled.copy()
        plain.calc = calc
        e.append(abs(plain.get_potential_energy() - labelled.get_potential_energy()) / len(plain))
        f.append(np.abs(plain.get_forces() - labelled.get_forces()).ravel())
    assert errors["energy_mae_meV_per_atom"] == pytest.approx(1000 * np.mean(e), rel=1e-4)
    assert errors["force_mae_meV_per_A"] == pytest.approx(1000 * np.concatenate(f).mean(), rel=1e-4)
    assert errors["n_structures"] == 4 and 0 < errors["force_mae_meV_per_A"] < 1000
    with pytest.raises(ChemzooError, match="not a chemzoo dataset folder"):
        load_dataset(tmp_path)
    with pytest.raises(ChemzooError, match="unknown split 'tests'"):
        split_indices(data, "tests")


def test_painns_lean_inference_path_equals_autograd_and_keeps_no_per_edge_tensors(aspirin, monkeypatch):
    """Outside training PaiNN takes painn_fused (hand-written backward, work buffers reused) with one edge block
    or several: the same energy, forces, stress and weight gradient as autograd in float64; far less is kept
    for the backward pass; second derivatives refused."""
    from chemzoo.potentials import layers, painn
    from chemzoo.potentials.graph import build_graph

    calls = []
    apply = painn.FusedMessage.apply
    monkeypatch.setattr(painn.FusedMessage, "apply", lambda *a: calls.append(1) or apply(*a))
    potential = make_potential("painn").double()
    cell = aspirin.copy()
    cell.set_cell([9.0, 9.5, 10.0])
    cell.pbc = True
    for atoms, block_bytes in ((aspirin, layers.EDGE_BLOCK_BYTES), (aspirin, 1), (cell, 1)):  # 1: 64-edge blocks
        monkeypatch.setattr(layers, "EDGE_BLOCK_BYTES", block_bytes)
        graph = build_graph(atoms.numbers, atoms.positions, 4.0, atoms.cell.array, atoms.pbc, dtype=torch.float64)
        results = {}
        for mode in ("train", "eval"):
            potential.train(mode == "train")
            out = potential(graph, forces=True, stress=bool(atoms.pbc.any()))
            weight = potential.net.messages[0].w.weight
            out["weight_grad"] = torch.autograd.grad(potential(graph, forces=False)["energy"].sum(), weight)[0]
            results[mode] = {k: v.detach() for k, v in out.items()}
        for key, value in results["train"].items():
            torch.testing.assert_close(results["eval"][key], value, atol=1e-12, rtol=1e-10)
        assert results["train"]["forces"].abs().max() > 1e-3
    assert len(calls) == 3 * 2 * 2  # eval only: 3 cases x 2 calls x 2 interactions

    graph = build_graph(cell.numbers, cell.positions, 4.0, cell.cell.array, cell.pbc, dtype=torch.float64)
    positions = graph.positions.requires_grad_(True)
    kept = {}
    for mode in ("train", "eval"):
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
            energy = potential.train(mode == "train").atomic_energies(graph, positions, graph.shifts).sum()
        kept[mode] = sum(saved)  # elements kept for the backward pass
    # autograd keeps every block's per-edge messages (E x 3F per interaction); the lean path only the node
    # features and the edge basis (E x (K + 1)): measured here 184,233 against 61,985 elements; on 8,000
    # atoms ~15 -> 1.3 GB
    assert kept["eval"] < kept["train"] / 2.5
    with pytest.raises(RuntimeError, match="first derivatives only"):
        torch.autograd.grad(energy, positions, create_graph=True)


def test_nequips_large_system_path_recomputes_blocks_and_gives_the_same_numbers(aspirin, monkeypatch):
    """Outside training with several edge blocks, the e3nn model's message steps recompute each block in a
    hand-written backward (no per-edge tensor kept): the same energy, forces and stress as autograd through
    the plain path in float64."""
    from chemzoo.potentials import layers, nequip
    from chemzoo.potentials.graph import build_graph

    monkeypatch.setattr(layers, "EDGE_BLOCK_BYTES", 1)
    calls = []
    forward = nequip.BlockedMessages.forward
    monkeypatch.setattr(nequip.BlockedMessages, "forward", staticmethod(lambda ctx, *a: calls.append(1) or forward(ctx, *a)))
    potential = make_potential("nequip").double()
    cell = aspirin.copy()
    cell.set_cell([9.0, 9.5, 10.0])
    cell.pbc = True
    graph = build_graph(cell.numbers, cell.positions, 4.0, cell.cell.array, cell.pbc, dtype=torch.float64)
    results = {}
    for mode in ("train", "eval"):
        potential.train(mode == "train")
        results[mode] = {k: v.detach() for k, v in potential(graph, forces=True, stress=True).items()}
        assert bool(calls) == (mode == "eval")
    for key, value in results["train"].items():
        torch.testing.assert_close(results["eval"][key], value, atol=1e-12, rtol=1e-10)
    assert results["train"]["forces"].abs().max() > 1e-3
    # the hand-written backward is first-order: a second derivative is refused, not silently wrong
    positions = graph.positions.requires_grad_(True)
    energy = potential.eval().atomic_energies(graph, positions, graph.shifts).sum()
    with pytest.raises(RuntimeError, match="first derivatives only"):
        torch.autograd.grad(energy, positions, create_graph=True)
