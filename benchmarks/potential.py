"""chemzoo's SchNet against SchNetPack's SchNet and torch-geometric's reference SchNet (``--arch painn``: chemzoo's
PaiNN against SchNetPack's PaiNN; ``--arch nequip``: chemzoo's e3nn model against MACE and mir-group ``nequip``;
``--arch ani``: the default potential against TorchANI's ANI-2x architecture) at equal hyperparameters:
energy+forces calls/s, MD steps/s and each peer process's peak memory.

    pip install --target /tmp/spk --no-deps schnetpack==2.0.4 matscipy hydra-core omegaconf \
        antlr4-python3-runtime==4.9.3 torchmetrics==1.0.1 h5py torch-ema dirsync fasteners \
        hydra-colorlog colorlog pytorch-lightning
    PYTHONPATH=/tmp/spk python -m benchmarks.potential [--repeats 8]

SchNetPack: 2.2 needs Python >= 3.12 and 2.1.1 does not resolve here, so 2.0.4 (its dependencies
beside it, off the main environment). It imports the typing alias ``T_co`` that torch 2.13 removed
from ``torch.utils.data.dataloader``; ``import_schnetpack`` puts that alias back (typing only) and
nothing else is changed. SchNetPack runs its own pipeline, as its ``SpkCalculator`` does:
``AtomsConverter`` with its C neighbour list (matscipy), then ``NeuralNetworkPotential`` with
``Atomwise`` energy and autograd ``Forces``. torch-geometric's SchNet gets our vesin edges (its own
radius graph needs torch-cluster). Hyperparameters: 128 features, 6 interactions, 5 Å cutoff,
50 radial functions, random weights (speed does not depend on training). Systems: aspirin (21 atoms)
and periodic water boxes of ~1,000 and ~8,000 atoms at 1 g/cm^3; the neighbour list is rebuilt on
every call. Without SchNetPack on the path, its rows are left out and the speed-ups are against
torch-geometric.

The equivariant peers pin what the main environment cannot hold, so each runs under its own interpreter
(a venv that sees the main site-packages and overrides the pins), named by ``--mace-python`` etc.:

    python -m venv --system-site-packages /tmp/venv-mace && /tmp/venv-mace/bin/pip install mace-torch e3nn==0.4.4
    python -m venv --system-site-packages /tmp/venv-nequip && /tmp/venv-nequip/bin/pip install "nequip==0.19.*"
    python -m venv --system-site-packages /tmp/venv-ani && /tmp/venv-ani/bin/pip install torchani
    python -m benchmarks.potential --arch nequip --mace-python /tmp/venv-mace/bin/python --nequip-python /tmp/venv-nequip/bin/python
    python -m benchmarks.potential --arch ani --ani-python /tmp/venv-ani/bin/python

At equal channels (32), l_max (2), layers (3), cutoff (5 Å), 8 Bessel functions and a 64-wide radial MLP:
MACE 0.3 (``MACE`` with residual interaction blocks, correlation ``--correlation``, its ``MACECalculator``
and neighbour list) and ``nequip`` 0.19 (``NequIPGNNModel``, its ``NequIPCalculator`` with the type mapper
and a vesin neighbour list, after its ``set_global_state()``). ANI-2x: the architecture of
``torchani.models.ANI2x`` (an 8-network ensemble, AEVs, cosine cutoff) built by TorchANI's own ``Assembler``
steps without the downloaded weights (speed does not depend on them), its ``model.ase()`` calculator; its
elements are H C N O F S Cl, so its systems are aspirin and the water boxes as for everyone.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing as mp
import platform
import sys
import time
from importlib.metadata import version
from pathlib import Path

import click
import numpy as np
import torch

if version("e3nn").startswith("0.4."):  # MACE's pin torch.loads its constants with slices (torch >= 2.6 refuses)
    torch.serialization.add_safe_globals([slice])
from ase import Atoms, units
from ase.build import molecule
from ase.calculators.calculator import Calculator, all_changes
from ase.io import read
from ase.md.verlet import VelocityVerlet
from scipy.spatial.transform import Rotation

from chemzoo.potentials.calculator import ChemzooCalculator
from chemzoo.potentials.graph import build_graph
from chemzoo.potentials.model import Potential, PotentialConfig

ELEMENTS = [1, 6, 7, 8, 9, 16, 17, 35]


def water_box(n_atoms: int, seed: int = 0) -> Atoms:
    """Water molecules on a jittered lattice at 1 g/cm^3 (about ``n_atoms`` atoms), periodic."""
    n_mol = n_atoms // 3
    side = (n_mol * 29.9) ** (1 / 3)  # Å: 29.9 Å^3 per molecule at 1 g/cm^3
    per_edge = int(np.ceil(n_mol ** (1 / 3)))
    rng = np.random.default_rng(seed)
    water = molecule("H2O")
    positions, symbols = [], []
    for k in range(n_mol):
        idx = np.array([k % per_edge, (k // per_edge) % per_edge, k // per_edge**2])
        rot = Rotation.random(random_state=int(rng.integers(1 << 31))).as_matrix()
        positions.append((water.positions - water.positions.mean(0)) @ rot.T + (idx + 0.5) * side / per_edge)
        symbols += water.get_chemical_symbols()
    atoms = Atoms(symbols, positions=np.concatenate(positions), cell=[side] * 3, pbc=True)
    atoms.wrap()
    return atoms


def aspirin() -> Atoms:
    """The 21-atom aspirin geometry the tests use."""
    return read(Path(__file__).resolve().parent.parent / "tests" / "data" / "aspirin.xyz")


class GivenEdges(torch.nn.Module):
    """Stands in for PyG's RadiusInteractionGraph (which needs pyg-lib/torch-cluster): our vesin edges."""

    def forward(self, pos, batch):
        i, j = self.edge_index
        return torch.stack([j, i]), (pos[j] - pos[i] + self.shifts).norm(dim=-1)


