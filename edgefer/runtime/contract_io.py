"""Reading a contract from the places a user can give one.

Models exported by edgefer carry their contract; a foreign ONNX file does not, and then the user
passes it explicitly (`--contract` on the command line, `contract_override` in Python) rather
than edgefer guessing a colour mode or a normalisation.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgefer.contract import ModelContract


def parse_contract_option(value: str | None) -> ModelContract | None:
    """`--contract` value -> ModelContract: a path to a JSON file, or the JSON text itself."""
    if value is None or value == "":
        return None
    text = value.strip()
    if text.startswith("{"):
        return ModelContract.from_json(text, source="--contract")
    path = Path(value)
    if not path.is_file():
        raise ValueError(f"--contract {value!r}: neither a JSON object nor an existing file")
    return ModelContract.from_json(path.read_text(encoding="utf-8"), source=str(path))


def add_contract_argument(parser: argparse.ArgumentParser) -> None:
    """The `--contract` option every command that loads a model offers (same help everywhere)."""
    parser.add_argument(
        "--contract",
        metavar="JSON",
        default=None,
        help="model contract for an ONNX file without edgefer metadata: a JSON file or inline JSON "
        "(the same fields as ModelContract; overrides any contract stored in the model)",
    )
