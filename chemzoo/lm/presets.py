"""GPT-Neo shapes for the ChemGPT size ladder, with parameter counts.

The published ChemGPT models are 24 layers deep with 16 heads and hidden sizes from 16 to
2048 (4.7M = 128, 19M = 256, 1.2B = 2048). The ``tiny``/``small`` shapes are shallower so a
ladder can be trained on a CPU. Every preset yields a plain ``GPTNeoConfig``: checkpoints open
with ``AutoModelForCausalLM.from_pretrained`` and need no custom code.
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import GPTNeoConfig

from chemzoo.errors import UnknownModelError
from chemzoo.lm.tokenizer import CLS_ID, PAD_ID, SEP_ID


@dataclass(frozen=True)
class ChemGPTShape:
    """Depth, width and heads of one GPT-Neo model (``window`` = local-attention span, tokens)."""

    hidden_size: int
    num_layers: int
    num_heads: int
    max_positions: int = 2048
    window: int = 256


PUBLISHED = {f"h{h}": ChemGPTShape(h, 24, 16) for h in (16, 32, 64, 128, 256, 512, 1024, 2048)}
CPU_LADDER = {
    "tiny-l2-h32": ChemGPTShape(32, 2, 2, max_positions=256),
    "tiny-l2-h64": ChemGPTShape(64, 2, 4, max_positions=256),
    "tiny-l4-h64": ChemGPTShape(64, 4, 4, max_positions=256),
    "small-l4-h128": ChemGPTShape(128, 4, 8, max_positions=256),
    "small-l6-h192": ChemGPTShape(192, 6, 8, max_positions=256),
    "base-l8-h256": ChemGPTShape(256, 8, 8, max_positions=256),
}
PRESETS: dict[str, ChemGPTShape] = {**PUBLISHED, **CPU_LADDER}


def chemgpt_config(shape: ChemGPTShape | str, vocab_size: int) -> GPTNeoConfig:
    """A ``GPTNeoConfig`` as the published ChemGPT ones (global/local attention, gelu_new, no dropout).

    Unlike the published configs, bos/eos/pad ids point at the tokenizer's ``[CLS]``/``[SEP]``/``[PAD]``.
    """
    if isinstance(shape, str):
        if shape not in PRESETS:
            raise UnknownModelError(f"unknown ChemGPT preset {shape!r}; choose one of {', '.join(PRESETS)}")
        shape = PRESETS[shape]
    if shape.num_layers % 2:
        raise ValueError("GPT-Neo alternates global and local attention: num_layers must be even")
    return GPTNeoConfig(
        vocab_size=vocab_size,
        max_position_embeddings=shape.max_positions,
        hidden_size=shape.hidden_size,
        num_layers=shape.num_layers,
        num_heads=shape.num_heads,
        attention_types=[[["global", "local"], shape.num_layers // 2]],
        window_size=shape.window,
        activation_function="gelu_new",
        embed_dropout=0.0,
        attention_dropout=0.0,
        resid_dropout=0.0,
        bos_token_id=CLS_ID,
        eos_token_id=SEP_ID,
        pad_token_id=PAD_ID,
        tie_word_embeddings=True,
    )


def parameter_count(shape: ChemGPTShape, vocab_size: int) -> int:
    """Trainable parameters of a GPT-Neo with tied embeddings (exact, matches ``model.num_parameters()``)."""
    h, layers = shape.hidden_size, shape.num_layers
    per_layer = 4 * h * h + h + 2 * 4 * h * h + 4 * h + h + 2 * 2 * h  # qkv+out(bias), mlp(biases), 2 LNs
    return vocab_size * h + shape.max_positions * h + layers * per_layer + 2 * h
