"""`load_classifier`: the one way to get a classifier, whatever the file and the machine.

`auto` takes the fastest backend this machine offers: a TensorRT engine (built once from the
ONNX file and cached next to it), else ONNX Runtime with the TensorRT, CUDA or CPU execution
provider, in that order. A TensorRT build failure in `auto` mode falls back to ONNX Runtime
with a logged warning; an explicitly requested backend that cannot run is an error.
"""

from __future__ import annotations

import logging
from pathlib import Path

from edgefer.contract import ModelContract
from edgefer.paths import default_model_path
from edgefer.runtime.base import Classifier
from edgefer.runtime.errors import BackendUnavailableError, ModelLoadError
from edgefer.runtime.onnx_backend import ORT_PROVIDERS, OnnxRuntimeClassifier, available_ort_backends
from edgefer.runtime.trt_env import INSTALL_HINT, tensorrt_usable

log = logging.getLogger(__name__)

#: Every backend name `load_classifier` accepts.
BACKENDS: tuple[str, ...] = ("auto", "tensorrt", "onnxruntime", *ORT_PROVIDERS)
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")


def is_engine_file(path: Path) -> bool:
    return path.suffix.lower() in ENGINE_SUFFIXES


def choose_backend(path: Path, tensorrt_ok: bool, ort_backends: list[str]) -> str:
    """What `auto` takes for `path`, given what the machine offers (pure, testable)."""
    if is_engine_file(path):
        return "tensorrt"
    if tensorrt_ok:
        return "tensorrt"
    if not ort_backends:
        raise BackendUnavailableError("neither TensorRT nor ONNX Runtime is available: pip install onnxruntime")
    return ort_backends[0]


def resolve_model_path(path: str | Path | None) -> Path:
    """`None` -> the shipped model; a missing path or a folder is a clear error."""
    p = default_model_path() if path is None else Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"{p}: model file not found")
    if not p.is_file():
        raise ModelLoadError(f"{p}: is not a file (expected an .onnx model or a TensorRT .engine)")
    return p


def load_classifier(
    path: str | Path | None = None,
    backend: str = "auto",
    *,
    contract_override: ModelContract | None = None,
    threads: int | None = None,
    max_batch: int = 8,
    trt_precision: str = "fp16",
) -> Classifier:
    """Load a model file (`.onnx` or TensorRT `.engine`) for inference.

    `backend`: one of `BACKENDS`. `contract_override` replaces the contract stored in the model
    (needed for ONNX files exported elsewhere). `threads`: ONNX Runtime intra-op threads (None:
    its default). `max_batch`, `trt_precision`: the profile and precision of an engine built
    from an ONNX file for the `tensorrt` backend (ignored otherwise).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
    p = resolve_model_path(path)
    if is_engine_file(p):
        if backend not in ("auto", "tensorrt"):
            raise ValueError(f"{p} is a TensorRT engine: only backend 'tensorrt' (or 'auto') runs it, not {backend!r}")
        from edgefer.runtime.tensorrt_backend import TensorRTClassifier

        return TensorRTClassifier(p, contract_override=contract_override)

    ort_backends = available_ort_backends()
    requested = backend
    if backend == "auto":
        backend = choose_backend(p, tensorrt_usable(), ort_backends)
        log.info("auto backend for %s: %s", p, backend)
    if backend == "tensorrt":
        try:
            return _tensorrt_from_onnx(p, contract_override, max_batch, trt_precision)
        except (ImportError, BackendUnavailableError, RuntimeError) as exc:
            if requested != "auto" or not ort_backends:
                if isinstance(exc, ImportError):
                    raise BackendUnavailableError(f"backend 'tensorrt' for {p}: {exc}") from None
                raise
            log.warning("TensorRT engine for %s unavailable (%s); using ONNX Runtime instead", p, exc)
            backend = ort_backends[0]
    if backend == "onnxruntime":
        if not ort_backends:
            raise BackendUnavailableError("ONNX Runtime is not installed: pip install onnxruntime")
        backend = ort_backends[0]
    return OnnxRuntimeClassifier(p, backend, contract_override=contract_override, threads=threads)


def _tensorrt_from_onnx(
    onnx_path: Path, contract_override: ModelContract | None, max_batch: int, precision: str
) -> Classifier:
    """Build (or reuse) the cached engine for `onnx_path` on this device, then load it."""
    if not tensorrt_usable():
        raise BackendUnavailableError(f"{INSTALL_HINT}, and a CUDA GPU is needed")
    from edgefer.runtime.tensorrt_backend import TensorRTClassifier
    from edgefer.runtime.trt_build import ensure_engine

    engine = ensure_engine(onnx_path, precision=precision, max_batch=max_batch, contract_override=contract_override)
    return TensorRTClassifier(engine, contract_override=contract_override)
