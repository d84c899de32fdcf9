"""The metadata an exported ONNX file carries: the contract plus human-readable facts.

`edgefer.contract` is the machine-readable source of truth (see `edgefer.contract`); the other
keys are there for a person running `onnx` tools or Netron on the file: which classes in which
order, which versions produced it and when.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
from pathlib import Path
from typing import Any

from edgefer import __version__ as EDGEFER_VERSION
from edgefer.contract import METADATA_KEY, ModelContract

CAM_DOC = (
    "cam: (N, 7, h, w) class activation maps of all seven classes in the contract's class order; "
    "the runtime returns the predicted class's map, evaluation can take the ground-truth class's"
)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def build_metadata(
    contract: ModelContract, *, opset: int, source: str | None = None, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """All metadata_props key/value strings for an export of `contract`."""
    meta = {
        METADATA_KEY: contract.to_json(),
        "edgefer.classes": ",".join(contract.classes),
        "edgefer.input": (
            f"input: float32 (N, {contract.channels}, {contract.input_size[0]}, {contract.input_size[1]}), "
            f"{contract.color}, scaled to [0,1] then (x-mean)/std with mean={list(contract.mean)} std={list(contract.std)}"
        ),
        "edgefer.outputs": ",".join(contract.outputs),
        "edgefer.version": EDGEFER_VERSION,
        "torch.version": _version("torch"),
        "timm.version": _version("timm"),
        "onnx.opset": str(opset),
        "export.date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if "cam" in contract.outputs:
        meta["edgefer.cam"] = CAM_DOC
    if source:
        meta["edgefer.source"] = source
    meta.update(extra or {})
    return meta


def set_metadata(model: Any, meta: dict[str, str]) -> None:
    """Replace `model.metadata_props` entries for the given keys (others are kept)."""
    keep = [(p.key, p.value) for p in model.metadata_props if p.key not in meta]
    del model.metadata_props[:]
    for key, value in [*keep, *meta.items()]:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def read_metadata(path: str | Path) -> dict[str, str]:
    """metadata_props of an ONNX file (weights are not loaded)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}
