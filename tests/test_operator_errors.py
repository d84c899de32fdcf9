"""What an operator sees when the setup is wrong: one line naming the file, the documented exit
code, no traceback (issue 11, items 13 and 15). Every case runs the real `edgefer` program."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest


def edgefer(*argv: str, timeout: float = 180, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess (the way a supervisor or a shell runs it)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "edgefer.cli", *argv],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd,
    )


def one_line_error(res: subprocess.CompletedProcess[str]) -> str:
    """The whole of stderr, which must be a single line and no traceback."""
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    return lines[0]


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="this machine has TensorRT")
def test_engine_without_tensorrt_is_one_line_and_exit_2(tmp_path: Path, one_face_video: Path) -> None:
    engine = tmp_path / "model.engine"  # the import fails before a byte is read: any content will do
    engine.write_bytes(b"an engine built on a Jetson")
    res = edgefer("run", "--source", str(one_face_video), "--model", str(engine), "--headless",
                  "--max-frames", "3", "--no-progress")
    assert res.returncode == 2
    line = one_line_error(res)
    assert str(engine) in line and "TensorRT" in line and "--model MODEL.onnx" in line

    res = edgefer("eval", "--model", str(engine), "--data", str(tmp_path), "--report", str(tmp_path / "r.json"))
    assert res.returncode == 2
    line = one_line_error(res)
    assert line.startswith("edgefer eval: ") and str(engine) in line
