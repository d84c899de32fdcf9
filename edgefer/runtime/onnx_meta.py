"""Opening an ONNX file with ONNX Runtime and reading what it says about itself.

The model contract travels in the ONNX file's `metadata_props`. Reading it needs no `onnx` package
(a Jetson has none): an ONNX Runtime session on the CPU provider opens the file, nothing is run.
This module sits below both users of those facts, the ONNX Runtime backend and the TensorRT
engine builder, so neither has to import the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgefer.contract import METADATA_KEY, ModelContract
from edgefer.runtime.errors import OVERRIDE_HINT, MissingContractError, ModelLoadError

#: The metadata key `edgefer export onnx --quantize int8` writes (Q/DQ scales inside the graph).
QUANTIZATION_KEY = "edgefer.quantization"


def open_session(path: Path, providers: list[Any], threads: int | None = None) -> Any:
    """An InferenceSession, with ONNX Runtime's parse errors turned into a ModelLoadError."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = int(threads)
    # No busy-waiting between calls: the classifier shares the CPU with MediaPipe, the renderer and
    # the UI, and spinning ORT threads would steal their time for a few-microsecond gain.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as exc:  # noqa: BLE001 - ORT raises its own pybind types (InvalidProtobuf, Fail...)
        raise ModelLoadError(f"{path}: not a loadable ONNX model ({type(exc).__name__}: {exc})") from None


def contract_from_metadata(meta: dict[str, str], path: Path) -> ModelContract:
    """The contract stored under `edgefer.contract`; a clear error when it is missing."""
    text = meta.get(METADATA_KEY)
    if text is None:
        raise MissingContractError(
            f"{path}: this ONNX model has no '{METADATA_KEY}' metadata, so its preprocessing "
            f"(input size, colour, normalisation, class order) is unknown; {OVERRIDE_HINT}"
        )
    return ModelContract.from_json(text, source=f"{path} ({METADATA_KEY})")


def read_onnx_metadata(path: str | Path) -> dict[str, str]:
    """All metadata_props of an ONNX file, read through ONNX Runtime (CPU session, nothing run)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file not found")
    session = open_session(path, ["CPUExecutionProvider"])
    return dict(session.get_modelmeta().custom_metadata_map)


def read_onnx_contract(path: str | Path) -> ModelContract:
    """Read only the contract of an ONNX file (CPU session, nothing run)."""
    return contract_from_metadata(read_onnx_metadata(path), Path(path))


def is_explicitly_quantized(metadata: dict[str, str]) -> bool:
    """True for ONNX files written by `edgefer export onnx --quantize int8` (Q/DQ inside)."""
    return QUANTIZATION_KEY in metadata
