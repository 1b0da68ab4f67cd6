"""chemzoo: pretrained deep chemical models at many sizes, offline.

    import chemzoo
    chemzoo.list_models()                       # registered models, bundled/cached/hub
    gpt = chemzoo.load("chemgpt-2.7m-moses-750k")    # a name, a local folder or an owner/name hub id
    samples = chemzoo.sample(gpt, n=100, seed=0)
    scores = chemzoo.score(gpt, ["CCO", "c1ccccc1"])
    atoms.calc = chemzoo.calculator("path/or/name")   # ASE: eV, Å, eV/Å
"""

from __future__ import annotations

import os

from chemzoo.errors import ChecksumError, ChemzooError, InvalidMoleculeError, OfflineError, UnknownModelError
from chemzoo.loading import check_device, list_models
from chemzoo.registry import ModelEntry, default_model

__version__ = "0.1.0"
__all__ = ["list_models", "load", "sample", "score", "calculator", "evaluate", "relax", "default_model", "ModelEntry", "ChemzooError",
           "UnknownModelError", "ChecksumError", "OfflineError", "InvalidMoleculeError"]


def load(name_or_path: str | os.PathLike | None = None, device: str = "cpu", dtype: str | None = None,
         family: str | None = None):
    """Load a model by registry name, local folder or hub repo id (default: the bundled ChemGPT), either family.

    Resolution order for a registered name: bundled in the package, then the Hugging Face cache
    (``HF_HUB_OFFLINE=1`` honoured), then a download; checksums are verified. ``dtype``: float32
    (default), bfloat16 or float16 for a ChemGPT, float32 or float64 for a potential; ``family``
    ("chemgpt", "potential") refuses another family's model with a one-line error.
    """
    from chemzoo.loading import load as _load

    return _load(name_or_path, family, device, dtype)


def calculator(name_or_path: str | os.PathLike | None = None, device: str = "cpu", dtype: str = "float32", **kwargs):
    """ASE calculator (energy, free_energy, forces, stress) for a potential: resolve -> load -> wrap.

    ``dtype`` is "float32" or "float64"; extra keyword arguments go to ``ChemzooCalculator``
    (e.g. ``min_distance`` in Å below which atoms are refused as overlapping). A list of names gives a
    committee (``chemzoo.potentials.committee``): mean energy and forces, and their spread in
    ``results["energy_std"]``, ``results["forces_std"]`` and ``results["max_force_spread"]``.
    """
    from chemzoo.potentials.calculator import calculator as _calculator

    check_device(device)
    if isinstance(name_or_path, (list, tuple)):
        from chemzoo.potentials.committee import CommitteeCalculator

        return CommitteeCalculator([_calculator(n, device=device, dtype=dtype, **kwargs) for n in name_or_path])
    return _calculator(name_or_path, device=device, dtype=dtype, **kwargs)


def evaluate(model, structures, batch_size: int = 64, device: str = "cpu", dtype: str = "float32",
             progress: bool | None = None) -> list[dict]:
    """Energies (eV), forces (eV/Å) and, for periodic cells, stress of many ``ase.Atoms`` in batched passes.

    ``model``: a potential's name or folder (None: the default) or a calculator from ``chemzoo.calculator``.
    Returns one dict per structure (``energy``, ``free_energy``, ``forces``, ``stress``), equal to the
    calculator's one-by-one results.
    """
    from chemzoo.potentials.calculator import ChemzooCalculator

    calc = model if isinstance(model, ChemzooCalculator) else calculator(model, device=device, dtype=dtype)
    return calc.evaluate(structures, batch_size=batch_size, progress=progress)


def relax(model, structures, fmax: float = 0.05, steps: int = 500, optimizer: str = "lbfgs", batch_size: int = 32,
          device: str = "cpu", dtype: str = "float32", progress: bool | None = None) -> list:
    """Relaxed copies of many ``ase.Atoms`` (ASE's LBFGS or FIRE each, forces evaluated in batched passes) until
    every force is below ``fmax`` (eV/Å) or ``steps`` steps; each carries its energy/forces and ``info``
    ``relaxed``, ``optimizer_steps``, ``model``. ``model``: as for ``evaluate``."""
    from chemzoo.potentials.calculator import ChemzooCalculator
    from chemzoo.potentials.relax import relax_many

    calc = model if isinstance(model, ChemzooCalculator) else calculator(model, device=device, dtype=dtype)
    return relax_many(calc, structures, fmax, steps, optimizer, batch_size, progress)


def _chemgpt(model):
    from chemzoo.lm.model import ChemGPT

    return model if isinstance(model, ChemGPT) else load(model, family="chemgpt")


def sample(model=None, n: int = 100, temperature: float | None = None, top_k: int | None = None, top_p: float | None = None,
           seed: int = 0, batch_size: int = 512, max_length: int | None = None, progress: bool = False,
           log_likelihood: bool = False):
    """Sample ``n`` molecules from a ChemGPT (a loaded model or a name), with ``log_likelihood`` each one's
    log-likelihood as sampled (nats); ``temperature=None`` is the model's own (its generation_config.json,
    else 1.0); see ``chemzoo.lm.sampler.sample``."""
    from chemzoo.lm.sampler import sample as _sample

    return _sample(_chemgpt(model), n, temperature, top_k, top_p, seed, batch_size, max_length, progress,
                   log_likelihood)


def score(model, smiles: list[str], batch_size: int = 256, progress: bool = False, strip_stereo: bool = False):
    """Log-likelihood (nats) of each SMILES's canonical SELFIES under a ChemGPT, unknown symbols counted in
    ``n_unk``; ``strip_stereo`` scores the flat graph. See ``chemzoo.lm.scoring.score``."""
    from chemzoo.lm.scoring import score as _score

    return _score(_chemgpt(model), smiles, batch_size, progress, strip_stereo)
