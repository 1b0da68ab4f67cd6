"""Molecular dynamics with ASE: structures from files or SMILES, NVE or Langevin, logs and a plot.

Units: temperature K, timestep fs, energies eV, time in the log fs.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.io import read, write
from ase.md.bussi import Bussi
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary, ZeroRotation
from ase.md.verlet import VelocityVerlet
from tqdm.auto import tqdm

from chemzoo.errors import ChemzooError, InvalidMoleculeError
from chemzoo.files import save_figure
from chemzoo.potentials.bonds import BondWatch

FRAGMENT_GAP = 3.0  # Å between the pieces of a multi-fragment SMILES ("CCO.O")
LOG_COLUMNS = ["time_fs", "potential_eV", "kinetic_eV", "total_eV", "temperature_K"]
SPREAD_COLUMN = "max_force_spread_eV_per_A"  # logged when the calculator is a committee

try:
    from ase.md.velocitydistribution import thermalize_momenta  # ASE >= 3.29
except ImportError:  # older ASE: the same draw under its former name
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    def thermalize_momenta(atoms: Atoms, temperature_K: float, rng=None) -> None:
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=rng)


def draw_velocities(atoms: Atoms, temperature: float, rng: np.random.Generator) -> None:
    """Maxwell-Boltzmann momenta at ``temperature`` K (seeded by ``rng``), without net translation, nor net
    rotation outside a periodic cell."""
    thermalize_momenta(atoms, temperature, rng=rng)
    Stationary(atoms)
    if not atoms.pbc.any():
        with np.errstate(divide="ignore", invalid="ignore"):  # ASE divides by a zero moment of a linear molecule
            ZeroRotation(atoms)


def atoms_from_smiles(smiles: str, seed: int = 0) -> Atoms:
    """A 3D structure for a SMILES: hydrogens added, RDKit ETKDG embedding, MMFF94 relaxation (Å); the
    fragments of a dotted SMILES side by side, FRAGMENT_GAP apart."""
    return molecule_from_smiles(smiles, seed)[0]


def molecule_from_smiles(smiles: str, seed: int = 0):
    """``atoms_from_smiles``'s structure and the RDKit molecule (with hydrogens, same atom order) it was built from."""
    from rdkit import Chem
    from rdkit.Chem import AllChem, Descriptors

    from chemzoo.lm.molecules import parse_smiles

    mol = parse_smiles(smiles) if smiles and smiles.strip() else None
    if mol is None or mol.GetNumAtoms() == 0:
        raise InvalidMoleculeError(f"invalid SMILES {smiles!r}: RDKit cannot parse it (or it has no atoms)")
    charge = Chem.GetFormalCharge(mol)
    if charge != 0:
        raise InvalidMoleculeError(f"SMILES {smiles!r} has a net charge of {charge:+d}; chemzoo's potentials are trained "
                                   "on neutral molecules (GFN2-xTB, charge 0)")
    radicals = Descriptors.NumRadicalElectrons(mol)
    if radicals:
        raise InvalidMoleculeError(f"SMILES {smiles!r} has {radicals} unpaired electron(s); chemzoo's potentials are "
                                   "trained on closed-shell molecules (write the hydrogens, e.g. C for [CH3])")
    mol = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = seed
    if AllChem.EmbedMolecule(mol, params) != 0:
        raise InvalidMoleculeError(f"RDKit cannot embed SMILES {smiles!r} in 3D; give a structure file instead")
    if AllChem.MMFFHasAllMoleculeParams(mol):
        AllChem.MMFFOptimizeMolecule(mol, maxIters=500)
    positions = mol.GetConformer().GetPositions()
    fragments = Chem.GetMolFrags(mol)
    if len(fragments) > 1:  # "CCO.O": ETKDG may embed the pieces on top of each other; set them FRAGMENT_GAP apart
        edge = None
        for atoms_of in fragments:
            idx = list(atoms_of)
            piece = positions[idx] - positions[idx].mean(0)
            if edge is not None:
                piece[:, 0] += edge - piece[:, 0].min() + FRAGMENT_GAP
            positions[idx] = piece
            edge = piece[:, 0].max()
    return Atoms(numbers=[a.GetAtomicNum() for a in mol.GetAtoms()], positions=positions), mol


