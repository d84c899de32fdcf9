"""The window's plain parts, without Qt: history, camera listing, settings, snapshot files, env fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgefer.classes import EXPRESSIONS
from edgefer.types import Box, Face, FacePrediction, Frame, FrameResult
from ui.cameras import list_cameras
from ui.history import HistoryStore
from ui.outputs import recording_path, write_snapshot
from ui.prefs import HEATMAP_MODES, UiPrefs, needs_password, prefs_from_mapping, prefs_to_mapping

REPO = Path(__file__).resolve().parents[1]


def _probs(k: int) -> np.ndarray:
    p = np.full(7, 0.05, np.float32)
    p[k] = 0.7
    return p


def _result(index: int, t: float, faces: dict[int, int], image: np.ndarray | None = None) -> FrameResult:
    img = image if image is not None else np.zeros((36, 64, 3), np.uint8)
    preds = []
    for tid, k in faces.items():
        face = Face(tid, Box(4.0 * tid, 5.0, 20.0, 22.0), np.zeros((478, 2), np.float32))
        preds.append(FacePrediction(face, _probs(k), _probs(k), None, None, np.eye(2, 3, dtype=np.float32)))
    return FrameResult(Frame(index, t, img), preds, img.copy())


# ---- history ------------------------------------------------------------------------------
def test_history_keeps_only_the_window_and_forgets_gone_faces() -> None:
    h = HistoryStore(window_s=2.0)
    for i in range(20):  # 5 s at 4 fps (exact binary times), face 2 only in the first second
        faces = {1: i % 7} | ({2: 3} if i < 4 else {})
        h.add_result(_result(i, i / 4, faces))
    s = h.series(1)
    assert s.times[0] == 2.75 and s.times[-1] == 4.75  # 2 s back from the newest, inclusive
    assert len(s) == 9 and s.probs.shape == (9, 7)
    assert np.argmax(s.probs[-1]) == 19 % 7
    assert h.track_ids() == [1]  # face 2 left more than a window ago
    assert len(h.series(2)) == 0


def test_history_restarts_when_time_goes_back_and_rejects_bad_vectors() -> None:
    h = HistoryStore(window_s=10.0)
    for i in range(30):
        h.add(i / 10, 1, _probs(1))
    h.add(0.0, 5, _probs(2))  # a new file / looped video: timestamps start over
    assert h.track_ids() == [5]
    assert h.latest_time == 0.0
    with pytest.raises(ValueError, match="7 probabilities"):
        h.add(0.1, 5, np.ones(3))


def test_history_is_bounded() -> None:
    h = HistoryStore(window_s=100.0, max_samples=64)
    for i in range(1000):
        h.add(i / 1000, 1, _probs(0))
    assert len(h.series(1)) == 64


# ---- cameras ------------------------------------------------------------------------------
def test_list_cameras_reads_dev_and_sysfs(tmp_path: Path) -> None:
    dev, sysfs = tmp_path / "dev", tmp_path / "sys"
    dev.mkdir()
    for name, index, label in (("video0", "0", "HD Webcam"), ("video1", "1", "HD Webcam"), ("video2", "0", "USB Cam")):
        (dev / name).touch()
        (sysfs / name).mkdir(parents=True)
        (sysfs / name / "index").write_text(index + "\n")
        (sysfs / name / "name").write_text(label + "\n")
    (dev / "video10").touch()  # no sysfs entry: still offered, with a generic name
    (dev / "videox").touch()
    (dev / "null").touch()
    cams = list_cameras(dev, sysfs)
    assert [c.index for c in cams] == [0, 2, 10]  # video1 is the webcam's metadata node
    assert cams[0].label == f"HD Webcam ({dev / 'video0'})"
    assert cams[2].name == "Camera 10" and cams[2].source == "10"
    assert list_cameras(tmp_path / "missing", sysfs) == []


# ---- preferences --------------------------------------------------------------------------
def test_prefs_round_trip_and_bad_values_fall_back(caplog: pytest.LogCaptureFixture) -> None:
    p = UiPrefs(source="a.mp4", heatmap="cam", opacity=0.3, smoothing=0.2, max_faces=2, output_dir="/tmp/x")
    for s in ("b.mp4", "a.mp4", "0"):
        p.remember_source(s)
    assert p.recent_sources == ["0", "a.mp4", "b.mp4"]
    stored = {k: (str(v) if not isinstance(v, list) else v) for k, v in prefs_to_mapping(p).items()}
    assert prefs_from_mapping(stored.get) == p  # QSettings INI gives strings back
    bad = dict(stored, heatmap="gradcam", opacity="2.5", max_faces="many")
    q = prefs_from_mapping(bad.get, origin="test.ini")
    assert (q.heatmap, q.opacity, q.max_faces) == ("attention", 0.45, 4)
    assert q.source == "a.mp4"
    assert "test.ini: ignoring stored heatmap='gradcam'" in caplog.text


def test_prefs_never_keep_a_password() -> None:
    p = UiPrefs(source="rtsp://admin:pw123@cam.local:554/s?token=abc")
    p.remember_source(p.source)
    p.remember_source("rtsp://admin:other@cam.local:554/s?token=abc")  # same camera, another password: one entry
    assert p.recent_sources == ["rtsp://admin:***@cam.local:554/s?token=***"]
    stored = prefs_to_mapping(p)
    assert "pw123" not in repr(stored) and "abc" not in repr(stored)
    assert stored["source"] == "rtsp://admin:***@cam.local:554/s?token=***"
    assert needs_password(stored["source"]) and not needs_password("rtsp://cam.local/s") and not needs_password("0")


def test_heatmap_cycle_visits_every_mode() -> None:
    p = UiPrefs()
    seen = []
    for _ in range(len(HEATMAP_MODES)):
        p.heatmap = p.next_heatmap()
        seen.append(p.heatmap)
    assert seen == ["cam", "off", "attention"]


# ---- outputs ------------------------------------------------------------------------------
def test_snapshot_writes_png_and_json_that_read_back(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (36, 64, 3), dtype=np.uint8)
    result = _result(12, 0.48, {3: 1, 7: 6}, image)
    snap = write_snapshot(result, tmp_path / "out", source="cam0", model="m.onnx")
    assert np.array_equal(cv2.imread(str(snap.png)), image)  # PNG is lossless
    data = json.loads(snap.json.read_text())
    assert data["frame"] == 12 and data["timestamp_s"] == pytest.approx(0.48)
    assert [f["face_id"] for f in data["faces"]] == [3, 7]
    assert data["faces"][0]["expression"] == "happiness" and data["faces"][1]["expression"] == "sadness"
    assert data["faces"][0]["p_happiness"] == pytest.approx(0.7)
    assert set(data["faces"][0]) >= {"x", "y", "w", "h", "confidence"} | {f"p_{c}" for c in EXPRESSIONS}
    second = write_snapshot(result, tmp_path / "out")
    assert second.png != snap.png and snap.png.exists()  # never overwrites
    assert sorted(p.suffix for p in (tmp_path / "out").iterdir()) == [".json", ".json", ".png", ".png"]


def test_snapshot_into_unwritable_place_names_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match=str(blocker)):
        write_snapshot(_result(0, 0.0, {1: 0}), blocker / "sub")


def test_recording_path_is_fresh(tmp_path: Path) -> None:
    first = recording_path(tmp_path / "rec")
    first.write_bytes(b"x")
    second = recording_path(tmp_path / "rec")
    assert first.suffix == ".mp4" and first.name.startswith("edgefer_")
    assert second != first and not second.exists()


# ---- the OpenCV / Qt environment fix ------------------------------------------------------
def test_opencv_qt_variables_are_removed_whatever_the_import_order() -> None:
    code = (
        "import os, cv2\n"
        "cv2_dir = os.path.dirname(cv2.__file__)\n"
        "os.environ['QT_QPA_PLATFORM_PLUGIN_PATH'] = os.path.join(cv2_dir, 'qt', 'plugins')\n"
        "os.environ['QT_QPA_FONTDIR'] = os.path.join(cv2_dir, 'qt', 'fonts')\n"
        "os.environ['QT_PLUGIN_PATH'] = '/opt/my/plugins'\n"
        "from ui.qt_env import prepare_qt_environment\n"
        "removed = prepare_qt_environment('offscreen')\n"
        "assert sorted(removed) == ['QT_QPA_FONTDIR', 'QT_QPA_PLATFORM_PLUGIN_PATH'], removed\n"
        "assert 'QT_QPA_PLATFORM_PLUGIN_PATH' not in os.environ and 'QT_QPA_FONTDIR' not in os.environ\n"
        "assert os.environ['QT_PLUGIN_PATH'] == '/opt/my/plugins'  # the user's own value stays\n"
        "from PyQt6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "assert app.platformName() == 'offscreen', app.platformName()\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("QT_")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


# ---- the command line ---------------------------------------------------------------------
def test_ui_command_rejects_bad_arguments_before_opening_a_window(tmp_path: Path, capsys) -> None:
    from edgefer.cli import main

    assert main(["ui", "--screenshot", str(tmp_path / "s.png")]) == 2
    assert "--screenshot needs --quit-after" in capsys.readouterr().out
    assert main(["ui", "--model", str(tmp_path / "missing.onnx")]) == 2
    assert f"model file not found: {tmp_path / 'missing.onnx'}" in capsys.readouterr().out
    assert main(["ui", "--quit-after", "-1"]) == 2
    proc = subprocess.run([sys.executable, "-c", "import sys, edgefer.cli as c; c.build_parser(); "
                           "print('PyQt6' in sys.modules)"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "False", "building the CLI must not import Qt"
