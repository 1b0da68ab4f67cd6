"""A committee of potentials: the mean energy and forces, and how much the members disagree.

The spread of independently trained models is a cheap error estimate (query by committee): where
the members disagree, at least some of them are wrong. ``results`` holds, besides the mean
``energy`` (eV) and ``forces`` (eV/Å):

- ``energy_std``       standard deviation of the members' energies (eV)
- ``forces_std``       per atom and component standard deviation of the members' forces, (N, 3) eV/Å
- ``max_force_spread`` max over atoms of sqrt(sum over components of forces_std^2) (eV/Å), the
  number ``chemzoo md --committee`` logs and can stop on
"""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from chemzoo.errors import ChemzooError
from chemzoo.potentials.calculator import ChemzooCalculator


class CommitteeCalculator(Calculator):
    """ASE calculator averaging several ``ChemzooCalculator`` members (each keeps its own checks)."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, members: list[ChemzooCalculator], **kwargs):
        super().__init__(**kwargs)
        if len(members) < 2:
            raise ChemzooError("a committee needs at least two potentials")
        self.members = members
        self.model_name = "committee(" + ", ".join(m.model_name for m in members) + ")"
        self.min_distance = max(m.min_distance for m in members)
        self.elements = sorted(set.intersection(*(set(m.elements) for m in members)))

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        energies, forces, stresses = [], [], []
        for member in self.members:
            member.calculate(self.atoms, properties, system_changes)
            energies.append(member.results["energy"])
            forces.append(member.results["forces"])
            if "stress" in member.results:
                stresses.append(member.results["stress"])
        energies, forces = np.array(energies), np.array(forces)
        forces_std = forces.std(axis=0)
        self.results = {"energy": float(energies.mean()), "free_energy": float(energies.mean()),
                        "forces": forces.mean(axis=0), "energy_std": float(energies.std()),
                        "forces_std": forces_std,
                        "max_force_spread": float(np.sqrt((forces_std**2).sum(axis=1)).max()) if len(forces_std) else 0.0}
        if stresses:
            self.results["stress"] = np.mean(stresses, axis=0)
