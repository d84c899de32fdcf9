"""Is TensorRT usable here, and what is this device? (Lazy imports; nothing fails at import.)

TensorRT engines are specific to the GPU, the TensorRT version and the ONNX file they came from,
so these facts make up the engine cache key. On a machine without TensorRT or CUDA every function
answers "no"/None instead of raising, because the runtime then simply uses ONNX Runtime.
"""

from __future__ import annotations

import functools
import importlib
import logging
from dataclasses import dataclass
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "TensorRT is not installed: on a Jetson use JetPack's python3-libnvinfer (TensorRT 10); "
    "on a desktop `pip install 'edgefer[tensorrt]'` (tensorrt>=10 and cuda-python)"
)


def import_tensorrt() -> ModuleType:
    """`import tensorrt`, or ImportError with the install hint (never a bare traceback)."""
    try:
        return importlib.import_module("tensorrt")
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from None


def import_cudart() -> ModuleType:
    """NVIDIA cuda-python's runtime bindings (new `cuda.bindings.runtime` or older `cuda.cudart`)."""
    for name in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError("cuda-python is not installed (needed for TensorRT): pip install 'edgefer[tensorrt]'")


def tensorrt_version() -> str | None:
    try:
        return str(import_tensorrt().__version__)
    except ImportError:
        return None


def check_cuda(result: Any, what: str) -> Any:
    """Unpack a cuda-python `(err, value...)` tuple; RuntimeError naming the call on failure.

    The value is whatever cuda-python returns for that call (a handle, a count, a struct): Any.
    """
    parts: tuple[Any, ...] = result if isinstance(result, tuple) else (result,)
    err, values = parts[0], parts[1:]
    code = int(getattr(err, "value", err))
    if code != 0:
        raise RuntimeError(f"CUDA call {what} failed: {err}")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


@dataclass(frozen=True)
class CudaDevice:
    """The GPU an engine is built for and runs on."""

    index: int
    name: str
    compute_capability: str
    total_memory_mb: int


@functools.lru_cache(maxsize=1)
def cuda_device(index: int = 0) -> CudaDevice | None:
    """The CUDA device through cuda-python, or None when there is no driver, library or GPU."""
    try:
        cudart = import_cudart()
        count = check_cuda(cudart.cudaGetDeviceCount(), "cudaGetDeviceCount")
        if not count or int(count) <= index:
            return None
        prop = check_cuda(cudart.cudaGetDeviceProperties(index), "cudaGetDeviceProperties")
    except (ImportError, RuntimeError, OSError) as exc:
        log.debug("no CUDA device: %s", exc)
        return None
    name = prop.name
    if isinstance(name, (bytes, bytearray)):
        name = bytes(name).split(b"\0", 1)[0].decode(errors="replace")
    return CudaDevice(
        index=index,
        name=str(name).strip(),
        compute_capability=f"{prop.major}.{prop.minor}",
        total_memory_mb=int(prop.totalGlobalMem) // (1 << 20),
    )


def cuda_runtime_version() -> str | None:
    try:
        cudart = import_cudart()
        v = int(check_cuda(cudart.cudaRuntimeGetVersion(), "cudaRuntimeGetVersion"))
    except (ImportError, RuntimeError, OSError):
        return None
    return f"{v // 1000}.{(v % 1000) // 10}"


def tensorrt_usable() -> bool:
    """TensorRT, cuda-python and a CUDA GPU are all present."""
    return tensorrt_version() is not None and cuda_device() is not None
