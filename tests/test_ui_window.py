"""The monitoring window on the real pipeline, offscreen: video, face panels, recording, snapshot,
shortcuts, faults, remembered settings and a clean shutdown.

Runs the real `edgefer.pipeline.runner.Pipeline` (MediaPipe + ONNX Runtime with the tiny model) on
the one-face video, paced at its own frame rate and looped so the run never ends mid-test.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

# Before any QApplication exists: no display needed, and OpenCV's Qt variables out of the way.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from ui.qt_env import prepare_qt_environment  # noqa: E402

prepare_qt_environment()

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PyQt6.QtCore import QSettings, Qt, QTimer  # noqa: E402

from edgefer.classes import EXPRESSIONS  # noqa: E402
from edgefer.types import Box, Face, FacePrediction, Frame, FrameResult  # noqa: E402
from ui.cameras import list_cameras  # noqa: E402
from ui.controller import PipelineController  # noqa: E402
from ui.history import HistoryStore  # noqa: E402
from ui.main_window import MainWindow  # noqa: E402

WAIT_MS = 60_000  # generous: 2 shared CPU cores, MediaPipe and ONNX Runtime load per window


@pytest.fixture(autouse=True)
def _private_settings(tmp_path: Path):
    """Never touch the user's settings: every QSettings location points into tmp_path."""
    for fmt in (QSettings.Format.IniFormat, QSettings.Format.NativeFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(tmp_path / "qsettings"))
    yield


def _settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat)


def _pipeline_threads() -> list[threading.Thread]:
    """The pipeline's stage threads (edgefer-capture, -track, ...), not the window's control thread."""
    return [t for t in threading.enumerate() if t.name.startswith("edgefer-") and not t.name.startswith("edgefer-ui-")]


@pytest.fixture
def window(qtbot, qapp, tmp_path: Path, tiny_onnx_model: Path):
    before = set(threading.enumerate())
    win = MainWindow(_settings(tmp_path), model=str(tiny_onnx_model), realtime=True, loop=True)
    win.output_edit.setText(str(tmp_path / "out"))
    win._output_changed()
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.activateWindow()
    yield win
    win.close()
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leftover, f"threads left after closing the window: {[t.name for t in leftover]}"


def _start_and_wait_for_faces(qtbot, win: MainWindow, video: Path, frames: int = 8) -> None:
    assert win.start_source(str(video))
    qtbot.waitUntil(lambda: win.controller.state == "running", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: win.results_shown >= frames and len(win.face_list.panels) == 1, timeout=WAIT_MS)


def _press(qtbot, win: MainWindow, key: Qt.Key) -> None:
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=5000)
    qtbot.keyClick(win.video, key)


def test_live_view_face_panel_and_status(qtbot, window: MainWindow, one_face_video: Path) -> None:
    _start_and_wait_for_faces(qtbot, window, one_face_video)
    assert window.video.has_frame
    assert (window.video.frame_size().width(), window.video.frame_size().height()) == (640, 360)
    # The picture keeps its 16:9 aspect ratio inside the view whatever the widget's shape.
    rect = window.video.video_rect()
    assert abs(rect.width() / rect.height() - 640 / 360) < 0.02
    panel = next(iter(window.face_list.panels.values()))
    assert panel.expression in EXPRESSIONS
    assert panel.expression_label.text().lower() == panel.expression
    assert panel.bars.probs.sum() == pytest.approx(1.0, abs=1e-3)
    qtbot.waitUntil(lambda: len(window.history.series(panel.track_id)) >= 5, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: float(window.fps_label.text().split()[0].replace("\u2013", "0")) > 0, timeout=WAIT_MS)
    assert window.backend_label.text() != "backend \u2013"
    assert window.model_label.text() == f"model {Path(window.prefs.model).name}"
    assert window.rec_state_label.text() == "not recording"
    # A layout that survives resizing: the video keeps a sensible share of a small window.
    window.resize(window.minimumSize())
    qtbot.wait(50)
    assert window.video.width() >= 320 and window.video.height() >= 180