class PygSchNetCalculator(Calculator):
    """ASE wrapper for torch_geometric.nn.models.SchNet fed with vesin edges (periodic images included)."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, cutoff: float = 5.0):
        super().__init__()
        from torch_geometric.nn.models import SchNet

        torch.manual_seed(0)
        self.cutoff = cutoff
        self.model = SchNet(hidden_channels=128, num_filters=128, num_interactions=6, num_gaussians=50, cutoff=cutoff,
                            max_num_neighbors=10_000)
        self.model.interaction_graph = GivenEdges()

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        graph = build_graph(self.atoms.numbers, self.atoms.positions, self.cutoff, self.atoms.cell.array, self.atoms.pbc)
        pos = graph.positions.requires_grad_(True)
        self.model.interaction_graph.edge_index, self.model.interaction_graph.shifts = graph.edge_index, graph.shifts
        energy = self.model(graph.numbers, pos, graph.batch).sum()
        forces = -torch.autograd.grad(energy, pos)[0]
        self.results = {"energy": energy.item(), "forces": forces.numpy()}


def import_schnetpack():
    """SchNetPack 2.0.4 with torch 2.13's removed typing alias ``T_co`` restored, or None."""
    import typing

    import torch.utils.data.dataloader as dataloader

    if not hasattr(dataloader, "T_co"):
        dataloader.T_co = typing.TypeVar("T_co", covariant=True)
    try:
        import schnetpack
    except ImportError:
        return None
    return schnetpack


