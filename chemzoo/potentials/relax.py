"""Geometry optimisation of many structures at once: ASE's LBFGS or FIRE per structure, forces batched.

Every structure keeps its own ASE optimizer; each round, the forces of all structures not yet relaxed are
evaluated in batched passes (``ChemzooCalculator.evaluate``), set as each structure's single-point results and
read by its optimizer's ``step``, so the path is ASE's own (same convergence test, same steps) at the cost of
few large model calls instead of many small ones. Units: eV, Å, eV/Å.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.optimize import FIRE, LBFGS
from tqdm.auto import tqdm

from chemzoo.errors import ChemzooError

OPTIMIZERS = {"lbfgs": LBFGS, "fire": FIRE}


def relax_many(calc, structures: list[Atoms], fmax: float = 0.05, steps: int = 500, optimizer: str = "lbfgs",
               batch_size: int = 64, progress: bool | None = None) -> list[Atoms]:
    """Relax copies of ``structures`` until every atom's force is below ``fmax`` (eV/Å) or ``steps`` optimizer
    steps are taken. Each copy carries its final energy and forces (a ``SinglePointCalculator``) and in
    ``info``: ``relaxed`` (converged), ``optimizer_steps``, ``fmax``, ``model``."""
    if optimizer not in OPTIMIZERS:
        raise ChemzooError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    frames = [a.copy() for a in structures]
    for atoms in frames:
        atoms.calc = None
    optimizers = [OPTIMIZERS[optimizer](atoms, logfile=None) for atoms in frames]
    for opt in optimizers:
        opt.fmax = fmax  # what ``Optimizer.run(fmax=...)`` sets before its convergence test
    taken = np.zeros(len(frames), dtype=int)
    converged = np.zeros(len(frames), dtype=bool)
    active = list(range(len(frames)))
    with tqdm(total=len(frames), desc="relaxing", unit="structure",
              disable=not (progress if progress is not None else len(frames) > 1)) as bar:
        while active:
            results = calc.evaluate([frames[k] for k in active], batch_size=batch_size, progress=False)
            still = []
            for k, r in zip(active, results):
                frames[k].calc = SinglePointCalculator(frames[k], energy=r["energy"], forces=r["forces"])
                converged[k] = optimizers[k].converged()  # reads the forces just set
                if converged[k] or taken[k] >= steps:
                    bar.update()
                    continue
                optimizers[k].step()
                taken[k] += 1
                still.append(k)
            active = still
    for atoms, ok, n in zip(frames, converged, taken):
        atoms.info.update(relaxed=bool(ok), optimizer_steps=int(n), fmax=fmax, model=calc.model_name)
    return frames
