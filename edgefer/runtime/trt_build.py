"""Build a TensorRT 10 engine from an ONNX file (FP32, FP16 or INT8 with entropy calibration).

Written against the documented TensorRT 10 Python API: explicit batch is the only network mode
(`create_network(0)`), one optimisation profile covers batch 1..max with `opt` at the batch size
most frames will have, the workspace is a memory-pool limit, a timing cache beside the engine
makes rebuilds fast, and INT8 uses an `IInt8EntropyCalibrator2` fed with real face crops (its
cache beside the engine, keyed by the ONNX hash and the calibration images). TensorRT is imported
lazily; the numpy half (calibration batches, cache names) runs and is tested anywhere.

Engines are specific to the GPU and TensorRT version that built them: build on the device that
runs them (on a Jetson, on the Jetson itself). `ensure_engine` is the build-once step the loader
uses: it asks the pure cache (`engine_cache`) whether the engine on disk still fits this machine
and builds only when it does not. The ONNX facts it needs come from `onnx_meta`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgefer.atomic_write import write_bytes_atomically
from edgefer.contract import ModelContract
from edgefer.media import file_sha256
from edgefer.runtime.crops import list_images, load_crop
from edgefer.runtime.engine_cache import (
    PRECISIONS,
    EngineKey,
    EngineSidecar,
    cache_decision,
    engine_folder,
    sidecar_path,
    write_sidecar,
)
from edgefer.runtime.errors import BackendUnavailableError, ModelLoadError
from edgefer.runtime.onnx_meta import contract_from_metadata, is_explicitly_quantized, read_onnx_metadata
from edgefer.runtime.preprocess import Preprocessor
from edgefer.runtime.trt_env import check_cuda, cuda_device, import_cudart, import_tensorrt, tensorrt_version

log = logging.getLogger(__name__)


def default_opt_batch(max_batch: int) -> int:
    """Most frames hold one to a few faces: tune kernels for 2 faces (never above max)."""
    return max(1, min(2, max_batch))


@dataclass(frozen=True)
class BuildOptions:
    precision: str = "fp16"
    max_batch: int = 8
    opt_batch: int | None = None
    workspace_mb: int = 1024
    calib_dir: Path | None = None
    calib_images: int = 512
    calib_batch: int = 8
    timing_cache: Path | None = None  # default: <engine>.timing.cache beside the engine

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        if self.max_batch < 1:
            raise ValueError(f"max batch must be >= 1, got {self.max_batch}")
        if self.opt_batch is not None and not 1 <= self.opt_batch <= self.max_batch:
            raise ValueError(f"opt batch {self.opt_batch} must lie in 1..max batch {self.max_batch}")
        if self.workspace_mb < 16:
            raise ValueError(f"workspace of {self.workspace_mb} MB is too small (>= 16)")
        if self.calib_batch < 1 or self.calib_images < 1:
            raise ValueError("calibration batch and image count must be >= 1")

    @property
    def opt(self) -> int:
        return self.opt_batch or default_opt_batch(self.max_batch)


def timing_cache_path(engine_path: Path) -> Path:
    return engine_path.with_name(engine_path.stem + ".timing.cache")


def calibration_cache_path(engine_path: Path, onnx_sha256: str, images: list[Path], contract: ModelContract, batch: int) -> Path:
    """Calibration cache beside the engine, named by what the calibration depends on.

    Another ONNX file, another image set, another preprocessing or batch gives another name, so a
    cache is never applied to data it was not computed from.
    """
    h = hashlib.sha256()
    h.update(onnx_sha256.encode())
    h.update(contract.to_json().encode())
    h.update(str(batch).encode())
    for p in sorted(images):
        h.update(p.name.encode() + b"\0")
    return engine_path.with_name(f"{engine_path.stem}.{h.hexdigest()[:12]}.calib")


class CalibrationBatches:
    """Real face crops from a folder, preprocessed per the contract, in fixed-size batches.

    TensorRT's calibrator needs every batch at exactly `batch_size`; a final partial batch is
    dropped (it would need padding with repeated images, which skews the histograms).
    """

    def __init__(self, folder: str | Path, contract: ModelContract, batch_size: int = 8, limit: int = 512, seed: int = 0):
        self.folder = Path(folder)
        self.contract = contract
        self.batch_size = int(batch_size)
        self.paths = list_images(self.folder, limit=limit, seed=seed)
        if len(self.paths) < self.batch_size:
            raise ValueError(
                f"{self.folder}: {len(self.paths)} calibration image(s) found, need at least one batch of {self.batch_size}"
            )
        self._pre = Preprocessor(contract)

    def __len__(self) -> int:
        return len(self.paths) // self.batch_size

    @property
    def shape(self) -> tuple[int, int, int, int]:
        h, w = self.contract.input_size
        return (self.batch_size, self.contract.channels, h, w)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * 4

    def __iter__(self) -> Iterator[np.ndarray]:
        size = self.contract.input_size
        for b in range(len(self)):
            chunk = self.paths[b * self.batch_size : (b + 1) * self.batch_size]
            crops = np.stack([load_crop(p, size) for p in chunk])
            yield np.ascontiguousarray(self._pre(crops), dtype=np.float32).copy()


def make_entropy_calibrator(batches: CalibrationBatches, cache_path: Path) -> Any:
    """An `IInt8EntropyCalibrator2` that copies each batch to one device buffer."""
    trt = import_tensorrt()
    cudart = import_cudart()

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[name-defined]  # a module-valued variable
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._batches = iter(batches)
            self._device = check_cuda(cudart.cudaMalloc(batches.nbytes), "cudaMalloc (calibration)")
            self.done = 0

        def get_batch_size(self) -> int:
            return batches.batch_size

        def get_batch(self, names: list[str]) -> list[int] | None:
            try:
                batch = next(self._batches)
            except StopIteration:
                return None
            check_cuda(
                cudart.cudaMemcpy(self._device, batch.ctypes.data, batch.nbytes, cudart.cudaMemcpyKind.cudaMemcpyHostToDevice),
                "cudaMemcpy (calibration)",
            )
            self.done += 1
            log.info("calibration batch %d/%d", self.done, len(batches))
            return [int(self._device)]

        def read_calibration_cache(self) -> bytes | None:
            if cache_path.is_file():
                log.info("using calibration cache %s", cache_path)
                return cache_path.read_bytes()
            return None

        def write_calibration_cache(self, cache: Any) -> None:
            cache_path.write_bytes(bytes(cache))
            log.info("wrote calibration cache %s", cache_path)

        def free(self) -> None:
            if self._device is not None:
                cudart.cudaFree(self._device)
                self._device = None

    return EntropyCalibrator()


def _load_timing_cache(config: Any, path: Path) -> Any:
    data = path.read_bytes() if path.is_file() else b""
    cache = config.create_timing_cache(data)
    if not config.set_timing_cache(cache, False):
        log.warning("timing cache %s does not match this device/TensorRT; starting a new one", path)
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, False)
    return cache


def build_engine(
    onnx_path: str | Path,
    engine_path: str | Path,
    options: BuildOptions = BuildOptions(),
    *,
    contract_override: ModelContract | None = None,
) -> EngineSidecar:
    """Build `engine_path` (+ sidecar, timing cache, calibration cache) from `onnx_path`."""
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    trt = import_tensorrt()
    device = cuda_device()
    if device is None:
        raise BackendUnavailableError("no CUDA GPU found: TensorRT engines are built on the GPU that will run them")
    if not onnx_path.is_file():
        raise FileNotFoundError(f"{onnx_path}: ONNX file not found")
    meta = read_onnx_metadata(onnx_path)
    contract = contract_override or contract_from_metadata(meta, onnx_path)
    onnx_sha = file_sha256(onnx_path)
    # An `edgefer export onnx --quantize int8` file carries its own Q/DQ scales (explicit
    # quantization): TensorRT takes them as they are, no calibrator.
    explicit_int8 = is_explicitly_quantized(meta)
    if explicit_int8 and options.precision != "int8":
        log.warning("%s is an INT8 (Q/DQ) model: building an int8 engine, not %s", onnx_path.name, options.precision)
        options = dataclasses.replace(options, precision="int8")

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelLoadError(f"{onnx_path}: TensorRT's ONNX parser failed: {errors}")
    if network.num_inputs != 1:
        raise ModelLoadError(f"{onnx_path}: expected one input, TensorRT sees {network.num_inputs}")
    inp = network.get_input(0)
    chw = (contract.channels, *contract.input_size)

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(options.workspace_mb) << 20)
    profile = builder.create_optimization_profile()
    profile.set_shape(inp.name, (1, *chw), (options.opt, *chw), (options.max_batch, *chw))
    config.add_optimization_profile(profile)

    calibrator = None
    if options.precision in ("fp16", "int8"):
        # INT8 layers without a good INT8 kernel fall back to FP16 rather than FP32.
        config.set_flag(trt.BuilderFlag.FP16)
    if options.precision == "int8" and explicit_int8:
        config.set_flag(trt.BuilderFlag.INT8)
    elif options.precision == "int8":
        if options.calib_dir is None:
            raise ValueError("--precision int8 needs --calib DIR: a folder of real face crops for calibration")
        batches = CalibrationBatches(options.calib_dir, contract, options.calib_batch, options.calib_images)
        cache = calibration_cache_path(engine_path, onnx_sha, batches.paths, contract, batches.batch_size)
        calibrator = make_entropy_calibrator(batches, cache)
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = calibrator
        calib_profile = builder.create_optimization_profile()
        fixed = (batches.batch_size, *chw)
        calib_profile.set_shape(inp.name, fixed, fixed, fixed)
        config.set_calibration_profile(calib_profile)

    tc_path = options.timing_cache or timing_cache_path(engine_path)
    timing_cache = _load_timing_cache(config, tc_path)

    log.info(
        "building %s engine for %s on %s (batch 1..%d, opt %d, workspace %d MB)",
        options.precision, onnx_path.name, device.name, options.max_batch, options.opt, options.workspace_mb,
    )
    try:
        serialized = builder.build_serialized_network(network, config)
    finally:
        if calibrator is not None:
            calibrator.free()
    if serialized is None:
        raise RuntimeError(f"TensorRT could not build an engine from {onnx_path} (see the TensorRT log above)")

    tc_path.write_bytes(bytes((config.get_timing_cache() or timing_cache).serialize()))
    write_bytes_atomically(engine_path, bytes(serialized))
    sidecar = EngineSidecar(
        contract=contract,
        tensorrt_version=str(trt.__version__),
        device_name=device.name,
        compute_capability=device.compute_capability,
        onnx_sha256=onnx_sha,
        precision=options.precision,
        max_batch=options.max_batch,
        opt_batch=options.opt,
        onnx_file=onnx_path.name,
        extra={"workspace_mb": options.workspace_mb, "explicit_int8": explicit_int8},
    )
    write_sidecar(engine_path, sidecar)
    log.info("wrote %s (%.1f MB) and its sidecar", engine_path, engine_path.stat().st_size / 1e6)
    return sidecar


def current_key(onnx_path: Path, precision: str, max_batch: int) -> EngineKey:
    """The key for `onnx_path` on this machine (needs TensorRT and a CUDA device)."""
    version = tensorrt_version()
    device = cuda_device()
    if version is None or device is None:
        raise BackendUnavailableError("TensorRT engines need TensorRT and a CUDA GPU on this machine")
    return EngineKey(file_sha256(onnx_path), version, device.name, precision, max_batch)


def ensure_engine(
    onnx_path: Path,
    *,
    precision: str = "fp16",
    max_batch: int = 8,
    contract_override: ModelContract | None = None,
) -> Path:
    """The cached engine for `onnx_path` on this device, built (once) when missing or stale."""
    key = current_key(onnx_path, precision, max_batch)
    decision = cache_decision(onnx_path, key, engine_folder(onnx_path))
    if decision.action == "reuse":
        log.info("reusing TensorRT engine %s", decision.engine_path)
        return decision.engine_path
    if decision.action == "rebuild":
        log.warning("rebuilding TensorRT engine for %s: %s", onnx_path, decision.reason)
    else:
        log.warning("building TensorRT engine for %s once (this can take minutes)", onnx_path)
    build_engine(
        onnx_path,
        decision.engine_path,
        BuildOptions(precision=precision, max_batch=max_batch),
        contract_override=contract_override,
    )
    for old in decision.stale:
        if old != decision.engine_path:
            log.info("removing stale engine %s (built from another version of %s)", old, onnx_path.name)
            old.unlink(missing_ok=True)
            sidecar_path(old).unlink(missing_ok=True)
    return decision.engine_path
