"""Geometries a potential's own MD visits, for GFN2-xTB to label: one round of active learning.

A potential trained on noise around conformers has never seen where its own MD goes when hot, and
that is where it fails (a stretched C-Br bond it lets go, two hydrogens it lets collapse). The ``md``
recipe of ``training.potentials.dataset`` runs NVE with a potential on each chunk's molecules (all side
by side in one box, one call per step) from Maxwell-Boltzmann velocities at one of ``START_TEMPERATURES``
(by molecule), takes a frame every ``FRAME_FS``, and hands the frames to xTB. A molecule whose MD goes
wrong (a covalent bond formed or broken, two atoms closer than ``MIN_PAIR``) contributes the geometry
where it went wrong - the most useful one to label - and leaves the box.

The ``langevin`` recipe is the thermal counterpart: Langevin dynamics at one of ``THERMAL_TEMPERATURES``
(by molecule; friction ``FRICTION``), ``EQUILIBRATE_FS`` to equilibrate, then a frame every
``THERMAL_FRAME_FS`` - the sampling of the out-of-distribution set (``training.potentials.ood``), but
with the potential moving the atoms (~15x cheaper than GFN2-xTB MD) and xTB labelling the frames: the
correlated, anharmonic thermal motion that Gaussian noise around a conformer does not show.

Units: Å, fs, K.
"""

from __future__ import annotations

import warnings

import numpy as np
from ase import Atoms
from ase.md.langevin import Langevin
from ase.md.verlet import VelocityVerlet
from ase import units

from chemzoo.errors import ChemzooError
from chemzoo.potentials.bonds import BondWatch
from chemzoo.potentials.md import side_by_side

START_TEMPERATURES = (600.0, 1500.0, 2500.0, 3500.0)  # K, NVE starting velocities (equipartition halves them)
TIMESTEP = 0.5  # fs
FRAME_FS = 100.0  # fs between frames of one molecule
SEGMENT_FS = 25.0  # fs between checks of the bond graph
MIN_PAIR = 0.7  # Å, a molecule with two atoms closer than this has gone wrong
THERMAL_TEMPERATURES = (300.0, 450.0, 600.0)  # K, the langevin recipe's thermostat, cycled by molecule
EQUILIBRATE_FS = 100.0  # fs of Langevin before the first frame
THERMAL_FRAME_FS = 25.0  # fs between Langevin frames of one molecule
FRICTION = 0.01  # 1/fs


def start_temperature(mol_index: int) -> float:
    """A molecule's NVE starting temperature (K): the recipe cycles through ``START_TEMPERATURES``."""
    return START_TEMPERATURES[mol_index % len(START_TEMPERATURES)]


def thermal_temperature(mol_index: int) -> float:
    """A molecule's Langevin temperature (K) in the langevin recipe: it cycles through ``THERMAL_TEMPERATURES``."""
    return THERMAL_TEMPERATURES[mol_index % len(THERMAL_TEMPERATURES)]


def closest_pair(positions: np.ndarray) -> float:
    """The smallest interatomic distance (Å) in one molecule."""
    d = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    return float(d[np.triu_indices(len(positions), 1)].min()) if len(positions) > 1 else np.inf


def md_frames(molecules: list[Atoms], temperatures: list[float], per_molecule: int, calculator,
              seed: int = 0, thermostat: bool = False) -> list[list[np.ndarray]]:
    """Up to ``per_molecule`` frames (positions, Å) of each molecule's trajectory under ``calculator`` at its
    temperature (K), and the frame where it went wrong, if it did. NVE from Maxwell-Boltzmann velocities at it, a
    frame every ``FRAME_FS``; or, with ``thermostat``, Langevin at it, a frame every ``THERMAL_FRAME_FS`` after
    ``EQUILIBRATE_FS``."""
    box, owner = side_by_side(molecules, temperatures, seed)
    watches = [BondWatch(m) for m in molecules]
    frames: list[list[np.ndarray]] = [[] for _ in molecules]
    alive = list(range(len(molecules)))
    steps = int(round(SEGMENT_FS / TIMESTEP))
    per_frame = int(round((THERMAL_FRAME_FS if thermostat else FRAME_FS) / SEGMENT_FS))
    before_first = int(round(EQUILIBRATE_FS / SEGMENT_FS)) if thermostat else 0  # segments without a frame
    noise = np.random.default_rng([*np.atleast_1d(seed), 1])  # the thermostat's, apart from the velocities'
    kelvin = np.asarray(temperatures, dtype=float)
    segment = 0
    while alive:
        box.calc = calculator
        saved = box.copy()
        if thermostat:  # per-atom temperatures: each molecule at its own (ASE's Langevin takes an array)
            dynamics = Langevin(box, timestep=TIMESTEP * units.fs, temperature_K=kelvin[owner][:, None],
                                friction=FRICTION / units.fs, fixcm=False, rng=noise)
        else:
            dynamics = VelocityVerlet(box, timestep=TIMESTEP * units.fs)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "closer than training": exactly the geometries wanted here
                dynamics.run(steps)
        except ChemzooError:  # the calculator refused a clash inside the segment: drop the closest molecule
            worst = min(alive, key=lambda m: closest_pair(saved.positions[owner == m]))
            frames[worst].append(saved.positions[owner == worst].copy())
            box, owner, alive = _without(saved, owner, alive, {worst})
            continue
        segment += 1
        done = set()
        for m in alive:
            positions = box.positions[owner == m]
            mol = molecules[m].copy()
            mol.positions = positions
            wrong = (not np.isfinite(positions).all() or closest_pair(positions) < MIN_PAIR
                     or watches[m].check(mol) is not None)
            due = segment > before_first and (segment - before_first) % per_frame == 0
            if (wrong or due) and np.isfinite(positions).all():
                frames[m].append(positions.copy())
            if wrong or len(frames[m]) >= per_molecule:
                done.add(m)
        if done:
            box, owner, alive = _without(box, owner, alive, done)
    return frames


def _without(box: Atoms, owner: np.ndarray, alive: list[int], gone: set[int]):
    """The box without the atoms of the molecules in ``gone`` (positions and momenta kept)."""
    keep = ~np.isin(owner, list(gone))
    return box[keep], owner[keep], [m for m in alive if m not in gone]
