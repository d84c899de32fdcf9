"""ONNX Runtime backend: TensorRT, CUDA or CPU execution provider.

The session is created once; the contract is read from the model's `metadata_props` through ONNX
Runtime itself (no `onnx` package needed on a Jetson). Inputs/outputs are checked against the
contract at load time, so a mismatched model fails with its file name, not at the first frame.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from edgefer.contract import ModelContract
from edgefer.runtime.base import Classifier
from edgefer.runtime.engine_cache import engine_folder
from edgefer.runtime.errors import BackendUnavailableError, ModelLoadError
from edgefer.runtime.onnx_meta import contract_from_metadata, open_session, read_onnx_contract, read_onnx_metadata

log = logging.getLogger(__name__)

# Reading a file's metadata and contract lives in onnx_meta (below this module and the TensorRT
# builder); the names stay importable from here, where callers first found them.
__all__ = [
    "ORT_PROVIDERS",
    "OnnxRuntimeClassifier",
    "available_ort_backends",
    "contract_from_metadata",
    "open_session",
    "read_onnx_contract",
    "read_onnx_metadata",
]

#: Backend name -> the execution provider it runs on.
ORT_PROVIDERS: dict[str, str] = {
    "onnxruntime-tensorrt": "TensorrtExecutionProvider",
    "onnxruntime-cuda": "CUDAExecutionProvider",
    "onnxruntime-cpu": "CPUExecutionProvider",
}


def available_ort_backends() -> list[str]:
    """ONNX Runtime backends this machine offers, fastest first."""
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    have = set(ort.get_available_providers())
    return [name for name, provider in ORT_PROVIDERS.items() if provider in have]


def _provider_list(backend: str, model_path: Path) -> list[Any]:
    """Providers for a session: the chosen one first, then slower fallbacks for unsupported ops."""
    names = list(ORT_PROVIDERS)
    chosen = names[names.index(backend):]
    providers: list[Any] = []
    for name in chosen:
        provider = ORT_PROVIDERS[name]
        if provider == "TensorrtExecutionProvider":
            # ORT's own engine cache, next to the model (or in the user cache when that folder is
            # read-only), as for edgefer's own TensorRT engines.
            cache = engine_folder(model_path) / f"{model_path.stem}.ort-trt-cache"
            providers.append(
                (
                    provider,
                    {
                        "trt_engine_cache_enable": True,
                        "trt_engine_cache_path": str(cache),
                        "trt_timing_cache_enable": True,
                        "trt_fp16_enable": True,
                    },
                )
            )
        else:
            providers.append(provider)
    return providers


def _dim(value: Any) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


class OnnxRuntimeClassifier(Classifier):
    """Classifier running an ONNX file with ONNX Runtime."""

    def __init__(
        self,
        path: str | Path,
        backend: str = "onnxruntime-cpu",
        *,
        contract_override: ModelContract | None = None,
        threads: int | None = None,
    ) -> None:
        path = Path(path)
        if backend not in ORT_PROVIDERS:
            raise ValueError(f"unknown ONNX Runtime backend {backend!r}; valid: {', '.join(ORT_PROVIDERS)}")
        if backend not in available_ort_backends():
            raise BackendUnavailableError(
                f"{backend} is not available on this machine (ONNX Runtime offers: "
                f"{', '.join(available_ort_backends()) or 'nothing'})"
            )
        self.backend_name = backend
        self._session = open_session(path, _provider_list(backend, path), threads)
        meta = self._session.get_modelmeta().custom_metadata_map
        contract = contract_override or contract_from_metadata(meta, path)
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise ModelLoadError(f"{path}: expected one input (face crops), found {[i.name for i in inputs]}")
        inp = inputs[0]
        self._input_name = inp.name
        self._input_dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
        shape = list(inp.shape)
        if len(shape) != 4:
            raise ModelLoadError(f"{path}: input {inp.name!r} must be NCHW, has shape {shape}")
        want = (contract.channels, *contract.input_size)
        for axis, (got, exp) in enumerate(zip(shape[1:], want, strict=True), start=1):
            if _dim(got) is not None and got != exp:
                raise ModelLoadError(
                    f"{path}: input {inp.name!r} has shape {shape} but the contract says "
                    f"(N, {want[0]}, {want[1]}, {want[2]}) (axis {axis} differs)"
                )
        outs = {o.name: o for o in self._session.get_outputs()}
        missing = [n for n in ("logits", "attention") if n not in outs]
        if missing:
            raise ModelLoadError(f"{path}: outputs {missing} missing (model has {sorted(outs)})")
        self._output_names = [n for n in ("logits", "attention", "cam") if n in outs]
        att = outs["attention"].shape
        self._attention_shape = (
            (_dim(att[-2]) or contract.attention_size[0], _dim(att[-1]) or contract.attention_size[1])
            if len(att) >= 3
            else tuple(contract.attention_size)
        )
        self._cam_shape: tuple[int, ...] | None = None
        if "cam" in outs:
            cam = outs["cam"].shape
            self._cam_shape = tuple(_dim(d) or 0 for d in cam[1:])
        super().__init__(contract, path, max_batch=_dim(shape[0]))
        log.info("loaded %s with %s (providers %s)", path, backend, self._session.get_providers())

    @property
    def attention_shape(self) -> tuple[int, int]:
        return self._attention_shape  # type: ignore[return-value]

    @property
    def cam_shape(self) -> tuple[int, ...] | None:
        return self._cam_shape

    @property
    def providers(self) -> list[str]:
        return list(self._session.get_providers())

    def _infer(self, x: np.ndarray) -> dict[str, np.ndarray]:
        if self._input_dtype is not np.float32:
            x = x.astype(self._input_dtype)
        values = self._session.run(self._output_names, {self._input_name: x})
        return dict(zip(self._output_names, values, strict=True))