class SchNetPackCalculator(Calculator):
    """What SchNetPack's ``SpkCalculator`` does per call: convert (matscipy neighbour list), run the model:
    its SchNet (128 x 6, 50 Gaussians) or, ``arch="painn"``, its PaiNN (128 x 3, 20 Gaussians), cosine cutoff."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, spk, cutoff: float = 5.0, arch: str = "schnet"):
        super().__init__()
        torch.manual_seed(0)
        kind, interactions, n_rbf = (spk.representation.SchNet, 6, 50) if arch == "schnet" else (
            spk.representation.PaiNN, 3, 20)
        representation = kind(n_atom_basis=128, n_interactions=interactions,
                              radial_basis=spk.nn.GaussianRBF(n_rbf=n_rbf, cutoff=cutoff),
                              cutoff_fn=spk.nn.CosineCutoff(cutoff))
        self.model = spk.model.NeuralNetworkPotential(
            representation=representation, input_modules=[spk.atomistic.PairwiseDistances()],
            output_modules=[spk.atomistic.Atomwise(n_in=128, output_key="energy"),
                            spk.atomistic.Forces(energy_key="energy", force_key="forces")]).eval()
        self.converter = spk.interfaces.AtomsConverter(neighbor_list=spk.transform.MatScipyNeighborList(cutoff=cutoff),
                                                       dtype=torch.float32)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        out = self.model(self.converter(self.atoms))
        self.results = {"energy": out["energy"].detach().item(), "forces": out["forces"].detach().numpy()}


# the shapes compared with the peers (SchNet and PaiNN as SchNetPack's below; the e3nn model as the bundled one)
SHAPES = {"schnet": dict(features=128, interactions=6, num_basis=50), "painn": dict(features=128, interactions=3, num_basis=20),
          "nequip": dict(features=32, interactions=3, lmax=2)}


def chemzoo_calculator(arch: str) -> ChemzooCalculator:
    """chemzoo's ``arch`` at its benchmark shape, random weights (seed 0), 5 Å, float32."""
    torch.manual_seed(0)
    config = PotentialConfig(arch, ELEMENTS, 5.0, SHAPES[arch])
    return ChemzooCalculator(Potential(config), dtype="float32", min_distance=0.0)


def call_times(calc, atoms, n, rng) -> list[float]:
    """Seconds of each of ``n`` energy+forces calls, each at a new geometry."""
    atoms.calc = calc
    times = []
    for _ in range(n):
        atoms.positions += rng.normal(0, 1e-3, atoms.positions.shape)
        start = time.perf_counter()
        atoms.get_forces()
        times.append(time.perf_counter() - start)
    return times


def md_step_times(calc, atoms, n) -> list[float]:
    """Seconds of each of ``n`` velocity-Verlet steps (0.5 fs)."""
    atoms.calc = calc
    dyn = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        dyn.run(1)
        times.append(time.perf_counter() - start)
    return times


def systems() -> dict[str, Atoms]:
    return {"aspirin (21 atoms)": aspirin(), "water box (999 atoms)": water_box(1000),
            "water box (7998 atoms)": water_box(8000)}


# the e3nn model's benchmark shape, and its radial defaults (NequIP's num_basis and radial_hidden), for the peers
EQUIVARIANT = dict(channels=SHAPES["nequip"]["features"], lmax=SHAPES["nequip"]["lmax"],
                   layers=SHAPES["nequip"]["interactions"], num_basis=8, radial_hidden=64)
ANI_ELEMENTS = ["H", "C", "N", "O", "F", "S", "Cl"]
CORRELATION = {"value": 3}  # MACE's body order, set in MACE's own process from --correlation (peer_process)


