"""The ChemGPT SELFIES tokenizer: a ``PreTrainedTokenizerFast`` in the published format.

WordPiece over SELFIES symbols, split by the regex ``\\[(.*?)\\]`` (isolated), template
``[CLS] A [SEP]``, specials ``[UNK] [PAD] [CLS] [SEP] [MASK]`` = 0..4. The published
checkpoints' tokenizer (``ncfrey/litmatter``) declares no special tokens in its config, so
:func:`load_tokenizer` sets them explicitly; ids are identical to ``AutoTokenizer`` on the
same folder.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from chemzoo.errors import InvalidMoleculeError
from chemzoo.lm.molecules import split_selfies

SPECIAL_TOKENS = ("[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]")
UNK_ID, PAD_ID, CLS_ID, SEP_ID, MASK_ID = range(5)
SELFIES_REGEX = r"\[(.*?)\]"


def _wrap(backend: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        bos_token="[CLS]",
        eos_token="[SEP]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def build_tokenizer(selfies: Iterable[str], min_frequency: int = 1) -> PreTrainedTokenizerFast:
    """Build a ChemGPT-format tokenizer whose vocabulary is every SELFIES symbol in ``selfies``.

    Symbols seen fewer than ``min_frequency`` times are left out (they encode as ``[UNK]``).
    Ids follow frequency (most frequent first, ties alphabetical), so the build is deterministic.
    Raises InvalidMoleculeError for a string that is not SELFIES.
    """
    counts: Counter[str] = Counter()
    for s in selfies:
        counts.update(split_selfies(s))
    symbols = sorted((sym for sym, c in counts.items() if c >= min_frequency), key=lambda sym: (-counts[sym], sym))
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for sym in symbols:
        vocab.setdefault(sym, len(vocab))

    backend = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(SELFIES_REGEX), behavior="isolated")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", CLS_ID), ("[SEP]", SEP_ID)],
    )
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    for i, tok in enumerate(SPECIAL_TOKENS):
        backend.add_special_tokens([tok])
        assert backend.token_to_id(tok) == i
    return _wrap(backend)


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    """Load a ChemGPT tokenizer folder (``tokenizer.json``), ours or the published one."""
    backend = Tokenizer.from_file(str(Path(path) / "tokenizer.json"))
    for i, tok in enumerate(SPECIAL_TOKENS):
        if backend.token_to_id(tok) != i:
            raise InvalidMoleculeError(
                f"{path}/tokenizer.json is not a ChemGPT tokenizer: {tok} should have id {i}"
            )
    return _wrap(backend)


def out_of_vocabulary(tokenizer: PreTrainedTokenizerFast, selfies: str) -> list[str]:
    """The SELFIES symbols of ``selfies`` that the tokenizer would encode as ``[UNK]``."""
    vocab = tokenizer.get_vocab()
    return [sym for sym in split_selfies(selfies) if sym not in vocab]


def encode(tokenizer: PreTrainedTokenizerFast, selfies: str, strict: bool = False) -> list[int]:
    """Token ids ``[CLS] ... [SEP]`` for one SELFIES string.

    Unknown symbols become ``[UNK]`` with a warning, or raise InvalidMoleculeError when
    ``strict`` (used when building training data, where a silent ``[UNK]`` would be a bug).
    """
    oov = out_of_vocabulary(tokenizer, selfies)
    if oov:
        msg = f"SELFIES symbols not in the tokenizer's vocabulary: {', '.join(sorted(set(oov)))}"
        if strict:
            raise InvalidMoleculeError(msg + "; rebuild the tokenizer on a corpus that contains them")
        warnings.warn(msg + "; they are encoded as [UNK]", stacklevel=2)
    return tokenizer(selfies)["input_ids"]


def decode_selfies(tokenizer: PreTrainedTokenizerFast, ids: Iterable[int]) -> str:
    """The SELFIES string for token ids, specials dropped (the WordPiece decoder would add spaces);
    WordPiece continuation pieces (``##x``, in the published vocabulary) are glued on."""
    tokens = tokenizer.convert_ids_to_tokens([i for i in ids if i >= len(SPECIAL_TOKENS)])
    return "".join(t[2:] if t.startswith("##") else t for t in tokens)
