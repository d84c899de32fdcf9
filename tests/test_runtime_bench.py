"""`edgefer bench model` really runs every column side by side (no timing asserted: that is the bench's job)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_bench_model_runs_ort_and_torch(tiny_onnx_model: Path, fer_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    res = subprocess.run(
        [sys.executable, "-m", "edgefer.cli", "bench", "model", "--model", str(tiny_onnx_model), "--batch", "1,4",
         "--iters", "2", "--warmup", "1", "--threads", "1", "--crops", str(fer_dir / "test"), "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, res.stderr
    text = res.stdout
    assert "onnxruntime-cpu" in text and "torch-cpu" in text and "vs torch" in text
    assert "batch 4 / batch 1" in text and "real crops" in text
    data = json.loads(out.read_text())
    names = {(t["name"], t["batch"]) for t in data["timings"]}
    assert names == {("onnxruntime-cpu", 1), ("onnxruntime-cpu", 4), ("torch-cpu", 1), ("torch-cpu", 4)}
    assert all(t["ms_per_call"] > 0 for t in data["timings"])


def test_bench_model_rejects_bad_batches(tiny_onnx_model: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "edgefer.cli", "bench", "model", "--model", str(tiny_onnx_model),
                          "--batch", "1,x"], capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "--batch" in res.stderr
