"""`edgefer doctor`: what this machine offers edgefer, in one table (or JSON with `--json`).

The questions users ask first on a new Jetson or desktop: which Python/OpenCV/MediaPipe, can
OpenCV read video files (FFmpeg) and CSI cameras (GStreamer), which ONNX Runtime providers and
which TensorRT/CUDA are there, which GPU and cameras, is the face model present and intact, what
is the default model, and which backend `auto` would take. Every probe is guarded: a missing
piece is reported as "not installed"/"none", never a traceback, and the command always exits 0.
"""

from __future__ import annotations

import argparse
import glob
import importlib.metadata
import json
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

NOT_INSTALLED = "not installed"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return NOT_INSTALLED


def jetson_model(root: Path = Path("/")) -> str | None:
    """The Jetson board name (device-tree model) or L4T release line; None when not a Jetson."""
    dt = root / "proc" / "device-tree" / "model"
    release = root / "etc" / "nv_tegra_release"
    model = None
    if dt.is_file():
        text = dt.read_bytes().decode(errors="replace").strip("\0 \n")
        if "jetson" in text.lower() or "nvidia" in text.lower():
            model = text
    if release.is_file():
        line = release.read_text(errors="replace").splitlines()[0].strip() if release.stat().st_size else "L4T"
        model = f"{model} ({line})" if model else line
    return model


def build_flag(build_info: str, name: str) -> bool:
    """`NAME: YES ...` in `cv2.getBuildInformation()` (FFMPEG, GStreamer, NVIDIA CUDA)."""
    m = re.search(rf"^\s*{re.escape(name)}:\s*(YES|NO)", build_info, re.IGNORECASE | re.MULTILINE)
    return bool(m and m.group(1).upper() == "YES")


def opencv_info() -> dict[str, Any]:
    try:
        import cv2
    except ImportError:
        return {"version": NOT_INSTALLED}
    info = cv2.getBuildInformation()
    return {
        "version": cv2.__version__,
        "ffmpeg": build_flag(info, "FFMPEG"),
        "gstreamer": build_flag(info, "GStreamer"),
        "cuda": build_flag(info, "NVIDIA CUDA"),
    }


def onnxruntime_info() -> dict[str, Any]:
    try:
        import onnxruntime as ort
    except ImportError:
        return {"version": NOT_INSTALLED, "providers": []}
    return {"version": ort.__version__, "providers": list(ort.get_available_providers()), "device": ort.get_device()}


def tensorrt_info() -> dict[str, Any]:
    from edgefer.runtime.trt_env import cuda_device, cuda_runtime_version, tensorrt_version

    device = cuda_device()
    return {
        "tensorrt": tensorrt_version() or NOT_INSTALLED,
        "cuda_python": _version("cuda-python") if _version("cuda-python") != NOT_INSTALLED else _version("cuda-bindings"),
        "cuda_runtime": cuda_runtime_version() or NOT_INSTALLED,
        "cuda_device": (
            {"name": device.name, "compute_capability": device.compute_capability, "memory_mb": device.total_memory_mb}
            if device
            else None
        ),
    }


