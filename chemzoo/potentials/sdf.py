"""Structures to and from SDF (MDL molfile) through RDKit, keeping the chemistry a chemist put in.

Reading keeps each record's bonds, so a relaxed structure is written back with the same bond orders;
structures without bonds (xyz, extxyz, PDB) get theirs perceived from the geometry (RDKit's
``DetermineBonds``, charge 0; connectivity only when no bond orders fit). Coordinates in Å, energies eV.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from ase import Atoms
from rdkit import Chem, rdBase
from rdkit.Chem import rdDetermineBonds

from chemzoo.errors import ChemzooError, InvalidMoleculeError

SDF_SUFFIXES = {".sdf", ".mol", ".sd"}


def read_sdf(path: Path) -> tuple[list[Atoms], list[Chem.Mol]]:
    """Every record of an SDF file as ASE ``Atoms`` (Å) and the RDKit molecule it came from (bonds kept).
    Hydrogens left implicit are added at computed positions (the potentials need every atom); a record
    RDKit cannot read, or a 2D one, is a one-line error naming it."""
    frames, mols = [], []
    with rdBase.BlockLogs():
        supplier = Chem.SDMolSupplier(str(path), removeHs=False)
        for k, mol in enumerate(supplier, start=1):
            if mol is None:
                raise InvalidMoleculeError(f"{path}: record {k} is not a molecule RDKit can read; fix or remove it")
            if mol.GetNumConformers() == 0 or not mol.GetConformer().Is3D():
                raise InvalidMoleculeError(f"{path}: record {k} has 2D coordinates; give 3D coordinates, or its "
                                           "SMILES with --smiles")
            if any(a.GetNumImplicitHs() for a in mol.GetAtoms()):
                mol = Chem.AddHs(mol, addCoords=True)
            atoms = Atoms(numbers=[a.GetAtomicNum() for a in mol.GetAtoms()], positions=mol.GetConformer().GetPositions())
            if mol.HasProp("_Name") and mol.GetProp("_Name").strip():
                atoms.info["name"] = mol.GetProp("_Name").strip()
            frames.append(atoms)
            mols.append(mol)
    if not frames:
        raise ChemzooError(f"{path} holds no molecules")
    return frames, mols


def to_mol(atoms: Atoms, template: Chem.Mol | None = None) -> Chem.Mol:
    """An RDKit molecule at ``atoms``' positions: ``template``'s bonds when given (same atoms, same order),
    else bonds perceived from the geometry."""
    if atoms.pbc.any():
        raise ChemzooError("a periodic structure cannot be written as SDF; write .extxyz")
    if template is not None:
        if [a.GetAtomicNum() for a in template.GetAtoms()] != list(atoms.numbers):
            raise ChemzooError("the structure's atoms differ from its molecule's; cannot write its bonds")
        mol = Chem.Mol(template)
        mol.RemoveAllConformers()
    else:
        xyz = f"{len(atoms)}\n\n" + "".join(f"{s} {x:.8f} {y:.8f} {z:.8f}\n"
                                            for s, (x, y, z) in zip(atoms.get_chemical_symbols(), atoms.positions))
        with rdBase.BlockLogs():
            mol = Chem.MolFromXYZBlock(xyz)
            try:
                rdDetermineBonds.DetermineBonds(mol, charge=0)
            except (ValueError, RuntimeError):  # no closed-shell bond orders fit: keep who is bonded to whom
                mol = Chem.MolFromXYZBlock(xyz)
                rdDetermineBonds.DetermineConnectivity(mol)
        mol.RemoveAllConformers()
    conformer = Chem.Conformer(len(atoms))
    for k, p in enumerate(np.asarray(atoms.positions, dtype=float)):
        conformer.SetAtomPosition(k, p.tolist())
    conformer.Set3D(True)
    mol.AddConformer(conformer, assignId=True)
    return mol


def sdf_text(frames: list[Atoms], templates: list[Chem.Mol | None], properties: list[dict]) -> str:
    """SDF records of ``frames`` (bonds from ``templates`` or perceived), each with ``properties`` as data fields."""
    buf = io.StringIO()
    writer = Chem.SDWriter(buf)
    for k, (atoms, template, props) in enumerate(zip(frames, templates, properties), start=1):
        mol = to_mol(atoms, template)
        mol.SetProp("_Name", str(atoms.info.get("name", f"structure {k}")))
        for key, value in props.items():
            mol.SetProp(key, f"{value:.10g}" if isinstance(value, float) else str(value))
        writer.write(mol)
    writer.close()
    return buf.getvalue()