def md_tested_warning(calc, temperature: float) -> str | None:
    """One line when ``calc``'s potential has not been shown to keep molecules intact in MD at ``temperature`` (K;
    Langevin or Bussi target, NVE start): never tested in MD, tested and not safe, or tested only at lower
    temperatures (``md_safe_K`` in its chemzoo.json: the highest temperature at which ``benchmarks/md_safety.py``
    kept every bond - Langevin 300 K for 10 ps, NVE started at 1500 K for 3 ps - or 0). None when it has been.
    A committee: the first member that warns."""
    for member in getattr(calc, "members", [calc]):
        name, safe = member.model_name, getattr(member, "md_safe_K", None)
        card = f"`chemzoo models info {name}`"
        if safe is None:
            return f"{name} has not been tested in molecular dynamics (see {card}); {tested_default()} has"
        if safe <= 0:
            return (f"{name} is not safe in molecular dynamics: covalent bonds formed or broke in its held-out runs "
                    f"(see {card}); for MD use {tested_default()}")
        if temperature > safe:
            return (f"{name} has been tested in molecular dynamics up to {safe:g} K, not at {temperature:g} K (hotter "
                    f"runs changed bonds, see {card}); the run stops if a bond forms or breaks")
    return None


def tested_default() -> str:
    """The default potential and the temperature it is tested up to, in words."""
    from chemzoo.hub import read_metadata
    from chemzoo.loading import locate

    folder, entry, _ = locate(None, "potential")
    safe = read_metadata(folder).get("md_safe_K")
    return f"the default potential, {entry.name}" + (f" (tested up to {safe:g} K)" if safe else "")


def read_structure(path: Path) -> Atoms:
    """The last frame of any file ASE can read; a one-line error otherwise."""
    try:
        atoms = read(path, index=-1)
    except Exception as exc:  # ASE raises many types for unreadable files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ChemzooError(f"cannot read a structure from {path}: {reason}") from None
    if len(atoms) == 0:
        raise ChemzooError(f"{path} holds no atoms")
    return atoms


@dataclass
class MDResult:
    log: list[dict]
    frames: int
    blew_up: bool
    reason: str | None = None  # why a run that blew up (or reacted) was stopped
    reacted: bool = False  # the bond graph changed (``reason`` says which bond, when)
    uncertain: bool = False  # a committee's force spread passed ``max_spread``
    interrupted: bool = False  # Ctrl-C: what was written up to then is kept
    bond_changes: list[str] = field(default_factory=list)  # every change seen with allow_reactions


def has_momenta(atoms: Atoms) -> bool:
    """True when the structure carries velocities (e.g. the last frame of an extxyz trajectory)."""
    return bool(atoms.has("momenta") and np.abs(atoms.get_momenta()).max() > 0)


SPACING = 40.0  # Å between molecule centres in side_by_side, far beyond any cutoff


