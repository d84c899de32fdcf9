"""The NVIDIA half of `edgefer selftest --gpu`: what is missing, and the GPU candidates.

Engines are built with the project's own builder (`edgefer.runtime.trt_build.build_engine`, the
code behind `edgefer export tensorrt` and the engine cache) and loaded with the project's own
`TensorRTClassifier`, so the self-test checks the code a Jetson will run, not a copy of it. The
models are copied into the work folder first: engines, their sidecars, timing caches and ONNX
Runtime's TensorRT cache then land there and nothing is written beside the installed package.

NOT VERIFIED ON A GPU: no NVIDIA machine was available when this was written. It follows
TensorRT 10's and cuda-python's documented Python APIs through the project's runtime modules; the
first GPU run is the test (docs/jetson.md).
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from edgefer.runtime.base import Classifier
from edgefer.selftest.checks import Candidate, EngineBuild, SelftestReport, qdq_tensorrt_issues

log = logging.getLogger(__name__)


def missing_for_gpu() -> list[str]:
    """What `--gpu` needs and this machine lacks, each named so a person knows what to install
    (empty: TensorRT, cuda-python and a CUDA device are all there)."""
    from edgefer.runtime.trt_env import cuda_device, import_cudart, import_tensorrt

    missing: list[str] = []
    try:
        import_tensorrt()
    except ImportError as exc:
        missing.append(f"the TensorRT Python module (`import tensorrt`): {exc}")
    try:
        import_cudart()
    except ImportError as exc:
        missing.append(f"NVIDIA cuda-python (`cuda.bindings.runtime` or `cuda.cudart`): {exc}")
    else:
        if cuda_device() is None:
            missing.append("a CUDA device: cuda-python is installed but finds no GPU (driver missing, or no NVIDIA GPU)")
    if missing and not _nvidia_gpu_visible():
        missing.append(
            "an NVIDIA GPU at all: no nvidia-smi, no /dev/nvidia0, and not a Jetson (/etc/nv_tegra_release)"
        )
    return missing


def _nvidia_gpu_visible() -> bool:
    return (
        shutil.which("nvidia-smi") is not None
        or Path("/dev/nvidia0").exists()
        or Path("/etc/nv_tegra_release").exists()
    )


def optional_missing() -> list[str]:
    """ONNX Runtime GPU providers the self-test times when present (their absence is not a failure)."""
    from edgefer.runtime.onnx_backend import ORT_PROVIDERS, available_ort_backends

    have = available_ort_backends()
    return [
        f"ONNX Runtime's {ORT_PROVIDERS[b]} (backend {b}): this onnxruntime offers {', '.join(have) or 'nothing'}; "
        "install onnxruntime-gpu (desktop) or the Jetson wheel (docs/jetson.md) to time it"
        for b in ("onnxruntime-cuda", "onnxruntime-tensorrt")
        if b not in have
    ]


def tensorrt_candidate(
    report: SelftestReport, name: str, onnx_path: Path, precision: str, engine_path: Path, max_batch: int,
    references: tuple[tuple[str, str], ...],
) -> Candidate:
    """Build `engine_path` from `onnx_path` with edgefer's builder, then load it with edgefer's
    TensorRT backend; the build (time, size, error, Q/DQ findings) goes into the report."""

    def load() -> Classifier:
        from edgefer.runtime.tensorrt_backend import TensorRTClassifier
        from edgefer.runtime.trt_build import BuildOptions, build_engine

        build = EngineBuild(name, onnx_path.name, precision)
        if precision == "int8":
            build.qdq_issues = qdq_tensorrt_issues(onnx_path)
        report.builds.append(build)
        t0 = time.perf_counter()
        try:
            build_engine(onnx_path, engine_path, BuildOptions(precision=precision, max_batch=max_batch))
        except Exception as exc:
            build.seconds = time.perf_counter() - t0
            build.error = f"{onnx_path}: {exc}"
            raise
        build.seconds = time.perf_counter() - t0
        build.engine = engine_path.name
        build.size_mb = engine_path.stat().st_size / 1e6
        log.info("built %s in %.1f s", engine_path, build.seconds)
        return TensorRTClassifier(engine_path)

    return Candidate(name, load, references)


def ort_gpu_candidate(name: str, onnx_path: Path, backend: str, references: tuple[tuple[str, str], ...]) -> Candidate:
    """ONNX Runtime on its CUDA or TensorRT execution provider. ONNX Runtime quietly falls back to
    the CPU when a provider cannot start (e.g. a missing cuDNN); that is refused here, naming the
    providers the session really got, so a CPU figure is never reported as a GPU one."""

    def load() -> Classifier:
        from edgefer.runtime.onnx_backend import ORT_PROVIDERS, OnnxRuntimeClassifier

        clf = OnnxRuntimeClassifier(onnx_path, backend)
        want = ORT_PROVIDERS[backend]
        if not clf.providers or clf.providers[0] != want:
            got = clf.providers
            clf.close()
            raise RuntimeError(
                f"{onnx_path}: asked ONNX Runtime for {want}, the session runs on {got} (provider failed to start)"
            )
        return clf

    return Candidate(name, load, references)
