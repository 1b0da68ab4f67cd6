"""ChemGPT size presets: published shapes and CPU shapes, exact parameter counts, plain GPT-Neo configs."""

import pytest
from transformers import GPTNeoForCausalLM

from chemzoo.errors import UnknownModelError
from chemzoo.lm.presets import PRESETS, PUBLISHED, chemgpt_config, parameter_count


@pytest.mark.parametrize("name", ["h16", "h64", "h128", "tiny-l4-h64", "small-l6-h192"])
def test_parameter_count_is_exact(name):
    model = GPTNeoForCausalLM(chemgpt_config(name, vocab_size=669))
    assert parameter_count(PRESETS[name], 669) == model.num_parameters()


def test_published_ladder_spans_the_paper_sizes():
    counts = {name: parameter_count(shape, 669) for name, shape in PUBLISHED.items()}
    assert all(shape.num_layers == 24 and shape.num_heads == 16 for shape in PUBLISHED.values())
    assert counts["h128"] == pytest.approx(4.7e6, rel=0.15)  # ChemGPT-4.7M
    assert counts["h256"] == pytest.approx(19e6, rel=0.15)  # ChemGPT-19M
    assert counts["h2048"] == pytest.approx(1.2e9, rel=0.05)  # ChemGPT-1.2B
    assert sorted(counts.values()) == [counts[f"h{h}"] for h in (16, 32, 64, 128, 256, 512, 1024, 2048)]


def test_config_matches_the_published_attention_layout():
    config = chemgpt_config("h128", vocab_size=669)
    assert config.attention_layers == ["global", "local"] * 12
    assert (config.window_size, config.activation_function, config.bos_token_id, config.eos_token_id) == (256, "gelu_new", 2, 3)
    with pytest.raises(UnknownModelError, match="unknown ChemGPT preset 'h100'"):
        chemgpt_config("h100", 669)
