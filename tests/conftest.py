from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root():
    return REPO


@pytest.fixture(scope="session")
def moses_cache():
    """The MOSES data (molsets wheel) in chemzoo's data cache; fetched from PyPI once if missing."""
    from training import moses

    return moses.molsets_wheel()

REFERENCE_TOKENIZER = REPO.parent / "shared" / "reference" / "chemgpt-tokenizer"


@pytest.fixture(scope="session")
def gpt():
    """The bundled default ChemGPT, loaded once."""
    import chemzoo

    return chemzoo.load()
