"""TensorRT backend: a serialized engine run with `execute_async_v3` on one CUDA stream.

Device buffers are allocated once for the engine's largest profile batch; each call sets the
input shape for its batch (`set_input_shape`), copies the crops in, runs and copies the outputs
back on the same stream. Batches above the profile's maximum are split by the base class. CUDA
memory goes through NVIDIA's cuda-python (`cuda.bindings.runtime`), no PyCUDA or torch.

The engine's sidecar (`MODEL.engine.json`) supplies the contract and the device/TensorRT version
it was built for; loading an engine built elsewhere is refused with a message saying to rebuild
it here, because TensorRT would otherwise fail obscurely or run the wrong kernels.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from edgefer.contract import ModelContract
from edgefer.runtime.base import Classifier
from edgefer.runtime.engine_cache import read_sidecar, sidecar_path
from edgefer.runtime.errors import BackendUnavailableError, ModelLoadError
from edgefer.runtime.trt_env import check_cuda, cuda_device, import_cudart, import_tensorrt

log = logging.getLogger(__name__)


class TensorRTClassifier(Classifier):
    backend_name = "tensorrt"

    def __init__(self, engine_path: str | Path, *, contract_override: ModelContract | None = None) -> None:
        engine_path = Path(engine_path)
        if not engine_path.is_file():
            raise FileNotFoundError(f"{engine_path}: engine file not found")
        try:
            trt = import_tensorrt()
            self._cudart = cudart = import_cudart()
        except ImportError as exc:
            # A BackendUnavailableError (not ImportError) so every caller reports it as a bad
            # --model on this machine (exit 2, one line), never as a crash with a traceback.
            raise BackendUnavailableError(
                f"{engine_path} is a TensorRT engine and cannot run here: {exc}. An engine runs only "
                "where it was built; on this machine use the ONNX model it came from (--model MODEL.onnx)"
            ) from None
        device = cuda_device()
        if device is None:
            raise BackendUnavailableError(f"{engine_path}: no CUDA GPU found to run this TensorRT engine")
        # With an explicit contract a missing sidecar is fine; a present one is still checked.
        has_sidecar = sidecar_path(engine_path).is_file()
        sidecar = read_sidecar(engine_path) if has_sidecar or contract_override is None else None
        if sidecar is not None:
            mismatch = []
            if sidecar.tensorrt_version != trt.__version__:
                mismatch.append(f"TensorRT {sidecar.tensorrt_version} (here {trt.__version__})")
            if sidecar.device_name != device.name:
                mismatch.append(f"device {sidecar.device_name!r} (here {device.name!r})")
            if mismatch:
                raise ModelLoadError(
                    f"{engine_path}: built for {' and '.join(mismatch)}; engines only run where they were built: "
                    "rebuild it here with `edgefer export tensorrt --onnx MODEL.onnx --out ...` or load the ONNX file"
                )
        contract = contract_override or sidecar.contract  # type: ignore[union-attr]

        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self._engine is None:
            raise ModelLoadError(f"{engine_path}: TensorRT could not deserialize this engine (corrupt or from another version)")
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        inputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1:
            raise ModelLoadError(f"{engine_path}: expected one input tensor, found {inputs}")
        missing = [n for n in ("logits", "attention") if n not in outputs]
        if missing:
            raise ModelLoadError(f"{engine_path}: outputs {missing} missing (engine has {outputs})")
        self._input = inputs[0]
        self._outputs = [n for n in ("logits", "attention", "cam") if n in outputs]
        _, _, max_shape = self._engine.get_tensor_profile_shape(self._input, 0)
        self._max = int(max_shape[0])
        self._dtypes = {n: np.dtype(trt.nptype(self._engine.get_tensor_dtype(n))) for n in [self._input, *self._outputs]}

        # Shapes at the largest batch size give the buffer sizes.
        self._context.set_input_shape(self._input, tuple(max_shape))
        self._stream = check_cuda(cudart.cudaStreamCreate(), "cudaStreamCreate")
        self._device: dict[str, Any] = {}
        self._host: dict[str, np.ndarray] = {}
        for name in [self._input, *self._outputs]:
            shape = tuple(int(d) for d in self._context.get_tensor_shape(name))
            nbytes = int(np.prod(shape)) * self._dtypes[name].itemsize
            self._device[name] = check_cuda(cudart.cudaMalloc(nbytes), f"cudaMalloc({name})")
            self._context.set_tensor_address(name, int(self._device[name]))
            if name != self._input:
                self._host[name] = np.empty(shape, dtype=self._dtypes[name])
        att = self._host["attention"].shape
        self._attention_shape = (int(att[-2]), int(att[-1]))
        self._cam_shape = tuple(int(d) for d in self._host["cam"].shape[1:]) if "cam" in self._host else None
        super().__init__(contract, engine_path, max_batch=self._max)
        log.info("loaded TensorRT engine %s (batch <= %d) on %s", engine_path, self._max, device.name)

    @property
    def attention_shape(self) -> tuple[int, int]:
        return self._attention_shape

    @property
    def cam_shape(self) -> tuple[int, ...] | None:
        return self._cam_shape

    def _infer(self, x: np.ndarray) -> dict[str, np.ndarray]:
        cudart = self._cudart
        n = x.shape[0]
        x = np.ascontiguousarray(x, dtype=self._dtypes[self._input])
        if not self._context.set_input_shape(self._input, tuple(x.shape)):
            raise ValueError(f"{self.source}: TensorRT rejected input shape {x.shape}")
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        check_cuda(
            cudart.cudaMemcpyAsync(self._device[self._input], x.ctypes.data, x.nbytes, h2d, self._stream), "cudaMemcpyAsync(in)"
        )
        if not self._context.execute_async_v3(int(self._stream)):
            raise RuntimeError(f"{self.source}: TensorRT execution failed")
        out: dict[str, np.ndarray] = {}
        for name in self._outputs:
            shape = tuple(int(d) for d in self._context.get_tensor_shape(name))
            host = self._host[name].reshape(-1)[: int(np.prod(shape))].reshape(shape)
            check_cuda(
                cudart.cudaMemcpyAsync(host.ctypes.data, self._device[name], host.nbytes, d2h, self._stream),
                f"cudaMemcpyAsync({name})",
            )
            out[name] = host
        check_cuda(cudart.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")
        # Host buffers are reused: hand out float32 copies (fp16 engines get upcast here).
        return {k: v[:n].astype(np.float32, copy=True) for k, v in out.items()}

    def close(self) -> None:
        cudart = getattr(self, "_cudart", None)
        if cudart is None:
            return
        for ptr in getattr(self, "_device", {}).values():
            cudart.cudaFree(ptr)
        self._device = {}
        if getattr(self, "_stream", None) is not None:
            cudart.cudaStreamDestroy(self._stream)
            self._stream = None

    def __del__(self) -> None:  # best effort: free device memory when dropped
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
