"""The ASE calculator: the only place that talks to ``ase.Atoms`` (eV, Å, eV/Å, eV/Å^3)."""

from __future__ import annotations

import warnings

import numpy as np
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
from ase.data import chemical_symbols
from ase.stress import full_3x3_to_voigt_6_stress
from tqdm.auto import tqdm

from chemzoo.errors import ChecksumError, ChemzooError
from chemzoo.potentials.graph import Graph, build_graph, collate, neighbour_pairs
from chemzoo.potentials.model import DTYPES, Potential


class InvalidStructureError(ChemzooError, ValueError):
    """A structure the potential must not be evaluated on (unknown element, clashing atoms, NaN)."""


MAX_COORDINATE = 1e6  # Å: a structure a millimetre across is a unit mistake


MAX_PAIRS = 5e7  # pairs within the cutoff a neighbour list may hold before memory runs out


def check_structure(atoms, elements: list[int], min_distance: float, cutoff: float | None = None) -> None:
    """Refuse what would give a silently wrong answer or kill the process: unsupported elements, NaN/inf, far
    coordinates, a periodic cell so small against ``cutoff`` (Å) that its images would not fit in memory,
    overlapping atoms."""
    numbers = atoms.numbers
    unknown = sorted({chemical_symbols[z] for z in numbers if z not in set(elements)})
    if unknown:
        raise InvalidStructureError(f"element(s) {', '.join(unknown)} not supported by this potential; "
                                    f"it was trained on {' '.join(chemical_symbols[z] for z in elements)}")
    positions = atoms.positions
    if not np.isfinite(positions).all():
        raise InvalidStructureError("positions contain NaN or infinite values")
    if np.abs(positions).max(initial=0.0) > MAX_COORDINATE:  # vesin's cell grid overflows (the process dies) far out
        raise InvalidStructureError(f"a coordinate is {np.abs(positions).max():.3g} Å from the origin, beyond "
                                    f"{MAX_COORDINATE:g} Å; check the units (Å) or centre the structure")
    cell = atoms.cell.array
    if not np.isfinite(cell).all() or np.abs(cell).max(initial=0.0) > MAX_COORDINATE:
        raise InvalidStructureError(f"the cell holds NaN, infinite or absurd (> {MAX_COORDINATE:g} Å) lengths")
    if atoms.pbc.any() and abs(atoms.cell.volume) < 1e-6:
        raise InvalidStructureError("periodic structure with a zero-volume cell; set atoms.cell")
    if atoms.pbc.any() and cutoff is not None:
        volume = abs(atoms.cell.volume)
        widths = [volume / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])) for k in range(3)]
        images = np.prod([2 * np.ceil(cutoff / w) + 1 for w, periodic in zip(widths, atoms.pbc) if periodic])
        n = max(len(atoms), 1)
        # pairs within the cutoff: at most every atom with every image of every atom, and about the number of
        # atoms in a cutoff sphere at the cell's density (what grows without bound as the cell shrinks)
        pairs = min(images * n**2, n**2 / volume * 4 / 3 * np.pi * cutoff**3)
        if pairs > MAX_PAIRS:
            raise InvalidStructureError(f"the periodic cell is too small for the {cutoff:g} Å cutoff (narrowest width "
                                        f"{min(w for w, p in zip(widths, atoms.pbc) if p):.3g} Å: {images:.3g} images); "
                                        "check the cell (Å) or repeat the structure")
    check_clashes(atoms, min_distance)


def check_clashes(atoms, min_distance: float, neighbours=None) -> None:
    """Refuse atoms closer than ``min_distance`` Å. ``neighbours``: (pairs, integer shifts) from
    ``neighbour_pairs`` at a cutoff >= ``min_distance``, to reuse a list built anyway."""
    if min_distance <= 0 or len(atoms) < 2:
        return
    positions, numbers = atoms.positions, atoms.numbers
    pairs, shifts = neighbours or neighbour_pairs(positions, min_distance, atoms.cell.array, atoms.pbc)
    if not pairs.shape[1]:
        return
    i, j = pairs
    d = np.linalg.norm(positions[j] - positions[i] + shifts @ atoms.cell.array, axis=1)
    k = int(np.argmin(d))
    if d[k] < min_distance:
        i, j = int(i[k]), int(j[k])
        raise InvalidStructureError(
            f"atoms {i} ({chemical_symbols[numbers[i]]}) and {j} ({chemical_symbols[numbers[j]]}) are {d[k]:.2f} Å apart, "
            f"closer than {min_distance} Å; fix the structure (or lower min_distance)")