def mace_calculator():
    """MACE at the e3nn model's shape (random weights, seed 0) behind MACE's own ASE calculator."""
    from e3nn import o3
    from mace.calculators import MACECalculator
    from mace.modules import MACE, RealAgnosticResidualInteractionBlock

    torch.manual_seed(0)
    c, lmax = EQUIVARIANT["channels"], EQUIVARIANT["lmax"]
    hidden = o3.Irreps("+".join(f"{c}x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(lmax + 1)))
    model = MACE(r_max=5.0, num_bessel=EQUIVARIANT["num_basis"], num_polynomial_cutoff=6, max_ell=lmax,
                 interaction_cls=RealAgnosticResidualInteractionBlock, interaction_cls_first=RealAgnosticResidualInteractionBlock,
                 num_interactions=EQUIVARIANT["layers"], num_elements=len(ELEMENTS), hidden_irreps=hidden,
                 MLP_irreps=o3.Irreps("16x0e"), atomic_energies=np.zeros(len(ELEMENTS)), avg_num_neighbors=12.0,
                 atomic_numbers=ELEMENTS, correlation=CORRELATION["value"], gate=torch.nn.functional.silu,
                 radial_MLP=[EQUIVARIANT["radial_hidden"]])
    return MACECalculator(models=model.float().eval(), device="cpu", default_dtype="float32")


def nequip_calculator():
    """mir-group ``nequip`` 0.19 at the e3nn model's shape (random weights, seed 0) behind its ASE calculator."""
    from ase.data import chemical_symbols
    from nequip.data.transforms import ChemicalSpeciesToAtomTypeMapper, NeighborListTransform
    from nequip.integrations.ase import NequIPCalculator
    from nequip.model.nequip_models import NequIPGNNModel
    from nequip.utils.global_state import set_global_state

    set_global_state()
    names = [chemical_symbols[z] for z in ELEMENTS]
    model = NequIPGNNModel(seed=0, model_dtype="float32", r_max=5.0, type_names=names, num_layers=EQUIVARIANT["layers"],
                           l_max=EQUIVARIANT["lmax"], num_features=EQUIVARIANT["channels"], num_bessels=EQUIVARIANT["num_basis"],
                           radial_mlp_depth=1, radial_mlp_width=EQUIVARIANT["radial_hidden"], avg_num_neighbors=12.0,
                           per_type_energy_shifts=0.0, per_type_energy_scales=1.0).eval()
    return NequIPCalculator(model, "cpu", transforms=[
        ChemicalSpeciesToAtomTypeMapper(model_type_names=names, chemical_species_to_atom_type_map={n: n for n in names}),
        NeighborListTransform(r_max=5.0, backend="vesin")])


def ani2x_calculator():
    """TorchANI's ANI-2x architecture (8 networks), assembled as ``torchani.models.ANI2x`` does, without its
    downloaded weights; a cell list for the periodic boxes."""
    from torchani.arch import Assembler

    torch.manual_seed(0)
    asm = Assembler(periodic_table_index=True)
    asm.set_symbols(ANI_ELEMENTS)
    asm.set_global_cutoff_fn("cosine")
    asm.set_aev_computer(radial="ani2x", angular="ani2x", strategy="pyaev")
    asm.set_atomic_networks(ctor="ani2x")
    asm.set_neighborlist("cell_list")
    asm.set_gsaes_as_self_energies("wb97x-631gd")
    model = asm.assemble(8)
    model.requires_grad_(False)
    return model.ase()


def default_calculator():
    """The bundled default potential, float32."""
    import chemzoo

    return chemzoo.calculator(chemzoo.default_model("potential").name)


PEERS = {"chemzoo SchNet": lambda: chemzoo_calculator("schnet"), "torch-geometric SchNet": PygSchNetCalculator,
         "SchNetPack SchNet": lambda: SchNetPackCalculator(import_schnetpack()),
         "chemzoo PaiNN": lambda: chemzoo_calculator("painn"), "SchNetPack PaiNN": lambda: SchNetPackCalculator(import_schnetpack(), arch="painn"),
         "chemzoo e3nn model": lambda: chemzoo_calculator("nequip"), "MACE": mace_calculator, "nequip": nequip_calculator,
         "chemzoo default potential": default_calculator, "ANI-2x architecture": ani2x_calculator}
PYTHON = {}  # peer -> the interpreter of its own environment (--mace-python, ...); default: this one


def peer_process(name: str, conn, correlation: int = 3) -> None:
    """One peer in a process of its own: answers (system, n) with n call times and n MD step times,
    each turn after one untimed call (a peer's steady state, as in a long MD run)."""
    import resource

    CORRELATION["value"] = correlation
    calc, structures, rng = PEERS[name](), systems(), np.random.default_rng(0)
    while (request := conn.recv()) is not None:
        label, n = request
        atoms = structures[label]
        call_times(calc, atoms, 1, rng)
        conn.send((call_times(calc, atoms, n, rng), md_step_times(calc, atoms, n)))
    conn.send(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6)  # peak resident memory, GB


def interleaved(names: list[str], label: str, n: int, rounds: int = 4,
                correlation: int = 3) -> dict[str, tuple[float, float, float]]:
    """Median calls/s and MD steps/s per peer on one system, in ``rounds`` rounds that take the peers
    in turn (a slow spell of the machine hits all of them), ``n`` calls and steps per turn. Each peer
    runs in its own process: in one process, the memory SchNetPack frees on 8,000 atoms left the next
    peer page-faulting ~400 MB per call (2.0-2.1 s instead of 1.7 s for chemzoo)."""
    context = mp.get_context("spawn")
    links = {}
    for name in names:
        parent, child = context.Pipe()
        links[name] = (parent, context.Process(target=peer_process, args=(name, child, correlation), daemon=True))
        context.set_executable(PYTHON.get(name, sys.executable))  # the peer's own environment
        with own_sys_path(PYTHON.get(name)):
            links[name][1].start()
    calls, steps, peak = {name: [] for name in names}, {name: [] for name in names}, {}
    try:
        for _ in range(rounds):
            for name, (conn, process) in links.items():
                conn.send((label, n))
                while not conn.poll(1):
                    if not process.is_alive():
                        raise click.ClickException(f"the {name} process died (its traceback is above)")
                c, s = conn.recv()
                calls[name] += c
                steps[name] += s
    finally:
        for name, (conn, process) in links.items():
            peak[name] = float("nan")
            if process.is_alive():
                conn.send(None)
                peak[name] = conn.recv()
            process.join()
    return {name: (1 / np.median(calls[name]), 1 / np.median(steps[name]), peak[name]) for name in names}


@contextlib.contextmanager
def own_sys_path(python: str | None):
    """While a peer process starts: this process's ``sys.path`` replaced by that of ``python`` (its venv),
    which the spawned child receives (``multiprocessing`` gives a child its parent's path, so a venv's own
    packages - MACE's e3nn 0.4.4, nequip, torchani - would be shadowed or missing); the repository stays on it."""
    if python is None:
        yield
        return
    saved = sys.path[:]
    sys.path[:] = [str(Path.cwd()), *interpreter_sys_path(python)]
    try:
        yield
    finally:
        sys.path[:] = saved


@functools.lru_cache(maxsize=None)
def interpreter_sys_path(python: str) -> tuple[str, ...]:
    """``sys.path`` of another interpreter (asked once per interpreter)."""
    import json
    import subprocess

    return tuple(json.loads(subprocess.run([python, "-c", "import json, sys; print(json.dumps(sys.path))"],
                                           capture_output=True, text=True, check=True).stdout))


def peer_importable(name: str, module: str) -> bool:
    """Whether ``module`` imports under the peer's interpreter (its own venv, or this one)."""
    import subprocess

    python = PYTHON.get(name, sys.executable)
    return subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode == 0


@click.command()
@click.option("--arch", type=click.Choice(["schnet", "painn", "nequip", "ani"]), default="schnet", show_default=True,
              help="SchNet (128 x 6, 50 radial functions) against SchNetPack's and torch-geometric's; PaiNN "
                   "(128 x 3, 20 radial functions) against SchNetPack's; the e3nn model (32 channels, l_max 2, 3 layers) "
                   "against MACE and nequip; the default potential against the ANI-2x architecture.")
@click.option("--repeats", default=8, show_default=True,
              help="Work per measurement: 4 rounds of repeats x 25 calls and MD steps on aspirin, repeats / 2 "
                   "on 1,000 atoms, repeats / 4 on 8,000; medians reported.")
@click.option("--mace-python", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Interpreter of a venv with mace-torch (and e3nn 0.4.4).")
@click.option("--nequip-python", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Interpreter of a venv with nequip 0.19.")
@click.option("--ani-python", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Interpreter of a venv with torchani.")
@click.option("--correlation", type=click.IntRange(1, 3), default=3, show_default=True, help="MACE's body order.")
@click.option("--system", "only", type=click.Choice(["aspirin", "1k", "8k"]), multiple=True,
              help="Only these systems (repeatable) [default: all three]; e.g. a second look at aspirin alone.")
def main(arch, repeats, mace_python, nequip_python, ani_python, correlation, only):
    print(f"# {time.strftime('%Y-%m-%d')}, {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    PYTHON.update({k: v for k, v in {"MACE": mace_python, "nequip": nequip_python, "ANI-2x architecture": ani_python}.items() if v})
    if arch == "schnet":
        print("# SchNet 128 features, 6 interactions, 5 Å cutoff, 50 radial functions, float32, random weights")
        names = ["chemzoo SchNet", "torch-geometric SchNet"]
    elif arch == "painn":
        print("# PaiNN 128 features, 3 interactions, 5 Å cutoff, 20 radial functions, float32, random weights")
        names = ["chemzoo PaiNN"]
    elif arch == "nequip":
        print(f"# e3nn models: {EQUIVARIANT['channels']} channels, l_max {EQUIVARIANT['lmax']}, {EQUIVARIANT['layers']} layers, "
              f"5 Å cutoff, {EQUIVARIANT['num_basis']} Bessel functions, radial MLP {EQUIVARIANT['radial_hidden']} wide, float32, "
              f"random weights; MACE correlation {correlation}")
        names = ["chemzoo e3nn model"] + [n for n, m in (("MACE", "mace"), ("nequip", "nequip")) if peer_importable(n, m)]
    else:
        print("# the default potential (trained weights) against the ANI-2x architecture (8 networks, random weights), float32")
        names = ["chemzoo default potential"] + (["ANI-2x architecture"] if peer_importable("ANI-2x architecture", "torchani") else [])
    for name in names:
        if name in PYTHON:
            print(f"# {name}: {PYTHON[name]}")
    spk = import_schnetpack() if arch in ("schnet", "painn") else None
    if spk is not None:
        names.append(f"SchNetPack {'SchNet' if arch == 'schnet' else 'PaiNN'}")
        print(f"# SchNetPack {spk.__version__ if hasattr(spk, '__version__') else ''} from {Path(spk.__file__).parent}")
    print("# each peer in a process of its own, peers in turns (4 rounds), one untimed call per turn, medians")
    reference = names[-1]
    rows, per_call = [], {}
    chosen = {k: v for (k, v), key in zip(systems().items(), ("aspirin", "1k", "8k")) if not only or key in only}
    for label, atoms in chosen.items():
        n = repeats * 25 if len(atoms) < 100 else max(1, repeats // (2 if len(atoms) < 2000 else 4))
        results = interleaved(names, label, n, correlation=correlation)
        base, ours = results[reference], results[names[0]]
        for name, (calls, steps, peak) in results.items():
            per_call[(name, len(atoms))] = 1 / calls
            rows.append((label, name, f"{calls:.2f}", f"{steps:.2f}", f"{calls / base[0]:.2f}x",
                         f"{ours[0] / calls:.2f}x / {ours[1] / steps:.2f}x", f"{peak:.2f}"))
    print(f"| system | model | energy+forces calls/s | MD steps/s | calls/s vs {reference} | {names[0]} vs this "
          "(calls / MD steps) | peak memory (GB) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    sizes = sorted({n for _, n in per_call if n > 100})
    for name in names if len(sizes) == 2 else []:
        ratio = per_call[(name, sizes[1])] / per_call[(name, sizes[0])]
        print(f"# {name}: time per call grows {ratio:.1f}x from {sizes[0]} to {sizes[1]} atoms "
              f"({sizes[1] / sizes[0]:.1f}x the atoms; linear would be {sizes[1] / sizes[0]:.1f}x)")


if __name__ == "__main__":
    main()