def test_record_toggle_writes_a_playable_file(qtbot, window: MainWindow, one_face_video: Path, tmp_path: Path) -> None:
    _start_and_wait_for_faces(qtbot, window, one_face_video)
    _press(qtbot, window, Qt.Key.Key_R)
    path = window.controller.recording
    assert path is not None and Path(path).parent == tmp_path / "out"
    assert window.act_record.isChecked()
    qtbot.waitUntil(lambda: "REC" in window.rec_label.text() and Path(path).name in window.rec_label.text(), timeout=5000)
    shown = window.results_shown
    qtbot.waitUntil(lambda: window.results_shown >= shown + 15, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.record_elapsed() > 0.3, timeout=5000)
    _press(qtbot, window, Qt.Key.Key_R)  # stop: returns once the file is closed
    assert window.controller.recording is None and not window.act_record.isChecked()
    assert window.rec_label.text() == ""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    assert len(frames) >= 10, f"{path} has {len(frames)} readable frames"
    assert frames[0].shape == (360, 640, 3)
    assert float(np.std(frames[len(frames) // 2])) > 10  # real picture, not a black file

    # A recording the pipeline cannot write (here: its folder cannot be created) fails on the
    # sink thread; the window shows it in red and the button pops out by itself.
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    window.controller.start_recording(blocker / "sub" / "rec.mp4")
    qtbot.waitUntil(lambda: window.banner.isVisible() and window.banner.kind == "error", timeout=WAIT_MS)
    assert "blocker" in window.banner.label.text()
    qtbot.waitUntil(lambda: not window.act_record.isChecked() and window.controller.recording is None, timeout=5000)
    assert window.rec_state_label.text() == "not recording"
    assert window.controller.state == "running"  # the rest goes on


def test_snapshot_pause_heatmap_and_full_screen_shortcuts(qtbot, window: MainWindow, one_face_video: Path,
                                                         tmp_path: Path) -> None:
    _start_and_wait_for_faces(qtbot, window, one_face_video)
    with qtbot.waitSignal(window.snapshotSaved, timeout=5000) as saved:
        _press(qtbot, window, Qt.Key.Key_S)
    snap = saved.args[0]
    assert snap.png.parent == tmp_path / "out"
    image = cv2.imread(str(snap.png))
    assert image is not None and image.shape == (360, 640, 3)
    data = json.loads(snap.json.read_text())
    assert len(data["faces"]) == 1 and data["faces"][0]["expression"] in EXPRESSIONS
    assert sum(data["faces"][0][f"p_{c}"] for c in EXPRESSIONS) == pytest.approx(1.0, abs=1e-3)
    assert data["model"] == Path(window.prefs.model).name

    _press(qtbot, window, Qt.Key.Key_Space)
    assert window.controller.state == "paused" and window.controller.pipeline.paused
    qtbot.wait(400)  # frames already in the queues drain
    frozen = window.results_shown
    qtbot.wait(600)
    assert window.results_shown <= frozen + 1
    _press(qtbot, window, Qt.Key.Key_Space)
    assert window.controller.state == "running" and not window.controller.pipeline.paused
    qtbot.waitUntil(lambda: window.results_shown > frozen + 5, timeout=WAIT_MS)

    assert window.controller.pipeline.heatmap[0] == "attention"
    _press(qtbot, window, Qt.Key.Key_H)
    assert window.heatmap_combo.currentData() == "cam" and window.controller.pipeline.heatmap[0] == "cam"
    _press(qtbot, window, Qt.Key.Key_H)
    assert window.controller.pipeline.heatmap[0] == "off" and not window.opacity_slider.isEnabled()
    window.smoothing_slider.setValue(20)
    assert window.controller.pipeline._smoother.strength == pytest.approx(0.2)

    _press(qtbot, window, Qt.Key.Key_F)
    qtbot.waitUntil(lambda: window.isFullScreen(), timeout=5000)
    assert not window.source_toolbar.isVisible() and not window.faces_dock.isVisible()
    _press(qtbot, window, Qt.Key.Key_F)
    qtbot.waitUntil(lambda: not window.isFullScreen(), timeout=5000)
    assert window.source_toolbar.isVisible() and window.faces_dock.isVisible()


def test_close_while_recording_finalises_the_file_and_stops_every_thread(
        qtbot, qapp, tmp_path: Path, tiny_onnx_model: Path, one_face_video: Path) -> None:
    before = set(threading.enumerate())
    win = MainWindow(_settings(tmp_path), model=str(tiny_onnx_model), realtime=True, loop=True)
    win.output_edit.setText(str(tmp_path / "rec"))
    win._output_changed()
    win.show()
    _start_and_wait_for_faces(qtbot, win, one_face_video)
    assert _pipeline_threads(), "the pipeline should run on its own threads"
    win.act_record.setChecked(True)
    path = win.controller.recording
    assert path is not None
    shown = win.results_shown
    qtbot.waitUntil(lambda: win.results_shown >= shown + 10, timeout=WAIT_MS)
    win.close()  # no explicit stop: closing must be enough
    assert not [t for t in threading.enumerate() if t not in before and t.is_alive()]
    cap = cv2.VideoCapture(str(path))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, img = cap.read()
    cap.release()
    assert ok and img.shape == (360, 640, 3) and n >= 8


def test_faults_are_shown_in_the_window(qtbot, window: MainWindow, tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    assert not window.start_source(str(missing))
    assert window.banner.isVisible() and str(missing) in window.banner.label.text()
    # A broken model file: the pipeline refuses to start; the message names it and the app goes on.
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"this is not an onnx model")
    window.prefs.model = str(bad)
    window.banner.hide()
    video = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for _ in range(3):
        writer.write(np.full((48, 64, 3), 128, np.uint8))
    writer.release()
    window.start_source(str(video))
    qtbot.waitUntil(window.banner.isVisible, timeout=WAIT_MS)
    assert "broken.onnx" in window.banner.label.text()
    assert window.controller.state == "stopped" and window.act_start.text() == "Start"
    # A model file that does not exist is refused where it is chosen.
    window.set_model(str(tmp_path / "missing.onnx"))
    assert "Model file not found" in window.banner.label.text() and window.prefs.model == str(bad)
    # Recording without a running video is refused with a message, not an exception.
    window.act_record.setChecked(True)
    assert not window.act_record.isChecked() and window.controller.recording is None


def test_settings_are_remembered(qtbot, qapp, tmp_path: Path, tiny_onnx_model: Path) -> None:
    first = MainWindow(_settings(tmp_path), model=str(tiny_onnx_model))
    qtbot.addWidget(first)
    first.heatmap_combo.setCurrentIndex(1)
    first.opacity_slider.setValue(70)
    first.smoothing_slider.setValue(30)
    first.max_faces_spin.setValue(2)
    first.source_edit.setText("rtsp://camera.local/stream")
    first.prefs.remember_source("rtsp://camera.local/stream")
    first.output_edit.setText(str(tmp_path / "elsewhere"))
    first.close()
    assert (tmp_path / "ui.ini").is_file()
    second = MainWindow(_settings(tmp_path))
    qtbot.addWidget(second)
    assert second.heatmap_combo.currentData() == "cam"
    assert second.opacity_slider.value() == 70 and second.smoothing_slider.value() == 30
    assert second.max_faces_spin.value() == 2
    assert second.prefs.model == str(tiny_onnx_model) and second.model_edit.text() == tiny_onnx_model.name
    assert second.output_edit.text() == str(tmp_path / "elsewhere")
    assert second.prefs.recent_sources[0] == "rtsp://camera.local/stream"
    assert not list((tmp_path / "qsettings").rglob("*.conf")), "nothing went to the default location"
    # The camera menu lists /dev/video* (this machine may have none: then it says so).
    second._fill_camera_menu()
    labels = [a.text() for a in second.camera_menu.actions()]
    cams = list_cameras()
    assert labels == ([c.label for c in cams] if cams else ["No camera found (/dev/video*)"])
    second.close()


def _result(i: int) -> FrameResult:
    img = np.full((20, 30, 3), i % 255, np.uint8)
    face = Face(1, Box(1, 1, 5, 5), np.zeros((478, 2), np.float32))
    probs = np.full(7, 1 / 7, np.float32)
    return FrameResult(Frame(i, i / 30, img), [FacePrediction(face, probs, probs, None, None, np.eye(2, 3))], img)


def test_a_busy_gui_gets_only_the_newest_frame(qtbot, qapp) -> None:
    """The hand-over used by the pipeline callback: a flood from another thread while the GUI
    thread is blocked leaves one pending notification and the newest frame, nothing queued."""
    controller = PipelineController(HistoryStore())
    shown: list[int] = []
    controller.frameReady.connect(lambda: shown.append(controller.mailbox.take().frame.index))
    on_result, _ = controller._make_callbacks(controller._generation)
    producer = threading.Thread(target=lambda: [on_result(_result(i)) for i in range(500)])
    producer.start()
    producer.join()  # the GUI thread was busy (blocked here) during the whole flood
    qtbot.waitUntil(lambda: len(shown) >= 1, timeout=5000)
    qtbot.wait(50)
    assert shown == [499]
    assert controller.mailbox.received == 500 and controller.mailbox.overwritten == 499
    assert len(controller.history.series(1)) >= 290  # 10 s at 30 fps: the history saw every frame


def test_dead_stream_keeps_the_window_responsive_and_says_so(qtbot, window: MainWindow) -> None:
    """A stream that cannot be reached: the window keeps painting while the pipeline loads and
    retries, the banner names the URL and counts the attempts, and Stop works."""
    url = "rtsp://127.0.0.1:9/no-such-stream"  # port 9 (discard): connection refused at once
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(20)
    window.start_source(url)
    assert window.controller.state == "starting" and window.act_start.text() == "Stop"
    qtbot.waitUntil(lambda: window.banner.isVisible() and url in window.banner.label.text(), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "(attempt 2)" in window.banner.label.text(), timeout=WAIT_MS)
    qtbot.wait(500)
    timer.stop()
    gaps = np.diff(ticks)
    assert len(ticks) > 20 and gaps.max() < 1.0, f"the GUI stalled for {gaps.max():.2f} s"
    print(f"longest GUI pause while loading and retrying: {gaps.max() * 1000:.0f} ms over {len(ticks)} ticks")
    window.act_start.trigger()  # Stop
    qtbot.waitUntil(lambda: window.controller.state == "stopped", timeout=WAIT_MS)
    assert window.act_start.text() == "Start" and not _pipeline_threads()


def _faces_result(i: int, t: float, tracks: dict[int, int]) -> FrameResult:
    img = np.zeros((20, 30, 3), np.uint8)
    preds = []
    for tid, k in tracks.items():
        probs = np.full(7, 0.05, np.float32)
        probs[k] = 0.7
        face = Face(tid, Box(1, 1, 5, 5), np.zeros((478, 2), np.float32))
        preds.append(FacePrediction(face, probs, probs, None, None, np.eye(2, 3)))
    return FrameResult(Frame(i, t, img), preds, img)


def test_face_panels_follow_the_tracks(qtbot, qapp) -> None:
    from ui.face_panels import FacePanelList

    history = HistoryStore()
    panels = FacePanelList(history, grace_s=1.0)
    qtbot.addWidget(panels)
    panels.show()

    def feed(i: int, t: float, tracks: dict[int, int]) -> None:
        result = _faces_result(i, t, tracks)
        history.add_result(result)
        panels.update_result(result)

    assert panels.empty_label.isVisibleTo(panels)
    feed(0, 0.0, {4: 1, 2: 6})
    assert sorted(panels.panels) == [2, 4] and not panels.empty_label.isVisibleTo(panels)
    assert panels.panels[4].expression == "happiness" and panels.panels[2].expression == "sadness"
    layout_order = [panels._layout.itemAt(i).widget() for i in range(1, 3)]
    assert [p.track_id for p in layout_order] == [2, 4]  # sorted by id
    feed(1, 0.5, {4: 2})  # face 2 missed for half a second: its panel stays (no blinking)
    assert sorted(panels.panels) == [2, 4] and panels.panels[4].expression == "surprise"
    feed(2, 1.6, {4: 2})  # gone for more than the grace period: removed
    assert sorted(panels.panels) == [4]
    feed(3, 3.0, {})
    assert panels.panels == {} and panels.empty_label.isVisibleTo(panels)
    panels.panels.clear()


def test_end_of_file_keeps_the_last_picture_and_can_replay(qtbot, qapp, tmp_path: Path, tiny_onnx_model: Path,
                                                          two_face_gif: Path) -> None:
    before = set(threading.enumerate())
    win = MainWindow(_settings(tmp_path), model=str(tiny_onnx_model), realtime=False, loop=False)
    qtbot.addWidget(win)
    win.show()
    win.start_source(str(two_face_gif))
    qtbot.waitUntil(lambda: win.controller.state == "finished", timeout=WAIT_MS)
    assert win.video.has_frame and win.video.frame_size().width() == 480
    assert len(win.face_list.panels) == 2  # both people, still shown after the end
    assert win.act_start.text() == "Start" and not win.act_pause.isEnabled() and not win.act_record.isEnabled()
    assert win.statusBar().currentMessage() in ("End of video",) or "Finished" in win.statusBar().currentMessage()
    assert not _pipeline_threads()
    first_run = win.results_shown
    win.act_start.trigger()  # Start again: the file plays from the beginning
    qtbot.waitUntil(lambda: win.controller.state == "finished" and win.results_shown > first_run, timeout=WAIT_MS)
    win.close()
    assert not [t for t in threading.enumerate() if t not in before and t.is_alive()]


def test_a_password_is_never_shown_nor_stored(qtbot, qapp, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Decision: the window never persists a password. The INI file and the recent list keep
    `rtsp://user:***@host/...`; choosing that entry asks the user to type the password again;
    a failure to start shows the source masked (banner and log)."""
    url = "rtsp://admin:s3cr3t-pw@127.0.0.1:9/stream1"

    def failing_factory(request, on_result, on_event):
        raise RuntimeError(f"cannot open {request.source}")  # a library error that names the source as given

    win = MainWindow(_settings(tmp_path), pipeline_factory=failing_factory)
    qtbot.addWidget(win)
    win.show()
    assert win.start_source(url)
    qtbot.waitUntil(win.banner.isVisible, timeout=WAIT_MS)
    shown = win.banner.label.text()
    assert "s3cr3t" not in shown and "rtsp://admin:***@127.0.0.1:9/stream1" in shown
    assert "s3cr3t" not in caplog.text
    assert win.prefs.recent_sources[0] == "rtsp://admin:***@127.0.0.1:9/stream1"
    win.close()  # saves the settings
    ini = (tmp_path / "ui.ini").read_bytes()
    assert b"s3cr3t" not in ini and b"admin:***@127.0.0.1" in ini
    second = MainWindow(_settings(tmp_path), pipeline_factory=failing_factory)
    qtbot.addWidget(second)
    second.show()
    masked = second.prefs.recent_sources[0]
    assert not second.start_source(masked)  # refused before anything starts: the password is missing
    assert "Type the password" in second.banner.label.text() and second.controller.state != "starting"
    second.close()