def closest_contact_table(closest: dict[str, float] | None) -> np.ndarray | None:
    """The training minima ("C-H" -> Å) as a (119, 119) table by atomic numbers, 0 where unknown."""
    if not closest:
        return None
    table = np.zeros((119, 119))
    for pair, value in closest.items():
        a, b = (chemical_symbols.index(x) for x in pair.split("-"))
        table[a, b] = table[b, a] = value
    return table


ASE_KEYWORDS = {"restart", "ignore_bad_restart_file", "label", "atoms", "directory"}  # Calculator.__init__'s own


def check_neutral(atoms) -> None:
    """Refuse a structure carrying a net charge or unpaired spins (``Atoms`` initial charges / magnetic moments):
    the potentials know only neutral closed-shell molecules."""
    charge = float(atoms.get_initial_charges().sum())
    if abs(charge) > 1e-6:
        raise ChemzooError(f"the structure has a net charge of {charge:+g} e (its initial charges); chemzoo potentials "
                           "were trained on neutral closed-shell molecules only")
    spin = float(np.abs(atoms.get_initial_magnetic_moments()).sum())
    if spin > 1e-6:
        raise ChemzooError(f"the structure has initial magnetic moments (total |m| = {spin:g}); chemzoo potentials "
                           "were trained on closed-shell molecules only")


