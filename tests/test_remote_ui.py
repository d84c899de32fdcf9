"""`edgefer ui --serve`: the window's runs reach the page's endpoints like `edgefer run`'s (offscreen Qt)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from edgefer.pipeline.rows import row_columns
from tests.support.processes import watch_stderr


def test_the_window_serves_its_runs(one_face_video: Path, tmp_path: Path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgefer.cli", "ui", "--source", str(one_face_video), "--loop", "--quit-after", "25",
         "--settings", str(tmp_path / "ui.ini"), "--platform", "offscreen", "--serve", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines, found = watch_stderr(proc, "serving on http://")
    try:
        assert found.wait(60), "".join(lines[-20:])
        port = int(re.search(r"127\.0\.0\.1:(\d+)/", "".join(lines)).group(1))  # type: ignore[union-attr]
        rows: list = []
        deadline = time.monotonic() + 60
        while not rows and time.monotonic() < deadline:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/rows", timeout=5) as r:
                rows = json.loads(r.read())["rows"]
            time.sleep(0.3)
        assert rows and list(rows[0]) == row_columns()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            metrics = r.read().decode()
        assert re.search(r"^edgefer_frames_processed_total [1-9]", metrics, re.M), metrics[:2000]
        proc.terminate()  # the window closes on SIGTERM; the session is closed on the way out
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "streamed as JPEG" in out, out + "".join(lines[-20:])
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)  # closed with the window
