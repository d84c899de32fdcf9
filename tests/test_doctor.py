"""`edgefer doctor`: the real command, table and JSON, on this machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from edgefer.runtime.doctor import build_flag, jetson_model


def _doctor(*args: str) -> subprocess.CompletedProcess[str]:
    # No EDGEFER_* override: the face model is the one shipped in the package.
    env = {k: v for k, v in os.environ.items() if k not in ("EDGEFER_MODELS_DIR", "EDGEFER_FACE_MODEL")}
    return subprocess.run([sys.executable, "-m", "edgefer.cli", "doctor", *args],
                          capture_output=True, text=True, timeout=120, env=env)


def test_doctor_table(tiny_onnx_model: Path) -> None:
    res = _doctor("--model", str(tiny_onnx_model))
    assert res.returncode == 0, res.stderr
    out = res.stdout
    for label in ("Python", "OpenCV", "MediaPipe", "ONNX Runtime", "TensorRT", "Cameras", "Face model", "Auto backend"):
        assert label in out
    assert "CPUExecutionProvider" in out
    assert "(from package), sha256 ok" in out  # the shipped face model is found and intact
    assert "H.264 (libx264 via PyAV" in out  # what --record writes on this machine
    assert "test_resnet, 48x48 gray" in out  # the model's contract summary
    assert "onnxruntime-cpu" in out.splitlines()[-1]


def test_doctor_json(tiny_onnx_model: Path) -> None:
    import cv2
    import onnxruntime

    res = _doctor("--json", "--model", str(tiny_onnx_model))
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["onnxruntime"]["version"] == onnxruntime.__version__
    assert report["onnxruntime"]["providers"] == onnxruntime.get_available_providers()
    assert "CPUExecutionProvider" in report["onnxruntime"]["providers"]
    assert report["opencv"]["version"] == cv2.__version__
    assert report["opencv"]["ffmpeg"] is True  # the pip OpenCV wheel reads video files through FFmpeg
    assert report["tensorrt"]["tensorrt"] == "not installed"
    assert report["face_model"]["sha256_ok"] is True
    assert report["recording"]["h264_encoder"] == "libx264" and report["recording"]["why_not"] is None
    assert report["model"]["ok"] and report["model"]["contract"]["input"] == "48x48 gray"
    assert report["model"]["contract"]["outputs"] == ["logits", "attention", "cam"]
    assert report["auto_backend"] == "onnxruntime-cpu"
    assert isinstance(report["cameras"], list)
    assert report["platform"]["jetson"] is None


def test_doctor_reports_a_broken_model_and_still_exits_0(tmp_path: Path) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a model")
    res = _doctor("--json", "--model", str(bad))
    assert res.returncode == 0
    report = json.loads(res.stdout)
    assert report["model"]["ok"] is False and "broken.onnx" in report["model"]["error"]


def test_jetson_detection(tmp_path: Path) -> None:
    assert jetson_model(tmp_path) is None
    (tmp_path / "proc" / "device-tree").mkdir(parents=True)
    (tmp_path / "proc" / "device-tree" / "model").write_bytes(b"NVIDIA Jetson Orin Nano Developer Kit\0")
    assert jetson_model(tmp_path) == "NVIDIA Jetson Orin Nano Developer Kit"
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "nv_tegra_release").write_text("# R36 (release), REVISION: 4.0\n")
    assert jetson_model(tmp_path) == "NVIDIA Jetson Orin Nano Developer Kit (# R36 (release), REVISION: 4.0)"


def test_build_flags() -> None:
    info = "  Video I/O:\n    FFMPEG:                      YES\n    GStreamer:                   NO\n"
    assert build_flag(info, "FFMPEG") is True
    assert build_flag(info, "GStreamer") is False
    assert build_flag(info, "NVIDIA CUDA") is False


def test_runtime_never_imports_torch(tiny_onnx_model: Path) -> None:
    code = (
        "import sys, numpy as np\n"
        "from edgefer.runtime import load_classifier\n"
        "from edgefer.runtime import doctor, engine_cache, trt_build, tensorrt_backend, crops\n"
        f"c = load_classifier({str(tiny_onnx_model)!r})\n"
        "c.predict(np.zeros((2, 48, 48, 3), np.uint8))\n"
        "doctor.collect()\n"
        "bad = [m for m in ('torch', 'timm', 'PyQt6', 'onnx') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
