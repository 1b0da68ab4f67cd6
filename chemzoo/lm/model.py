"""ChemGPT checkpoints: a Hugging Face folder (config.json, model.safetensors, generation_config.json,
tokenizer files, README.md card) plus chemzoo's ``chemzoo.json`` (training metadata) and, when the
training set is known, ``training_set.npy`` (sorted 64-bit hashes of its canonical SMILES, for novelty).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import GenerationConfig, GPTNeoForCausalLM, PreTrainedTokenizerFast

from chemzoo.files import METADATA_FILE, write_atomically, write_metadata
from chemzoo.lm.tokenizer import CLS_ID, PAD_ID, SEP_ID, load_tokenizer

TRAINING_SET_FILE = "training_set.npy"


def smiles_hash(canonical: str) -> int:
    """A 64-bit hash of a canonical SMILES (blake2b), as stored in ``training_set.npy``."""
    return int.from_bytes(hashlib.blake2b(canonical.encode(), digest_size=8).digest(), "little", signed=True)


@dataclass
class ChemGPT:
    """A loaded ChemGPT: the GPT-Neo model, its tokenizer, and what chemzoo knows of its training."""

    model: GPTNeoForCausalLM
    tokenizer: PreTrainedTokenizerFast
    path: Path
    metadata: dict = field(default_factory=dict)
    training_hashes: np.ndarray | None = None

    @property
    def name(self) -> str:
        return self.metadata.get("name", self.path.name)

    @property
    def num_parameters(self) -> int:
        return self.model.num_parameters()

    @property
    def sampling_temperature(self) -> float:
        """The temperature samplers use unless told otherwise: ``generation_config.json``'s (1.0 if it sets none)."""
        return float(getattr(self.model.generation_config, "temperature", None) or 1.0)

    def in_training_set(self, canonical: list[str]) -> np.ndarray:
        """Boolean mask: which canonical SMILES the model was trained on (all False when unknown)."""
        if self.training_hashes is None:
            return np.zeros(len(canonical), dtype=bool)
        h = np.array([smiles_hash(s) for s in canonical], dtype=np.int64)
        return np.isin(h, self.training_hashes, assume_unique=False)


def load_chemgpt(path: str | Path, device: str = "cpu", dtype: str = "float32") -> ChemGPT:
    """Load a ChemGPT folder (ours or the published ``ncfrey/ChemGPT-*`` layout) from safetensors, in
    ``dtype`` (float32, bfloat16 or float16).

    The published configs carry GPT-Neo's bos/eos id 50256, outside the 669-entry vocabulary; the
    tokenizer's [CLS]/[SEP] are the real start and end, so those are set on the loaded config.
    """
    from chemzoo.hub import check_finite_weights, read_safetensors

    path = Path(path)
    for weights in sorted(path.glob("*.safetensors")):
        read_safetensors(weights, header_only=True)  # a truncated file: one line naming it
    model = GPTNeoForCausalLM.from_pretrained(path, use_safetensors=True)
    check_finite_weights(model.named_parameters(), path)
    model.config.bos_token_id, model.config.eos_token_id, model.config.pad_token_id = CLS_ID, SEP_ID, PAD_ID
    model.generation_config.bos_token_id, model.generation_config.eos_token_id = CLS_ID, SEP_ID
    model.generation_config.pad_token_id = PAD_ID
    model.to(device=device, dtype=getattr(torch, dtype)).eval()
    meta_file = path / METADATA_FILE
    metadata = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    hashes_file = path / TRAINING_SET_FILE
    hashes = np.load(hashes_file, allow_pickle=False) if hashes_file.exists() else None
    return ChemGPT(model, load_tokenizer(path), path, metadata, hashes)


def set_sampling_temperature(path: str | Path, temperature: float) -> None:
    """Write ``temperature`` into a checkpoint's ``generation_config.json`` (what ``chemzoo sample`` and
    ``transformers``' ``generate`` use by default); the caller re-checksums the folder (``write_metadata``)."""
    if not 0 < temperature < float("inf"):
        raise ValueError(f"temperature must be a positive number, got {temperature}")
    config = GenerationConfig.from_pretrained(path)
    config.temperature = float(temperature)
    config.save_pretrained(path)


def save_chemgpt(path: str | Path, model: GPTNeoForCausalLM, tokenizer: PreTrainedTokenizerFast,
                 metadata: dict, training_smiles: list[str] | None = None, card: str | None = None) -> Path:
    """Write a checkpoint folder that ``AutoModelForCausalLM.from_pretrained`` opens without custom code."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.config.bos_token_id, model.config.eos_token_id, model.config.pad_token_id = CLS_ID, SEP_ID, PAD_ID
    model.generation_config = GenerationConfig(bos_token_id=CLS_ID, eos_token_id=SEP_ID, pad_token_id=PAD_ID,
                                               do_sample=True, max_length=model.config.max_position_embeddings)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    if training_smiles is not None:
        hashes = np.unique(np.array([smiles_hash(s) for s in training_smiles], dtype=np.int64))
        np.save(path / TRAINING_SET_FILE, hashes, allow_pickle=False)
    write_metadata(path, metadata)  # after every file it checksums
    if card is not None:
        write_atomically(path / "README.md", card)
    return path
