"""An out-of-distribution evaluation set: approved drugs that are not in MOSES, sampled by GFN2-xTB MD.

    python -m training.potentials.ood --out tests/data/xtb-drugs-ood      # ~10 min on one core

For reporting only - never for training or for choosing between models. Unlike the MOSES datasets
(RDKit conformers + Gaussian noise), each geometry is a frame of GFN2-xTB Langevin dynamics
(``tblite``, 0.5 fs, friction 0.01/fs) started from an RDKit ETKDG + MMFF94 conformer: the
molecule equilibrates for 100 fs, then 8 frames are kept 25 fs apart. The temperature cycles
300 / 450 / 600 K over the molecules. The molecules are approved drugs with the potentials' elements
(H C N O F S Cl Br), several outside MOSES's own filters (molecular weight 250-350, no charged
atoms): small drugs, thiones, a nitro group, sulfonamides, halogenated rings. Each is checked
absent from MOSES train, test and test_scaffolds (canonical SMILES). Written in the format of
``training.potentials.dataset`` (one ``chunk-00000.npz``, split "test", ``temperature`` = MD
temperature) with a card.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
import numpy as np
from tqdm.auto import tqdm

DRUGS = {
    "aspirin": "CC(=O)Oc1ccccc1C(=O)O",
    "ibuprofen": "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
    "paracetamol": "CC(=O)Nc1ccc(O)cc1",
    "caffeine": "Cn1cnc2c1c(=O)n(C)c(=O)n2C",
    "diclofenac": "OC(=O)Cc1ccccc1Nc1c(Cl)cccc1Cl",
    "fluoxetine": "CNCCC(Oc1ccc(cc1)C(F)(F)F)c1ccccc1",
    "chlorpromazine": "CN(C)CCCN1c2ccccc2Sc2ccc(Cl)cc21",
    "sulfamethoxazole": "Cc1cc(NS(=O)(=O)c2ccc(N)cc2)no1",
    "clonidine": "Clc1cccc(Cl)c1NC1=NCCN1",
    "tinidazole": "CCS(=O)(=O)CCn1c(C)ncc1[N+](=O)[O-]",
    "ambroxol": "Nc1c(Br)cc(Br)cc1CNC1CCC(O)CC1",
    "flucytosine": "Nc1nc(=O)[nH]cc1F",
    "tioconazole": "Clc1ccc(C(Cn2ccnc2)OCc2ccsc2Cl)c(Cl)c1",
    "metronidazole": "Cc1ncc(n1CCO)[N+](=O)[O-]",
    "propylthiouracil": "CCCc1cc(=O)[nH]c(=S)[nH]1",
    "methimazole": "CN1C=CNC1=S",
    "captopril": "CC(CS)C(=O)N1CCCC1C(=O)O",
    "nicotine": "CN1CCCC1c1cccnc1",
    "lidocaine": "CCN(CC)CC(=O)Nc1c(C)cccc1C",
    "carbamazepine": "NC(=O)N1c2ccccc2C=Cc2ccccc21",
    "chlorzoxazone": "O=c1[nH]c2cc(Cl)ccc2o1",
    "tolbutamide": "CCCCNC(=O)NS(=O)(=O)c1ccc(C)cc1",
    "fluorouracil": "O=c1[nH]cc(F)c(=O)[nH]1",
    "dapsone": "Nc1ccc(cc1)S(=O)(=O)c1ccc(N)cc1",
    "bromhexine": "CN(C1CCCCC1)Cc1cc(Br)cc(Br)c1N",
}
TEMPERATURES = (300.0, 450.0, 600.0)  # K, cycled over the molecules
TIMESTEP = 0.5  # fs
EQUILIBRATE = 200  # steps (100 fs)
FRAMES, EVERY = 8, 50  # frames kept, steps between them (25 fs)


def not_in_moses(drugs: dict[str, str]) -> dict[str, str]:
    """Canonical SMILES of the drugs, after checking none is in MOSES train, test or test_scaffolds."""
    from rdkit import Chem

    from training import moses

    canonical = {name: Chem.MolToSmiles(Chem.MolFromSmiles(smi)) for name, smi in drugs.items()}
    in_moses = moses.find(canonical.values())
    found = [f"{name} (MOSES {split})" for name, smi in canonical.items() for split in in_moses.get(smi, [])]
    if found:
        raise click.ClickException(f"in MOSES: {', '.join(found)}; pick other drugs")
    return canonical


def md_frames(smiles: str, temperature: float, seed: int):
    """FRAMES geometries of GFN2-xTB Langevin MD at ``temperature`` K, with their xTB energy and forces."""
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary
    from tblite.ase import TBLite

    from chemzoo.potentials.md import atoms_from_smiles, thermalize_momenta

    atoms = atoms_from_smiles(smiles, seed)
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0, max_iterations=300)
    rng = np.random.default_rng(seed)
    thermalize_momenta(atoms, temperature, rng=rng)
    Stationary(atoms)
    dyn = Langevin(atoms, timestep=TIMESTEP * units.fs, temperature_K=temperature, friction=0.01 / units.fs,
                   rng=rng, fixcm=False)
    dyn.run(EQUILIBRATE)
    out = []
    for _ in range(FRAMES):
        dyn.run(EVERY)
        out.append((atoms.numbers.copy(), atoms.positions.copy(), float(atoms.get_potential_energy()),
                    atoms.get_forces().copy()))
    return out


@click.command()
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
def main(seed, out):
    """Build the out-of-distribution evaluation set (approved drugs, GFN2-xTB MD frames)."""
    out.mkdir(parents=True, exist_ok=True)
    canonical = not_in_moses(DRUGS)
    start = time.time()
    rows = []
    for index, (name, smi) in enumerate(tqdm(canonical.items(), desc="xTB MD", unit="molecule")):
        temperature = TEMPERATURES[index % len(TEMPERATURES)]
        rows += [(index, temperature, *frame) for frame in md_frames(smi, temperature, seed + index)]
    arrays = dict(
        mol_index=np.array([r[0] for r in rows], dtype=np.int64),
        split=np.array(["test"] * len(rows)),
        n_atoms=np.array([len(r[2]) for r in rows], dtype=np.int32),
        numbers=np.concatenate([r[2] for r in rows]).astype(np.int8),
        positions=np.concatenate([r[3] for r in rows]),
        energy=np.array([r[4] for r in rows]),
        forces=np.concatenate([r[5] for r in rows]),
        temperature=np.array([r[1] for r in rows]),
    )
    np.savez_compressed(out / "chunk-00000.npz", **arrays)
    molecules = [{"mol_index": i, "name": n, "smiles": s, "temperature_K": TEMPERATURES[i % len(TEMPERATURES)]}
                 for i, (n, s) in enumerate(canonical.items())]
    config = dict(seed=seed, timestep_fs=TIMESTEP, equilibrate_steps=EQUILIBRATE, frames=FRAMES, every_steps=EVERY,
                  temperatures_K=list(TEMPERATURES))
    (out / "dataset.json").write_text(json.dumps({"config": config, "molecules": molecules,
                                                  "structures": len(rows)}, indent=2) + "\n")
    table = "\n".join(f"| {m['mol_index']} | {m['name']} | `{m['smiles']}` | {m['temperature_K']:.0f} |" for m in molecules)
    minutes = (time.time() - start) / 60
    (out / "README.md").write_text(f"""# Out-of-distribution evaluation set: approved drugs, GFN2-xTB MD frames

Built by `python -m training.potentials.ood --seed {seed} --out {out.name}` ({minutes:.0f} min). For
reporting only: never used to train a chemzoo potential or to choose between models.

- {len(molecules)} approved drugs with the elements H C N O F S Cl Br, none in MOSES train, test or
  test_scaffolds (canonical SMILES checked): small drugs below MOSES's weight window, thiones, a
  nitro group, sulfonamides, halogenated rings.
- Geometries: GFN2-xTB (`tblite`) Langevin MD from an RDKit ETKDG + MMFF94 conformer, {TIMESTEP} fs steps,
  friction 0.01/fs, {EQUILIBRATE * TIMESTEP:.0f} fs to equilibrate, then {FRAMES} frames {EVERY * TIMESTEP:.0f} fs apart;
  the temperature cycles {' / '.join(f'{t:.0f}' for t in TEMPERATURES)} K over the molecules.
- Labels: GFN2-xTB total energy (eV) and forces (eV/Å) of each frame. {len(rows)} structures, split "test".

| mol_index | drug | canonical SMILES | MD temperature (K) |
|---|---|---|---|
{table}
""")
    click.echo(f"{len(rows)} structures of {len(molecules)} drugs -> {out}")


if __name__ == "__main__":
    main()
