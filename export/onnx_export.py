"""torch model -> ONNX file with a dynamic batch axis, the contract and an `onnx.checker` pass.

The TorchScript-based exporter (`dynamo=False`) is used on purpose: it handles these plain CNNs
exactly, supports `dynamic_axes` directly and needs no `onnxscript`; the torch.export path adds a
dependency and nothing this graph needs. Files are written to a temporary name and moved into place
only when everything has passed, so a failed export never destroys an existing model.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgefer.atomic_write import write_bytes_atomically
from edgefer.contract import ModelContract
from export.metadata import build_metadata, set_metadata

log = logging.getLogger(__name__)

MIN_OPSET = 17
INPUT_NAME = "input"


def _export_module(model: Any, cam: bool) -> Any:
    """A module whose forward returns exactly the exported outputs, in order."""
    import torch

    class ExportWrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor):
            if cam:
                return self.model.forward_with_cam(x)
            out = self.model(x)
            return out[0], out[1]

    return ExportWrapper().eval()


def export_contract(contract: ModelContract, cam: bool) -> ModelContract:
    outputs = ("logits", "attention", "cam") if cam else ("logits", "attention")
    return replace(contract, outputs=outputs)


def to_onnx_model(model: Any, contract: ModelContract, *, cam: bool = False, opset: int = MIN_OPSET,
                  simplify: bool = False, source: str | None = None) -> Any:
    """Export `model` to an in-memory, checked `onnx.ModelProto` with edgefer metadata."""
    import onnx
    import torch

    if opset < MIN_OPSET:
        raise ValueError(f"--opset {opset}: edgefer exports need opset >= {MIN_OPSET}")
    if cam and not hasattr(model, "forward_with_cam"):
        raise ValueError(f"--cam: {type(model).__name__} has no forward_with_cam(x); cannot export a cam output")
    contract = export_contract(contract, cam)
    wrapper = _export_module(model, cam)
    h, w = contract.input_size
    # Batch 2, so the tracer cannot specialise anything to a batch of one.
    dummy = torch.randn(2, contract.channels, h, w)
    names = list(contract.outputs)
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", (DeprecationWarning, UserWarning, torch.jit.TracerWarning))
        torch.onnx.export(
            wrapper,
            (dummy,),
            buf,  # type: ignore[arg-type]  # a file object works; torch's annotation names paths only
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=names,
            dynamic_axes={n: {0: "batch"} for n in [INPUT_NAME, *names]},
            do_constant_folding=True,
        )
    proto = onnx.load_from_string(buf.getvalue())
    if simplify:
        import onnxslim

        before = len(proto.graph.node)
        proto = onnxslim.slim(proto)
        log.info("onnxslim: %d -> %d nodes", before, len(proto.graph.node))
    proto.producer_name = "edgefer"
    proto.doc_string = f"edgefer expression classifier ({contract.backbone}, trained on {contract.trained_on})"
    set_metadata(proto, build_metadata(contract, opset=opset, source=source))
    onnx.checker.check_model(proto, full_check=True)
    return proto


def save_atomically(data: bytes, out: Path) -> Path:
    """Write bytes next to `out` then rename, so readers never see half a file."""
    return write_bytes_atomically(out, data)


def export_onnx(model: Any, contract: ModelContract, out: str | Path, *, cam: bool = False,
                opset: int = MIN_OPSET, simplify: bool = False, source: str | None = None) -> Path:
    """Export and write `out` (no parity check: see `export.pipeline.export_checkpoint`)."""
    proto = to_onnx_model(model, contract, cam=cam, opset=opset, simplify=simplify, source=source)
    path = save_atomically(proto.SerializeToString(), Path(out))
    log.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return path
