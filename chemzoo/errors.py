"""Errors a user can act on. Each message is one line saying what is wrong and what to do.

The CLI turns every ``ChemzooError`` into a one-line ``Error: ...`` and a non-zero exit code.
"""


class ChemzooError(Exception):
    """Base class for mistakes a user can fix (bad input, missing files, no network)."""


class UnknownModelError(ChemzooError, KeyError):
    """A model name that is neither registered, nor a local directory, nor a hub repo id."""

    def __str__(self) -> str:  # KeyError would otherwise wrap the message in quotes
        return str(self.args[0])


class ChecksumError(ChemzooError):
    """A checkpoint file whose sha256 differs from the registry (corrupt or tampered)."""


class OfflineError(ChemzooError):
    """The model is not cached and the hub cannot (or may not) be reached."""


class InvalidMoleculeError(ChemzooError, ValueError):
    """A SMILES or SELFIES string that cannot be parsed."""


class InvalidSettingError(ChemzooError, ValueError):
    """A setting out of its range (a non-positive count, a NaN temperature, a seed too large, ...)."""