def side_by_side(molecules: list[Atoms], temperatures, seed: int = 0,
                 spacing: float = SPACING) -> tuple[Atoms, np.ndarray]:
    """Molecules on a cubic grid ``spacing`` Å apart in one (non-periodic) box, each with its own
    Maxwell-Boltzmann velocities at its temperature (K; one value for all, or one per molecule; seeded, no
    net translation or rotation per molecule); and each atom's molecule. With a cutoff below ``spacing`` no
    molecule feels another: MD of the box is MD of each molecule, at one call per step for all."""
    rng = np.random.default_rng(seed)
    temperatures = np.broadcast_to(np.asarray(temperatures, dtype=float), (len(molecules),))
    side = int(np.ceil(len(molecules) ** (1 / 3)))
    box, owner = Atoms(), []
    for n, (mol, temperature) in enumerate(zip(molecules, temperatures)):
        mol = mol.copy()
        mol.calc = None
        mol.positions += spacing * np.array([n % side, (n // side) % side, n // side**2]) - mol.positions.mean(0)
        draw_velocities(mol, temperature, rng)
        box += mol
        owner += [n] * len(mol)
    return box, np.array(owner, dtype=int)


ENSEMBLES = ("nve", "langevin", "bussi")


def run_md(atoms: Atoms, ensemble: str, temperature: float, timestep: float, steps: int, trajectory: Path,
           log_every: int = 10, friction: float = 0.01, seed: int = 0, progress: bool = True,
           keep_velocities: bool = False, equilibrate: int = 0, watch_bonds: bool = True,
           allow_reactions: bool = False, log_path: Path | None = None, max_spread: float | None = None,
           taut: float = 100.0) -> MDResult:
    """Run MD on ``atoms`` (with a calculator); frames and log rows every ``log_every`` steps.

    Velocities are drawn from Maxwell-Boltzmann at ``temperature`` K (seeded) unless
    ``keep_velocities`` and the atoms carry momenta. ``equilibrate`` steps of Langevin at
    ``temperature`` run first (not written; the log starts after them). ``friction`` is the Langevin
    friction in 1/fs; ``bussi`` is NVT with the Bussi-Donadio-Parrinello velocity-rescaling thermostat
    (time constant ``taut`` fs), which, unlike Langevin, leaves the dynamics' momenta uncorrupted. The covalent bond graph is watched (``chemzoo.potentials.bonds``) at every log
    row: a bond formed or broken ends the run (``reacted``) unless ``allow_reactions``. Stops early
    (``blew_up``) if the structure explodes (non-finite energy/positions, a temperature above 10x
    target + 1000 K, or atoms the calculator refuses, e.g. collapsing onto each other), keeping what
    was written. ``log_path``: the CSV log, written row by row (an interrupted run keeps its rows).
    With a committee calculator the log has the members' largest force spread (eV/Å) and the run
    stops (``uncertain``) once it exceeds ``max_spread``.
    """
    rng = np.random.default_rng(seed)
    if not (keep_velocities and has_momenta(atoms)):
        draw_velocities(atoms, temperature, rng)
    if ensemble not in ENSEMBLES:
        raise ChemzooError(f"unknown ensemble {ensemble!r}; use {', '.join(ENSEMBLES)}")

    def integrator(kind: str):
        """ASE's dynamics for ``kind`` (one of ENSEMBLES) at this run's settings."""
        dt = timestep * units.fs
        if kind == "langevin":
            return Langevin(atoms, timestep=dt, temperature_K=temperature, friction=friction / units.fs, rng=rng,
                            fixcm=False)  # the centre of mass thermalised too: ASE's fixcm=True is not NVT
        if kind == "bussi":
            return Bussi(atoms, timestep=dt, temperature_K=temperature, taut=taut * units.fs, rng=rng)
        return VelocityVerlet(atoms, timestep=dt)

    watch = BondWatch(atoms) if watch_bonds else None
    trajectory.unlink(missing_ok=True)
    log: list[dict] = []
    state = {"blew_up": False, "reacted": False, "uncertain": False, "interrupted": False, "reason": None, "changes": []}
    committee = hasattr(atoms.calc, "members")
    log_file = open(log_path, "w", newline="") if log_path else None
    log_writer = csv.DictWriter(log_file, fieldnames=LOG_COLUMNS + [SPREAD_COLUMN] * committee) if log_file else None
    if log_writer:
        log_writer.writeheader()

    def stop(reason: str, reacted: bool = False, uncertain: bool = False):
        state["blew_up"] = not (reacted or uncertain)
        state["reacted"], state["uncertain"], state["reason"] = reacted, uncertain, reason
        raise StopIteration

    def check(dyn, t_fs: float):
        epot, temp = atoms.get_potential_energy(), atoms.get_temperature()
        if not (np.isfinite(epot) and np.isfinite(atoms.positions).all()):
            stop(f"non-finite energy or positions at {t_fs:g} fs")
        if temp > 10 * temperature + 1000:
            stop(f"temperature reached {temp:.0f} K at {t_fs:g} fs")
        if committee and max_spread is not None and atoms.calc.results["max_force_spread"] > max_spread:
            stop(f"committee force spread {atoms.calc.results['max_force_spread']:.2f} eV/Å above {max_spread:g} at "
                 f"{t_fs:g} fs", uncertain=True)
        change = watch.step(atoms) if watch else None  # with reactions allowed, each change is reported once
        if change is not None:
            if not allow_reactions:
                stop(f"{change} at {t_fs:g} fs", reacted=True)
            state["changes"].append(f"{change} at {t_fs:g} fs")

    def record(dyn):
        t_fs = dyn.nsteps * timestep
        try:
            check(dyn, t_fs)
        except StopIteration:
            if state["reacted"] or state["uncertain"]:  # keep the frame that shows why
                write_row(t_fs)
            raise
        write_row(t_fs)

    def write_row(t_fs):
        epot, ekin = atoms.get_potential_energy(), atoms.get_kinetic_energy()
        row = dict(time_fs=t_fs, potential_eV=epot, kinetic_eV=ekin, total_eV=epot + ekin,
                   temperature_K=atoms.get_temperature())
        if committee:
            row[SPREAD_COLUMN] = atoms.calc.results["max_force_spread"]
        write(trajectory, atoms, format="extxyz", append=True)  # the frame first: no log row without its frame
        log.append(row)
        if log_writer:
            log_writer.writerow(row)
            log_file.flush()

    def advance(dyn, total, bar, on_block):
        while dyn.nsteps < total:
            n = min(log_every, total - dyn.nsteps)
            dyn.run(n)
            bar.update(n)
            on_block(dyn)

    dyn = None
    try:
        try:
            if equilibrate > 0:
                eq = integrator("langevin")
                with tqdm(total=equilibrate, desc="equilibrate (Langevin)", unit="step", disable=not progress) as bar:
                    advance(eq, equilibrate, bar, lambda d: check(d, -(equilibrate - d.nsteps) * timestep))
            dyn = integrator(ensemble)
            with tqdm(total=steps, desc=f"MD ({ensemble})", unit="step", disable=not progress) as bar:
                record(dyn)
                advance(dyn, steps, bar, record)
        except StopIteration:
            pass
        except ChemzooError as e:  # e.g. atoms collapsing onto each other mid-run: a blow-up, frames kept
            t_fs = (dyn.nsteps * timestep) if dyn is not None else 0.0
            state["blew_up"], state["reason"] = True, f"at {t_fs:g} fs: {e}"
        except KeyboardInterrupt:
            t_fs = (dyn.nsteps * timestep) if dyn is not None else 0.0
            state["interrupted"], state["reason"] = True, f"interrupted at {t_fs:g} fs"
    finally:
        if log_file:
            log_file.close()
    return MDResult(log, len(log), state["blew_up"], state["reason"], reacted=state["reacted"],
                    uncertain=state["uncertain"], bond_changes=state["changes"], interrupted=state["interrupted"])


def plot_energies(path: Path, log: list[dict], n_atoms: int, title: str) -> None:
    """PNG against time (fs): potential and kinetic energy (eV, each from its start), the total-energy
    drift (meV/atom) and the temperature (K). A matplotlib ``Figure`` without pyplot: no backend or
    other process-wide state is touched."""
    from matplotlib.figure import Figure

    t = [r["time_fs"] for r in log]
    fig = Figure(figsize=(7, 7), layout="tight")
    ax, ax_drift, ax_t = fig.subplots(3, 1, sharex=True, height_ratios=[2, 1, 1])
    for key, label in (("potential_eV", "potential"), ("kinetic_eV", "kinetic")):
        ax.plot(t, [r[key] - log[0][key] for r in log], label=label)
    ax.set_ylabel("E − E(0) (eV)")
    ax.legend(loc="best")
    ax.set_title(title)
    ax_drift.plot(t, [1000 * (r["total_eV"] - log[0]["total_eV"]) / n_atoms for r in log], color="black")
    ax_drift.set_ylabel("total drift\n(meV/atom)")
    ax_t.plot(t, [r["temperature_K"] for r in log], color="tab:red")
    ax_t.set_ylabel("temperature (K)")
    ax_t.set_xlabel("time (fs)")
    save_figure(fig, path, dpi=120)
