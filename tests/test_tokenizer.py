"""The SELFIES tokenizer: the published ChemGPT format, built from a corpus, unknown symbols."""

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from chemzoo.errors import InvalidMoleculeError
from chemzoo.lm.molecules import canonical_smiles, selfies_to_smiles, smiles_to_selfies
from chemzoo.lm.tokenizer import (SPECIAL_TOKENS, build_tokenizer, decode_selfies, encode, load_tokenizer,
                                  out_of_vocabulary)

DATA = Path(__file__).parent / "data"
from .conftest import REFERENCE_TOKENIZER as REFERENCE


@pytest.fixture(scope="module")
def test_selfies():
    return [smiles_to_selfies(s) for s in (DATA / "moses_test_1k.smi").read_text().split()]


@pytest.mark.skipif(not REFERENCE.exists(), reason="needs ../shared/reference (the project's reference files)")
def test_published_tokenizer_gives_the_same_ids_as_autotokenizer(test_selfies):
    ours, reference = load_tokenizer(REFERENCE), AutoTokenizer.from_pretrained(REFERENCE)
    assert len(ours) == 669
    for s in test_selfies + ["[C][Xe][=N][Branch1]"]:
        assert ours(s)["input_ids"] == reference(s)["input_ids"], s
    assert [ours.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert (ours.pad_token_id, ours.bos_token_id, ours.eos_token_id) == (1, 2, 3)


def test_built_tokenizer_round_trips_through_save_pretrained(tmp_path, test_selfies):
    tok = build_tokenizer(test_selfies)
    tok.save_pretrained(tmp_path)
    auto, ours = AutoTokenizer.from_pretrained(tmp_path), load_tokenizer(tmp_path)
    for s in test_selfies[:200]:
        ids = encode(tok, s, strict=True)
        assert ids[0] == 2 and ids[-1] == 3
        assert auto(s)["input_ids"] == ids == ours(s)["input_ids"]
        assert decode_selfies(tok, ids) == s


def test_vocabulary_is_specials_then_symbols_by_frequency(test_selfies):
    tok = build_tokenizer(test_selfies)
    vocab = tok.get_vocab()
    assert [vocab[t] for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert vocab["[C]"] == 5  # carbon is the most frequent SELFIES symbol in MOSES
    assert not any(t.startswith("##") for t in vocab)
    assert build_tokenizer(test_selfies).get_vocab() == vocab  # deterministic


def test_unknown_symbol_warns_and_encodes_as_unk(test_selfies):
    tok = build_tokenizer(test_selfies)
    assert out_of_vocabulary(tok, "[C][Xe][C]") == ["[Xe]"]
    with pytest.warns(UserWarning, match=r"\[Xe\].*\[UNK\]"):
        ids = encode(tok, "[C][Xe][C]")
    assert ids == [2, tok.convert_tokens_to_ids("[C]"), 0, tok.convert_tokens_to_ids("[C]"), 3]


def test_unknown_symbol_is_an_error_when_building_training_data(test_selfies):
    tok = build_tokenizer(test_selfies)
    with pytest.raises(InvalidMoleculeError, match=r"\[Xe\].*rebuild the tokenizer"):
        encode(tok, "[C][Xe][C]", strict=True)


@pytest.mark.parametrize("bad", ["CCO", "[C][C", ""])
def test_invalid_selfies_is_rejected(bad):
    with pytest.raises(InvalidMoleculeError, match="invalid SELFIES"):
        build_tokenizer([bad])


def test_smiles_selfies_round_trip_is_canonical():
    for smi in (DATA / "moses_test_1k.smi").read_text().split()[:300]:
        assert selfies_to_smiles(smiles_to_selfies(smi)) == canonical_smiles(smi)
    with pytest.raises(InvalidMoleculeError, match="invalid SMILES 'C1CC'"):
        smiles_to_selfies("C1CC")
