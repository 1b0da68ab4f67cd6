"""Covalent bond graphs, and a watch that tells when MD changed one (a collapse, a broken bond).

A pair of atoms i, j is bonded at the start when r_ij < 1.2 (R_i + R_j), with R the covalent radii
of ASE (Cordero et al. 2008), in Å. The watch uses hysteresis so thermal vibrations do not count as
reactions: a starting bond breaks only when stretched beyond 1.5 (R_i + R_j) (C-H 1.60 Å, C-C
2.28 Å), and a new bond forms only when a pair comes within 1.1 (R_i + R_j) (H-H 0.70 Å, C-H 1.18 Å).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase.data import covalent_radii

from chemzoo.potentials.graph import neighbour_pairs

BOND_SCALE = 1.2  # bonded at the start below this multiple of the covalent radii sum
BREAK_SCALE = 1.5  # a bond breaks beyond this multiple
FORM_SCALE = 1.1  # a new bond forms below this multiple


def _pair_distances(atoms, scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (i < j) closer than ``scale`` times the largest radii sum present, their distances
    (Å) and radii sums (Å)."""
    radii = covalent_radii[atoms.numbers]
    cutoff = scale * 2 * float(radii.max())
    pairs, shifts = neighbour_pairs(atoms.positions, cutoff, atoms.cell.array, atoms.pbc)
    i, j = pairs
    d = np.linalg.norm(atoms.positions[j] - atoms.positions[i] + shifts @ atoms.cell.array, axis=1)
    keep = i < j
    return np.stack([i[keep], j[keep]], axis=1), d[keep], (radii[i] + radii[j])[keep]


def bond_set(atoms, scale: float = BOND_SCALE) -> set[tuple[int, int]]:
    """Bonded pairs (i, j), i < j: r_ij < ``scale`` (R_i + R_j)."""
    pairs, d, rsum = _pair_distances(atoms, scale)
    return {(int(i), int(j)) for (i, j) in pairs[d < scale * rsum]}


def describe(atoms, i: int, j: int) -> str:
    s = atoms.get_chemical_symbols()
    return f"{s[i]}{i}-{s[j]}{j}"


@dataclass
class BondChange:
    """What changed: ``kind`` is "formed" or "broken", between atoms ``i`` and ``j``, ``distance`` Å."""

    kind: str
    i: int
    j: int
    distance: float
    pair: str

    def __str__(self) -> str:
        return f"bond {self.pair} {self.kind} ({self.distance:.2f} Å)"


class BondWatch:
    """Remembers the bond graph of a starting structure and reports the first change in a later one."""

    def __init__(self, atoms):
        self.bonds = bond_set(atoms)

    def check(self, atoms) -> BondChange | None:
        """The most severe change against the start (None if the bond graph is the same)."""
        pairs, d, rsum = _pair_distances(atoms, BREAK_SCALE)
        near = {(int(i), int(j)): (float(dist), float(r)) for (i, j), dist, r in zip(pairs, d, rsum)}
        formed = [(dist / r, i, j, dist) for (i, j), (dist, r) in near.items()
                  if (i, j) not in self.bonds and dist < FORM_SCALE * r]
        if formed:
            _, i, j, dist = min(formed)
            return BondChange("formed", i, j, dist, describe(atoms, i, j))
        broken = [(i, j) for (i, j) in self.bonds if (i, j) not in near or near[(i, j)][0] > BREAK_SCALE * near[(i, j)][1]]
        if broken:
            i, j = broken[0]
            dist = float(atoms.get_distance(i, j, mic=bool(atoms.pbc.any())))
            return BondChange("broken", i, j, dist, describe(atoms, i, j))
        return None

    def accept(self, change: BondChange) -> None:
        """Go on from the graph with ``change`` in it (a run that allows reactions), so that each change is
        reported once. Only that bond changes: a graph re-derived from the current, hot geometry would drop
        every bond then stretched past 1.2 (R_i + R_j) and report it "formed" when it next vibrates back."""
        (self.bonds.add if change.kind == "formed" else self.bonds.discard)((change.i, change.j))

    def step(self, atoms) -> BondChange | None:
        """``check`` a new frame and ``accept`` its change, if any: the watch of a run that goes on through
        reactions, each change returned once."""
        change = self.check(atoms)
        if change is not None:
            self.accept(change)
        return change
