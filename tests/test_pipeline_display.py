"""The OpenCV window of `edgefer run` (no --headless) under a real X server (Xvfb)."""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.support.pipeline import make_clip
from tests.support.processes import reaped

REPO = Path(__file__).resolve().parents[1]


def _free_display() -> int:
    for n in range(91, 140):
        if not Path(f"/tmp/.X{n}-lock").exists() and not Path(f"/tmp/.X11-unix/X{n}").exists():
            return n
    raise RuntimeError("no free X display number")


def _xwd_to_array(data: bytes) -> np.ndarray:
    """Decode an `xwd` dump (ZPixmap, 24/32-bit TrueColor) into an (H, W, 3) BGR array."""
    header = struct.unpack(">25I", data[:100])
    header_size, width, height = header[0], header[4], header[5]
    byte_order, bits_per_pixel, bytes_per_line, ncolors = header[7], header[11], header[12], header[19]
    assert bits_per_pixel in (24, 32), f"unexpected xwd pixel size {bits_per_pixel}"
    bpp = bits_per_pixel // 8
    offset = header_size + ncolors * 12
    raw = np.frombuffer(data[offset : offset + bytes_per_line * height], dtype=np.uint8)
    pixels = raw.reshape(height, bytes_per_line)[:, : width * bpp].reshape(height, width, bpp)
    if byte_order == 0:  # LSBFirst: B, G, R(, x)
        return pixels[..., :3]
    return pixels[..., bpp - 3 :][..., ::-1]  # MSBFirst: (x,) R, G, B


@pytest.fixture()
def xserver():
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is missing: install it (apt-get install -y xvfb; .ci/run does) to test the window")
    for tool, package in (("xwininfo", "x11-utils"), ("xwd", "x11-apps")):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: install it (apt-get install -y {package}; .ci/run does) to find "
                        "and capture the window")
    n = _free_display()
    proc = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "1024x600x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not Path(f"/tmp/.X11-unix/X{n}").exists():
        assert time.monotonic() < deadline and proc.poll() is None, "Xvfb did not start"
        time.sleep(0.05)
    yield f":{n}"
    proc.terminate()
    proc.wait(timeout=10)


def test_window_shows_the_annotated_video(xserver, one_face_video, tiny_onnx_model, face_model, tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", [(one_face_video, 0, 20)], size=(320, 180))
    rows = tmp_path / "rows.csv"
    env = dict(os.environ, DISPLAY=xserver, QT_QPA_PLATFORM="xcb", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "edgefer.cli", "run", "--source", str(clip), "--loop", "--model", str(tiny_onnx_model),
           "--face-model", str(face_model), "--csv", str(rows), "--no-progress", "--set", "flush_seconds=0.2"]
    with reaped(subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)) as proc:
        deadline = time.monotonic() + 90
        while not (rows.exists() and rows.read_text().count("\n") > 30):
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "no rows written"
            time.sleep(0.1)
        import cv2

        ok, src = cv2.VideoCapture(str(clip)).read()
        assert ok
        src = src.astype(np.float32)
        flat = np.abs(src.mean() - src).mean()  # the error of a flat grey picture
        # The window may need a moment to appear, take the video's size and paint: poll.
        deadline = time.monotonic() + 15
        while True:
            tree = subprocess.run(["xwininfo", "-root", "-tree", "-display", xserver], capture_output=True, text=True).stdout
            info = subprocess.run(["xwininfo", "-name", "edgefer", "-display", xserver], capture_output=True, text=True).stdout
            fields = dict(line.strip().split(":", 1) for line in info.splitlines() if ":" in line)
            state = "no window"
            if '"edgefer"' in tree and "Width" in fields:
                x, y = int(fields["Absolute upper-left X"]), int(fields["Absolute upper-left Y"])
                w, h = int(fields["Width"]), int(fields["Height"])
                dump = subprocess.run(["xwd", "-root", "-silent", "-display", xserver], capture_output=True, check=True).stdout
                shown = _xwd_to_array(dump)[y : y + h, x : x + w].astype(np.float32)
                err = float(np.abs(shown - src).mean()) if shown.shape == src.shape else float("inf")
                state = f"window {w}x{h}, picture error {err:.1f} vs flat {flat:.1f}, std {shown.std():.1f}"
                # the window opens at the video's size and shows the video (a later frame of the
                # same clip, annotated): far closer to a source frame than a flat picture is
                if (w, h) == (320, 180) and shown.std() > 20 and err < 0.8 * flat:
                    break
            assert time.monotonic() < deadline, state
            time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err_text = proc.communicate(timeout=60)
    assert proc.returncode == 130, err_text[-2000:]
    assert "running headless" not in err_text