def gpu_info() -> dict[str, Any]:
    out: dict[str, Any] = {"nvidia_smi": None, "tegrastats": shutil.which("tegrastats") is not None}
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            res = subprocess.run(
                [smi, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=10, check=False,
            )
            out["nvidia_smi"] = [ln.strip() for ln in res.stdout.splitlines() if ln.strip()] or res.stderr.strip() or None
        except (OSError, subprocess.TimeoutExpired) as exc:
            out["nvidia_smi"] = f"failed: {exc}"
    return out


def face_model_info(path: str | None) -> dict[str, Any]:
    try:
        from edgefer.face_model import face_model_status
    except ImportError as exc:  # the module belongs to another area; never let doctor crash
        return {"ok": False, "message": f"edgefer.face_model unavailable ({exc})"}
    st = face_model_status(path)
    return {"path": str(st.path) if st.path else None, "source": st.source, "sha256_ok": st.sha256_ok, "message": st.message}


def model_info(path: str | None, contract_json: str | None) -> dict[str, Any]:
    from edgefer.runtime.contract_io import parse_contract_option
    from edgefer.runtime.loader import resolve_model_path
    from edgefer.runtime.onnx_backend import read_onnx_contract

    try:
        p = resolve_model_path(path)
    except (FileNotFoundError, ValueError) as exc:
        return {"path": path, "ok": False, "error": str(exc)}
    info: dict[str, Any] = {"path": str(p), "size_mb": round(p.stat().st_size / 1e6, 2), "ok": True}
    try:
        override = parse_contract_option(contract_json)
        if override is not None:
            c = override
        elif p.suffix.lower() in (".engine", ".plan", ".trt"):
            from edgefer.runtime.engine_cache import read_sidecar

            c = read_sidecar(p).contract
        else:
            c = read_onnx_contract(p)
    except (ValueError, FileNotFoundError) as exc:
        info.update(ok=False, error=str(exc))
        return info
    info["contract"] = {
        "backbone": c.backbone,
        "input": f"{c.input_size[0]}x{c.input_size[1]} {c.color}",
        "attention": f"{c.attention_layer} {c.attention_size[0]}x{c.attention_size[1]}",
        "au_aligned": c.au_aligned,
        "trained_on": c.trained_on,
        "outputs": list(c.outputs),
        "classes": list(c.classes),
    }
    return info


def auto_backend(model_path: str | None) -> str:
    from edgefer.runtime.loader import choose_backend
    from edgefer.runtime.onnx_backend import available_ort_backends
    from edgefer.runtime.trt_env import tensorrt_usable

    try:
        return choose_backend(Path(model_path or "model.onnx"), tensorrt_usable(), available_ort_backends())
    except RuntimeError as exc:
        return f"none ({exc})"


def recording_info() -> dict[str, Any]:
    """What `edgefer run --record` writes here: H.264 through PyAV, or OpenCV's mp4v and why."""
    from edgefer.pipeline.sinks import h264_encoder

    name, why = h264_encoder()
    return {"pyav": _version("av"), "h264_encoder": name, "why_not": why or None}


def collect(model: str | None = None, face_model: str | None = None, contract: str | None = None) -> dict[str, Any]:
    """Every probe, as one JSON-able dict."""
    minfo = model_info(model, contract)
    return {
        "python": {"version": platform.python_version(), "executable": sys.executable},
        "platform": {
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
            "jetson": jetson_model(),
        },
        "edgefer": _version("edgefer"),
        "opencv": opencv_info(),
        "mediapipe": _version("mediapipe"),
        "numba": _version("numba"),
        "onnxruntime": onnxruntime_info(),
        "tensorrt": tensorrt_info(),
        "gpu": gpu_info(),
        "cameras": sorted(glob.glob("/dev/video*")),
        "face_model": face_model_info(face_model),
        "recording": recording_info(),
        "model": minfo,
        "auto_backend": auto_backend(minfo.get("path")),
    }


def _recording_line(rec: dict[str, Any]) -> str:
    if rec["h264_encoder"]:
        return f"H.264 ({rec['h264_encoder']} via PyAV {rec['pyav']}), plays in browsers"
    return f"mp4v through OpenCV (browsers do not play it): {rec['why_not']}"


def _yn(value: Any) -> str:
    return "yes" if value else "no"


def render(report: dict[str, Any]) -> str:
    """The human-readable two-column table."""
    ocv, ort, trt, gpu, fm, mdl = (report[k] for k in ("opencv", "onnxruntime", "tensorrt", "gpu", "face_model", "model"))
    dev = trt["cuda_device"]
    rows: list[tuple[str, str]] = [
        ("Python", f"{report['python']['version']} ({report['python']['executable']})"),
        ("Platform", f"{report['platform']['system']} {report['platform']['release']} {report['platform']['machine']}"),
        ("Jetson", report["platform"]["jetson"] or "no"),
        ("edgefer", report["edgefer"]),
        ("OpenCV", f"{ocv['version']}" + (
            f" (FFmpeg {_yn(ocv['ffmpeg'])}, GStreamer {_yn(ocv['gstreamer'])}, CUDA {_yn(ocv['cuda'])})"
            if "ffmpeg" in ocv else "")),
        ("MediaPipe", report["mediapipe"]),
        ("Numba", report["numba"]),
        ("ONNX Runtime", f"{ort['version']}"),
        ("  providers", ", ".join(ort["providers"]) or "none"),
        ("TensorRT", trt["tensorrt"]),
        ("CUDA runtime", f"{trt['cuda_runtime']} (cuda-python {trt['cuda_python']})"),
        ("CUDA device", f"{dev['name']} (compute {dev['compute_capability']}, {dev['memory_mb']} MB)" if dev else "none"),
        ("nvidia-smi",
         "; ".join(gpu["nvidia_smi"]) if isinstance(gpu["nvidia_smi"], list) else (gpu["nvidia_smi"] or "not found")),
        ("tegrastats", "present" if gpu["tegrastats"] else "not found"),
        ("Cameras", ", ".join(report["cameras"]) or "none found"),
        ("Face model", fm["message"]),
        ("Recording", _recording_line(report["recording"])),
    ]
    if mdl.get("ok"):
        c = mdl["contract"]
        rows += [
            ("Default model", f"{mdl['path']} ({mdl['size_mb']} MB)"),
            ("  contract", f"{c['backbone']}, {c['input']}, attention {c['attention']}, AU-aligned {_yn(c['au_aligned'])}"),
            ("  trained on", c["trained_on"]),
            ("  outputs", ", ".join(c["outputs"])),
        ]
    else:
        rows.append(("Default model", f"unusable: {mdl.get('error')}"))
    rows.append(("Auto backend", report["auto_backend"]))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from edgefer.runtime.contract_io import add_contract_argument

    parser.add_argument("--json", action="store_true", help="print the report as JSON (for scripts)")
    parser.add_argument("--model", default=None, help="model to describe (default: the shipped model)")
    parser.add_argument("--face-model", default=None, help="face_landmarker.task to check (default: the usual search)")
    add_contract_argument(parser)


def run(args: argparse.Namespace) -> int:
    report = collect(getattr(args, "model", None), getattr(args, "face_model", None), getattr(args, "contract", None))
    if getattr(args, "json", False):
        print(json.dumps(report, indent=2, default=str))
    else:
        print(render(report))
    return 0
