"""Errors raised while loading or running a classifier.

All of them derive from ValueError (or FileNotFoundError) and name the model file, so a bad
`--model` argument is reported where it was typed instead of as an ONNX Runtime traceback.
"""

from __future__ import annotations


class ModelLoadError(ValueError):
    """A model file exists but cannot be used (corrupt, wrong shape, wrong outputs...)."""


class MissingContractError(ModelLoadError):
    """The model carries no edgefer contract, so its preprocessing would have to be guessed."""


class BackendUnavailableError(RuntimeError):
    """The requested backend cannot run on this machine (library or device missing)."""


OVERRIDE_HINT = (
    "pass the contract explicitly: `contract_override=ModelContract(...)` in Python, or "
    "`--contract CONTRACT.json` (a file or an inline JSON string) on the command line"
)