class ChemzooCalculator(Calculator):
    """ASE calculator for a chemzoo ``Potential``: energy, free_energy, forces; stress for periodic cells.

    Inference only: it puts the potential in eval mode and freezes its parameters (``requires_grad``
    False), which lets SchNet and PaiNN take their hand-written backward passes (``schnet_fused``,
    ``painn_fused``)."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, potential: Potential, device: str = "cpu", dtype: str = "float32", min_distance: float = 0.5,
                 charge: float = 0, **kwargs):
        if charge:
            raise ChemzooError(f"charge={charge!r}: chemzoo potentials were trained on neutral closed-shell molecules "
                               "(GFN2-xTB, charge 0) and cannot describe ions; use a method that handles ions, such as GFN2-xTB itself")
        unknown = sorted(set(kwargs) - ASE_KEYWORDS)
        if unknown:
            raise ChemzooError(f"unknown calculator option(s) {', '.join(unknown)}; it takes device, dtype, min_distance "
                               f"and ASE's {', '.join(sorted(ASE_KEYWORDS))}")
        super().__init__(**kwargs)
        if dtype not in DTYPES:
            raise ChemzooError(f"unknown dtype {dtype!r}; use float32 or float64")
        if dtype not in potential.config.dtypes:
            raise ChemzooError(f"this potential cannot run in {dtype}; it supports {', '.join(potential.config.dtypes)}")
        self.potential = potential.to(device=device, dtype=DTYPES[dtype]).frozen()  # inference only
        self.device, self.dtype, self.min_distance = device, DTYPES[dtype], min_distance
        self.model_name = "potential"  # the registered name or folder, set by ``calculator()``
        # the highest temperature (K) at which held-out MD kept every covalent bond (its card; 0: tested and not
        # safe; None: never tested in MD), set by ``calculator()`` from chemzoo.json; read by ``chemzoo md``
        self.md_safe_K: float | None = None
        self.elements = list(potential.config.elements)  # atomic numbers it was trained on
        self.warned_contact = False  # the closer-than-training warning is given once per calculator
        self.closest = closest_contact_table(potential.config.min_distances)

    def graph(self, atoms) -> Graph:
        """The checked graph of one structure (elements, NaN, far coordinates, cell, charge, clashes)."""
        config = self.potential.config
        check_structure(atoms, config.elements, min_distance=0, cutoff=max(config.cutoff, self.min_distance))
        check_neutral(atoms)
        # one neighbour list serves the clash check and the graph
        neighbours = neighbour_pairs(atoms.positions, max(config.cutoff, self.min_distance), atoms.cell.array, atoms.pbc)
        check_clashes(atoms, self.min_distance, neighbours)
        if self.closest is not None and not self.warned_contact:
            self.warn_closer_than_training(atoms, neighbours, config.min_distances)
        return build_graph(atoms.numbers, atoms.positions, config.cutoff, atoms.cell.array, atoms.pbc, dtype=self.dtype,
                           neighbours=neighbours if config.cutoff >= self.min_distance else None)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        periodic = bool(atoms.pbc.any())
        if "stress" in properties and not periodic:
            raise PropertyNotImplementedError("stress needs a periodic cell")
        (self.results,) = self._run([self.graph(atoms)], [periodic])

    def evaluate(self, structures, batch_size: int = 64, progress: bool | None = None) -> list[dict]:
        """Energies (eV), forces (eV/Å) and, for periodic cells, stress (eV/Å^3, Voigt) of many ``Atoms`` in
        batched passes of ``batch_size`` structures: the same numbers as the calculator one at a time, faster.
        Every structure is checked first; the error names the structure (by index)."""
        structures = list(structures)
        if batch_size < 1:
            raise ChemzooError(f"batch_size must be a positive integer, got {batch_size!r}")
        graphs = []
        for k, atoms in enumerate(structures):
            try:
                graphs.append(self.graph(atoms))
            except ChemzooError as exc:
                raise type(exc)(f"structure {k}: {exc}") from None
        periodic = [bool(a.pbc.any()) for a in structures]
        out: list[dict] = []
        for start in tqdm(range(0, len(graphs), batch_size), desc="evaluating", unit="batch",
                          disable=not (progress if progress is not None else len(graphs) > 1000)):
            out += self._run(graphs[start : start + batch_size], periodic[start : start + batch_size])
        return out

    def _run(self, graphs: list[Graph], periodic: list[bool]) -> list[dict]:
        graph = (graphs[0] if len(graphs) == 1 else collate(graphs)).to(self.device)
        out = self.potential(graph, forces=True, stress=any(periodic))
        energies = out["energy"].detach().cpu().double().numpy()
        forces = out["forces"].detach().cpu().double().numpy()
        bounds = np.cumsum([0] + [len(g.numbers) for g in graphs])
        results = []
        for k in range(len(graphs)):
            r = {"energy": float(energies[k]), "free_energy": float(energies[k]), "forces": forces[bounds[k]:bounds[k + 1]]}
            if periodic[k]:
                r["stress"] = full_3x3_to_voigt_6_stress(out["stress"][k].detach().cpu().double().numpy())
            results.append(r)
        return results

    def warn_closer_than_training(self, atoms, neighbours, closest: dict[str, float]) -> None:
        """Warn (once) when a pair of atoms is closer than any pair of those elements in the training data."""
        (i, j), shifts = neighbours
        if not len(i):
            return
        d = np.linalg.norm(atoms.positions[j] - atoms.positions[i] + shifts @ atoms.cell.array, axis=1)
        below = np.flatnonzero(d < self.closest[atoms.numbers[i], atoms.numbers[j]])
        if len(below):
            k = below[np.argmin(d[below])]
            a, b = int(i[k]), int(j[k])
            pair = "-".join(sorted((chemical_symbols[atoms.numbers[a]], chemical_symbols[atoms.numbers[b]])))
            self.warned_contact = True
            warnings.warn(f"atoms {a} and {b} ({pair}) are {d[k]:.2f} Å apart, closer than any {pair} pair in this "
                          f"potential's training data ({closest[pair]:.2f} Å): its energy and forces there are an "
                          "extrapolation", stacklevel=4)


def calculator(name_or_path=None, device: str = "cpu", dtype: str = "float32", **kwargs) -> ChemzooCalculator:
    """ASE calculator for a registered potential, a local folder or a hub repo id: locate -> load -> wrap."""
    from chemzoo.loading import locate

    folder, entry, family = locate(name_or_path, "potential")
    calc = ChemzooCalculator(family.loader(folder, device, dtype), device, dtype, **kwargs)
    calc.model_name = entry.name if entry else folder.name
    from chemzoo.hub import read_metadata

    calc.md_safe_K = read_metadata(folder).get("md_safe_K", None)
    check_reference_molecule(calc, folder)
    return calc


# a relaxed methanol (Å): every potential knows H, C and O
REFERENCE = ("C", "O", "H", "H", "H", "H"), ((0.0, 0.0, 0.0), (1.42, 0.0, 0.0), (-0.36, 1.03, 0.0),
                                             (-0.36, -0.51, 0.89), (-0.36, -0.51, -0.89), (1.74, 0.0, 0.91))
MAX_BINDING = 5.0  # eV/atom: |E - sum of the per-element reference energies| of a sound model is ~1 eV/atom


def check_reference_molecule(calc: ChemzooCalculator, folder) -> None:
    """Refuse a model whose energy for a plain molecule is not finite or not plausible: weights that are
    finite but wrong (a corrupt or tampered file, a wrong config) would otherwise give silent nonsense."""
    from ase import Atoms

    config = calc.potential.config
    if not {1, 6, 8} <= set(config.elements):
        return
    atoms = Atoms(*REFERENCE[:1], positions=REFERENCE[1])
    atoms.calc = calc
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    offset = sum(config.reference_energies[config.elements.index(z)] for z in atoms.numbers)
    per_atom = abs(energy - offset) / len(atoms)
    if not (np.isfinite(energy) and np.isfinite(forces).all() and per_atom < MAX_BINDING):
        raise ChecksumError(f"{folder}: the model gives methanol an energy of {energy:.6g} eV ({per_atom:.3g} eV/atom from "
                            "its reference energies); its weights or config are corrupt or were modified: restore them")
    calc.reset()

