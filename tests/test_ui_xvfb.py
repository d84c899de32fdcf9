"""The real application as a process: under a real X server (Xvfb, Qt's xcb platform plugin), and
closed with Ctrl+C.

`edgefer ui --source VIDEO` runs as a subprocess, with OpenCV imported *before* Qt (the order
that breaks PyQt6 when cv2's Qt variables are left in place), shows the video for a few seconds,
grabs its own window from the X server and quits. The screenshot must show the source video where
the window says the video is. Xvfb comes from `.ci/run` (or `apt-get install xvfb`); without it
this test fails rather than skips, so a green run always means the window was really drawn.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.support.processes import reaped

REPO = Path(__file__).resolve().parents[1]
LAUNCH = "import cv2, sys\nfrom edgefer.cli import main\nsys.exit(main(sys.argv[1:]))\n"


@pytest.fixture
def x_display(tmp_path: Path):
    """A private Xvfb on a free display number (Xvfb picks it and reports it via -displayfd)."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.fail("Xvfb is not installed: run .ci/run, or apt-get install xvfb and the xcb libraries it lists",
                    pytrace=False)
    read_fd, write_fd = os.pipe()
    log = open(tmp_path / "xvfb.log", "wb")
    proc = subprocess.Popen(
        [xvfb, "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp", "-noreset"],
        pass_fds=(write_fd,), stdout=log, stderr=subprocess.STDOUT,
    )
    os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], 20)
        number = os.read(read_fd, 32).decode().strip() if ready else ""
        if not number.isdigit():
            proc.kill()
            pytest.fail(f"Xvfb did not start: {(tmp_path / 'xvfb.log').read_text(errors='replace')}", pytrace=False)
        yield f":{number}"
    finally:
        os.close(read_fd)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _gray_frames(video: Path, size: tuple[int, int]) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        frames.append(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32).ravel())
    cap.release()
    return frames


@pytest.mark.slow
def test_real_window_under_xvfb_shows_the_video(x_display: str, tmp_path: Path, tiny_onnx_model: Path,
                                                one_face_video: Path) -> None:
    shot = tmp_path / "window.png"
    env = {k: v for k, v in os.environ.items() if not k.startswith("QT_")}
    env.update(DISPLAY=x_display, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-c", LAUNCH, "ui", "--source", str(one_face_video), "--model", str(tiny_onnx_model),
           "--settings", str(tmp_path / "ui.ini"), "--screenshot", str(shot), "--quit-after", "12",
           "--platform", "xcb"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"edgefer ui failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-4000:]}"
    assert "Could not load the Qt platform plugin" not in proc.stderr
    info = json.loads(shot.with_name(shot.name + ".json").read_text())
    assert info["qt_platform"] == "xcb"
    assert info["frames_shown"] >= 10, info
    assert info["faces"] and all(v for v in info["faces"].values()), info
    assert float(info["fps_label"].split()[0]) > 0, info

    screen = cv2.imread(str(shot))
    assert screen is not None and screen.shape[0] >= 560 and screen.shape[1] >= 900
    assert float(screen.std()) > 20, "the screenshot is blank"
    x, y, w, h = info["video_rect"]
    assert w > 320 and h > 180 and abs(w / h - 640 / 360) < 0.02
    shown = cv2.cvtColor(screen[y:y + h, x:x + w], cv2.COLOR_BGR2GRAY).astype(np.float32).ravel()
    # The heatmap and labels cover the face; the rest of the picture is the source frame. The
    # background is static, so every frame resembles the screenshot somewhat: require a close
    # match, and that the best-matching source frame is the one the window says it shows.
    frames = _gray_frames(one_face_video, (w, h))
    corr = np.array([np.corrcoef(shown, f)[0, 1] for f in frames])
    idx = info["frame_index"]
    mad = float(np.median(np.abs(shown - frames[idx])))
    assert corr[idx] > 0.8 and mad <= 4, f"video region vs frame {idx}: corr {corr[idx]:.2f}, median |d| {mad:.1f}"
    assert abs(int(np.argmax(corr)) - idx) <= 5, f"best match is frame {int(np.argmax(corr))}, window says {idx}"
    # Outside the video there is the rest of the window (panels, toolbar), not the video again.
    side = screen[:, x + w + 20:]
    assert side.size and float(side.std()) > 5
    # The settings went to the INI file given, nowhere else.
    assert (tmp_path / "ui.ini").is_file()


def test_ctrl_c_closes_the_application_cleanly(tmp_path: Path, tiny_onnx_model: Path, one_face_video: Path) -> None:
    """SIGINT (Ctrl+C in the terminal) closes the window the normal way: exit 0, settings saved."""
    import signal
    import time

    env = {k: v for k, v in os.environ.items() if not k.startswith("QT_")}
    env.update(PYTHONPATH=str(REPO))
    ini = tmp_path / "ui.ini"
    cmd = [sys.executable, "-c", LAUNCH, "ui", "--source", str(one_face_video), "--model", str(tiny_onnx_model),
           "--settings", str(ini), "--platform", "offscreen", "--loop"]
    with reaped(subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)) as proc:
        deadline = time.monotonic() + 90
        started = False
        while time.monotonic() < deadline and not started:
            line = proc.stderr.readline()
            if not line:
                break
            started = "pipeline: started on" in line
        assert started, "the pipeline never started"
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert "frame(s) processed" in err  # the pipeline was stopped, not killed
    assert ini.is_file() and str(one_face_video) in ini.read_text()
