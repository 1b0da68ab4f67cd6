"""SMILES <-> SELFIES conversion (selfies package) and canonical SMILES (RDKit)."""

from __future__ import annotations

import selfies as sf
from rdkit import Chem, rdBase

from chemzoo.errors import InvalidMoleculeError


def parse_smiles(smiles: str):
    """``Chem.MolFromSmiles`` with RDKit's parse messages blocked for this call only (we report the error
    ourselves); the rest of the process keeps its RDKit logging."""
    with rdBase.BlockLogs():
        return Chem.MolFromSmiles(smiles)


def canonical_smiles(smiles: str, isomeric: bool = True) -> str | None:
    """RDKit canonical SMILES, or None when RDKit cannot parse ``smiles`` (or it is empty); ``isomeric=False``
    drops stereochemistry (the flat graph)."""
    if not smiles:
        return None
    mol = parse_smiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    return Chem.MolToSmiles(mol, isomericSmiles=isomeric)


def smiles_to_selfies(smiles: str) -> str:
    """SELFIES for a SMILES string; raises InvalidMoleculeError naming the SMILES if it is invalid."""
    if canonical_smiles(smiles) is None:
        raise InvalidMoleculeError(f"invalid SMILES {smiles!r}: RDKit cannot parse it")
    try:
        return sf.encoder(smiles, strict=True)
    except sf.EncoderError as exc:
        raise InvalidMoleculeError(f"SMILES {smiles!r} cannot be written as SELFIES: {exc}") from None


def selfies_to_smiles(selfies: str) -> str | None:
    """Canonical SMILES decoded from a SELFIES string, or None if it decodes to nothing."""
    try:
        smiles = sf.decoder(selfies)
    except sf.DecoderError:
        return None
    return canonical_smiles(smiles) if smiles else None


def split_selfies(selfies: str) -> list[str]:
    """The SELFIES symbols of a string (``[C][=O]`` -> ``['[C]', '[=O]']``).

    Raises InvalidMoleculeError when the string is not made of bracketed symbols.
    """
    try:
        symbols = list(sf.split_selfies(selfies))
    except ValueError:
        symbols = []
    if not selfies or "".join(symbols) != selfies:
        raise InvalidMoleculeError(
            f"invalid SELFIES {selfies!r}: expected symbols in brackets, e.g. [C][=O]"
        )
    return symbols
