"""The main window: live view, face panels, controls, status bar, shortcuts, remembered settings.

Everything that runs video goes through `PipelineController` (the same Pipeline as `edgefer run`);
this module only arranges widgets and turns user actions into controller calls. The record button
and the REC indicator are refreshed from the pipeline's own `recording` state every tick, so they
show what is really being written, also after a recording failed on its own.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable

from PyQt6.QtCore import QByteArray, QSettings, QSize, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence
from PyQt6.QtWidgets import (
    QCompleter,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QSlider,
    QSpinBox,
    QStatusBar,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ui import icons
from ui.cameras import list_cameras
from ui.controller import PipelineController, RunRequest, default_pipeline_factory
from ui.face_panels import FacePanelList
from ui.history import HistoryStore
from ui.outputs import Snapshot, recording_path, write_snapshot
from ui.prefs import HEATMAP_LABELS, HEATMAP_MODES, MAX_FACES_LIMIT, UiPrefs, prefs_from_mapping, prefs_to_mapping
from ui.style import MUTED, RECORD, WARNING
from ui.video_view import VideoView

log = logging.getLogger(__name__)

VIDEO_FILTER = "Videos and images (*.mp4 *.mov *.avi *.mkv *.webm *.m4v *.gif *.mpg *.mpeg *.ts);;All files (*)"
MODEL_FILTER = "Models (*.onnx *.engine *.plan);;All files (*)"


def _fmt_elapsed(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


class Banner(QFrame):
    """A dismissible strip above the video for faults: amber for warnings, red for errors."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("bannerFrame")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel()
        self.label.setObjectName("banner")
        self.label.setWordWrap(True)
        close = QToolButton()
        close.setText("\u2715")
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self.kind = ""
        self.stage = ""
        self.shown_at = 0.0
        self.hide()

    def show_message(self, kind: str, stage: str, text: str) -> None:
        if not (self.isVisible() and (kind, stage) == (self.kind, self.stage)):
            self.shown_at = time.monotonic()
        self.kind, self.stage = kind, stage
        color = RECORD if kind == "error" else WARNING
        self.label.setStyleSheet(f"background: {color}; color: #111; padding: 6px 10px; border-radius: 4px;")
        self.label.setText(text)
        self.show()


class MainWindow(QMainWindow):
    """The monitoring window. `settings` is where preferences live (tests pass a temporary INI)."""

    snapshotSaved = pyqtSignal(object)  # Snapshot

    def __init__(self, settings: QSettings, source: str | None = None, model: str | None = None,
                 pipeline_factory: Callable[..., Any] = default_pipeline_factory,
                 realtime: bool = True, loop: bool = False, history_s: float = 10.0) -> None:
        super().__init__()
        self.setWindowTitle("edgefer \u2014 expression monitor")
        self.setMinimumSize(QSize(900, 560))
        self.qsettings = settings
        self.prefs = self._load_prefs()
        if source:
            self.prefs.source = source
        if model is not None:
            self.prefs.model = model
        self.realtime = realtime
        self.loop = loop
        self.history = HistoryStore(window_s=history_s)
        self.controller = PipelineController(self.history, pipeline_factory, self)
        self.last_result: Any = None
        self.results_shown = 0
        self._record_started: float | None = None
        self._record_elapsed = 0.0
        self._last_stats: Any = None
        self._shown_state = ""

        self._build_central()
        self._build_actions()
        self._build_toolbars()
        self._build_docks()
        self._build_status_bar()
        self._connect()
        self._restore_window_state()

        self.stats_timer = QTimer(self)
        self.stats_timer.setInterval(250)
        self.stats_timer.timeout.connect(self._tick)
        self.stats_timer.start()
        self._sync_controls()

    # ---- construction -----------------------------------------------------------------------
    def _build_central(self) -> None:
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        self.banner = Banner()
        self.video = VideoView()
        layout.addWidget(self.banner)
        layout.addWidget(self.video, 1)
        self.setCentralWidget(central)

    def _action(self, text: str, shortcut: str | QKeySequence.StandardKey | None = None, tip: str = "",
                checkable: bool = False, icon: QIcon | None = None) -> QAction:
        act = QAction(text, self)
        if icon is not None:
            act.setIcon(icon)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        act.setCheckable(checkable)
        key = act.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        act.setToolTip(f"{tip or text} ({key})" if key else (tip or text))
        self.addAction(act)  # shortcuts keep working when toolbars are hidden (full screen)
        return act

    def _build_actions(self) -> None:
        self.icon_play = icons.play()
        self.icon_stop = icons.stop()
        self.act_open = self._action("Open file\u2026", QKeySequence.StandardKey.Open, "Open a video file",
                                     icon=icons.folder())
        self.act_start = self._action("Start", "Ctrl+Return", "Start or stop the video", icon=self.icon_play)
        self.act_pause = self._action("Pause", "Space", "Pause / resume", checkable=True, icon=icons.pause())
        self.act_record = self._action("Record", "R", "Record the annotated video", checkable=True,
                                       icon=icons.record())
        self.act_snapshot = self._action("Snapshot", "S", "Save the annotated frame (PNG) and predictions (JSON)",
                                         icon=icons.snapshot())
        self.act_heatmap = self._action("Heatmap", "H", "Cycle the heatmap: attention, CAM, off")
        self.act_fullscreen = self._action("Full screen", "F", "Full screen video", checkable=True)
        self.act_leave_fullscreen = self._action("Leave full screen", "Esc")
        self.act_quit = self._action("Quit", QKeySequence.StandardKey.Quit)

    def _build_toolbars(self) -> None:
        bar = QToolBar("Source")
        bar.setObjectName("sourceToolbar")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        bar.setIconSize(QSize(16, 16))
        self.camera_button = QToolButton()
        self.camera_button.setText("Camera")
        self.camera_button.setIcon(icons.camera())
        self.camera_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.camera_button.setToolTip("Pick a camera (/dev/video*)")
        self.camera_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.camera_menu = QMenu(self.camera_button)
        self.camera_menu.aboutToShow.connect(self._fill_camera_menu)
        self.camera_button.setMenu(self.camera_menu)
        bar.addWidget(self.camera_button)
        bar.addAction(self.act_open)
        self.source_edit = QLineEdit(self.prefs.source)
        self.source_edit.setObjectName("sourceEdit")
        self.source_edit.setPlaceholderText("camera index, video file, rtsp://\u2026 URL or GStreamer pipeline")
        self.source_edit.setClearButtonEnabled(True)
        self.source_edit.setMinimumWidth(260)
        self._completer = QCompleter(self.prefs.recent_sources, self)
        self.source_edit.setCompleter(self._completer)
        bar.addWidget(self.source_edit)
        bar.addAction(self.act_start)
        bar.addAction(self.act_pause)
        bar.addSeparator()
        bar.addAction(self.act_record)
        rec_button = bar.widgetForAction(self.act_record)
        if rec_button is not None:
            rec_button.setObjectName("recordButton")
        self.rec_label = QLabel("")
        self.rec_label.setObjectName("recLabel")
        bar.addWidget(self.rec_label)
        bar.addAction(self.act_snapshot)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        self.source_toolbar = bar

    def _slider(self, lo: int, hi: int, value: int) -> QSlider:
        s = QSlider(Qt.Orientation.Horizontal)
        s.setRange(lo, hi)
        s.setValue(value)
        return s

    def _build_docks(self) -> None:
        self.face_list = FacePanelList(self.history)
        faces = QDockWidget("Faces", self)
        faces.setObjectName("facesDock")
        faces.setWidget(self.face_list)
        faces.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, faces)
        self.faces_dock = faces

        form_host = QWidget()
        form = QFormLayout(form_host)
        form.setContentsMargins(10, 8, 10, 8)
        self.heatmap_combo = QComboBox()
        for mode in HEATMAP_MODES:
            self.heatmap_combo.addItem(HEATMAP_LABELS[mode], mode)
        self.heatmap_combo.setCurrentIndex(HEATMAP_MODES.index(self.prefs.heatmap))
        form.addRow("Heatmap", self.heatmap_combo)
        self.opacity_slider = self._slider(0, 100, round(self.prefs.opacity * 100))
        self.opacity_value = QLabel()
        form.addRow("Opacity", self._with_value(self.opacity_slider, self.opacity_value))
        self.smoothing_slider = self._slider(0, 95, round(self.prefs.smoothing * 100))
        self.smoothing_slider.setToolTip("How much the previous estimate is kept (per 1/30 s): "
                                         "higher is steadier, lower reacts faster")
        self.smoothing_value = QLabel()
        form.addRow("Smoothing", self._with_value(self.smoothing_slider, self.smoothing_value))
        self.max_faces_spin = QSpinBox()
        self.max_faces_spin.setRange(1, MAX_FACES_LIMIT)
        self.max_faces_spin.setValue(self.prefs.max_faces)
        form.addRow("Max faces", self.max_faces_spin)
        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("shipped default model")
        self.model_edit.setReadOnly(True)
        self.model_button = QToolButton()
        self.model_button.setText("\u2026")
        self.model_button.setToolTip("Choose a model file (.onnx or TensorRT .engine)")
        self.model_reset = QToolButton()
        self.model_reset.setText("\u21BA")
        self.model_reset.setToolTip("Use the shipped default model")
        form.addRow("Model", self._row(self.model_edit, self.model_button, self.model_reset))
        self._show_model(self.prefs.model)
        self.output_edit = QLineEdit(self.prefs.output_dir)
        self.output_edit.setToolTip("Folder for recordings and snapshots")
        self.output_button = QToolButton()
        self.output_button.setText("\u2026")
        self.output_button.setToolTip("Choose the folder for recordings and snapshots")
        form.addRow("Save to", self._row(self.output_edit, self.output_button))
        dock = QDockWidget("Settings", self)
        dock.setObjectName("settingsDock")
        dock.setWidget(form_host)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self.settings_dock = dock
        self.resizeDocks([faces, dock], [560, 220], Qt.Orientation.Vertical)
        self.resizeDocks([faces], [330], Qt.Orientation.Horizontal)
        self._update_value_labels()

    @staticmethod
    def _row(*widgets: QWidget) -> QWidget:
        host = QWidget()
        lay = QHBoxLayout(host)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        for i, w in enumerate(widgets):
            lay.addWidget(w, 1 if i == 0 else 0)
        return host

    def _with_value(self, slider: QSlider, label: QLabel) -> QWidget:
        label.setMinimumWidth(36)
        label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return self._row(slider, label)

    def _build_status_bar(self) -> None:
        bar = QStatusBar()
        self.setStatusBar(bar)
        self.fps_label = QLabel("\u2013 fps")
        self.latency_label = QLabel("latency \u2013")
        self.backend_label = QLabel("backend \u2013")
        self.model_label = QLabel("model \u2013")
        self.rec_state_label = QLabel("not recording")
        for w in (self.fps_label, self.latency_label, self.backend_label, self.model_label, self.rec_state_label):
            w.setStyleSheet(f"color: {MUTED};")
            bar.addPermanentWidget(w)

    def _connect(self) -> None:
        c = self.controller
        c.frameReady.connect(self._on_frame_ready)
        c.pipelineEvent.connect(self._on_event)
        c.stateChanged.connect(lambda _s: self._sync_controls())
        c.recordingChanged.connect(self._on_recording_changed)
        c.failed.connect(self._on_start_failed)
        self.act_open.triggered.connect(self.choose_file)
        self.act_start.triggered.connect(self.toggle_start)
        self.act_pause.toggled.connect(self.set_paused)
        self.act_record.toggled.connect(self.set_recording)
        self.act_snapshot.triggered.connect(self.snapshot)
        self.act_heatmap.triggered.connect(self.cycle_heatmap)
        self.act_fullscreen.toggled.connect(self.set_full_screen)
        self.act_leave_fullscreen.triggered.connect(lambda: self.act_fullscreen.setChecked(False))
        self.act_quit.triggered.connect(self.close)
        self.source_edit.returnPressed.connect(self.start_from_field)
        self.heatmap_combo.currentIndexChanged.connect(self._heatmap_changed)
        self.opacity_slider.valueChanged.connect(self._heatmap_changed)
        self.smoothing_slider.valueChanged.connect(self._smoothing_changed)
        self.max_faces_spin.valueChanged.connect(self._max_faces_changed)
        self.model_button.clicked.connect(self.choose_model)
        self.model_reset.clicked.connect(lambda: self.set_model(""))
        self.output_button.clicked.connect(self.choose_output_dir)
        self.output_edit.editingFinished.connect(self._output_changed)

    # ---- settings ---------------------------------------------------------------------------
    def _load_prefs(self) -> UiPrefs:
        s = self.qsettings
        return prefs_from_mapping(lambda key: s.value(f"prefs/{key}") if s.contains(f"prefs/{key}") else None,
                                  origin=s.fileName())

    def save_settings(self) -> None:
        self.prefs.output_dir = self.output_edit.text().strip() or self.prefs.output_dir
        for key, value in prefs_to_mapping(self.prefs).items():
            self.qsettings.setValue(f"prefs/{key}", value)
        self.qsettings.setValue("window/geometry", self.saveGeometry())
        self.qsettings.setValue("window/state", self.saveState())
        self.qsettings.sync()

    def _restore_window_state(self) -> None:
        geometry = self.qsettings.value("window/geometry")
        state = self.qsettings.value("window/state")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 760)
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)

    # ---- source / lifecycle -----------------------------------------------------------------
    def _fill_camera_menu(self) -> None:
        self.camera_menu.clear()
        cameras = list_cameras()
        if not cameras:
            act = self.camera_menu.addAction("No camera found (/dev/video*)")
            act.setEnabled(False)
        for cam in cameras:
            act = self.camera_menu.addAction(cam.label)
            act.triggered.connect(lambda _c=False, src=cam.source: self.start_source(src))

    def choose_file(self) -> None:
        start_dir = str(Path(self.source_edit.text()).expanduser().parent) if self.source_edit.text() else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open a video", start_dir, VIDEO_FILTER)
        if path:
            self.start_source(path)

    def start_from_field(self) -> None:
        self.start_source(self.source_edit.text().strip())

    def toggle_start(self) -> None:
        if self.controller.running:
            self.stop()
        else:
            self.start_from_field()

    def start_source(self, source: str) -> bool:
        """Start (or restart) on `source` in the background; problems appear in the window.

        Returns False when the request was refused at once (empty source, missing file); a
        failure while loading the model or opening the source arrives later as a banner.
        """
        source = source.strip()
        if not source:
            self.show_fault("warning", "source", "Choose a source first: a camera, a video file or a stream URL.")
            return False
        if "://" not in source and "!" not in source and not source.isdigit():
            path = Path(source).expanduser()
            if not path.exists():
                self.show_fault("error", "source", f"Video file not found: {path}")
                return False
        self.source_edit.setText(source)
        self.banner.hide()
        self.video.clear("Opening " + source + "\u2026")
        self.face_list.clear()
        self.last_result = None
        request = RunRequest(
            source=source,
            model=self.prefs.model,
            max_faces=self.max_faces_spin.value(),
            smoothing=self.smoothing_slider.value() / 100.0,
            heatmap=self.heatmap_combo.currentData(),
            opacity=self.opacity_slider.value() / 100.0,
            realtime=self.realtime,
            loop=self.loop,
        )
        self._stop_record_clock()
        self.controller.start(request)
        self.prefs.source = source
        self.prefs.remember_source(source)
        self._completer.model().setStringList(self.prefs.recent_sources)  # type: ignore[union-attr]
        self.statusBar().showMessage(f"Opening {source}\u2026", 4000)
        self._sync_controls()
        return True

    def _on_start_failed(self, message: str) -> None:
        self.show_fault("error", "pipeline", message)
        self.video.clear("Could not start. See the message above.")

    def stop(self) -> None:
        self.controller.stop()
        self._stop_record_clock()
        self._sync_controls()

    def set_paused(self, paused: bool) -> None:
        """Pause or resume; the recording clock stops too (a paused recording gets no frames)."""
        if self.controller.state in ("running", "paused"):
            self.controller.set_paused(paused)
            if paused and self._record_started is not None:
                self._record_elapsed += time.monotonic() - self._record_started
                self._record_started = None
            elif not paused and self.controller.recording is not None and self._record_started is None:
                self._record_started = time.monotonic()
        self._sync_controls()

    # ---- recording / snapshot ---------------------------------------------------------------
    def set_recording(self, on: bool) -> None:
        if on == (self.controller.recording is not None):
            return
        if on:
            if not self.controller.running:
                self.act_record.setChecked(False)
                self.show_fault("warning", "record", "Start a video before recording.")
                return
            try:
                path = recording_path(self.output_edit.text().strip() or self.prefs.output_dir)
                self.controller.start_recording(path)
            except Exception as exc:
                self.act_record.setChecked(False)
                self.show_fault("error", "record", f"Recording failed: {exc}")
                return
            self.statusBar().showMessage(f"Recording to {path}", 4000)
        else:
            path = self.controller.recording
            self.controller.stop_recording()
            if path is not None:
                self.statusBar().showMessage(f"Recording saved: {path}", 6000)

    def _on_recording_changed(self, path: Path | None) -> None:
        if path is not None:
            self._record_elapsed = 0.0
            self._record_started = None if self.act_pause.isChecked() else time.monotonic()
        else:
            self._stop_record_clock()
        self._sync_record_widgets()

    def _stop_record_clock(self) -> None:
        self._record_started = None
        self._record_elapsed = 0.0

    def record_elapsed(self) -> float:
        extra = time.monotonic() - self._record_started if self._record_started is not None else 0.0
        return self._record_elapsed + extra

    def snapshot(self) -> Snapshot | None:
        result = self.last_result
        if result is None:
            self.statusBar().showMessage("Nothing to snapshot yet: no frame shown", 4000)
            return None
        stats = self._last_stats
        model = str(getattr(stats, "model", "") or self.prefs.model or "default")
        try:
            snap = write_snapshot(result, self.output_edit.text().strip() or self.prefs.output_dir,
                                  source=self.prefs.source, model=model)
        except (OSError, ValueError) as exc:
            self.show_fault("error", "snapshot", f"Snapshot failed: {exc}")
            return None
        self.statusBar().showMessage(f"Snapshot saved: {snap.png.name} + {snap.json.name} in {snap.png.parent}", 6000)
        self.snapshotSaved.emit(snap)
        return snap

    # ---- live settings ----------------------------------------------------------------------
    def _update_value_labels(self) -> None:
        self.opacity_value.setText(f"{self.opacity_slider.value()}%")
        self.smoothing_value.setText(f"{self.smoothing_slider.value() / 100:.2f}")

    def _heatmap_changed(self, *_: Any) -> None:
        mode = self.heatmap_combo.currentData()
        self.prefs.heatmap = mode
        self.prefs.opacity = self.opacity_slider.value() / 100.0
        self.opacity_slider.setEnabled(mode != "off")
        self._update_value_labels()
        self.controller.set_heatmap(mode, self.prefs.opacity)

    def cycle_heatmap(self) -> None:
        mode = self.prefs.next_heatmap()
        self.heatmap_combo.setCurrentIndex(HEATMAP_MODES.index(mode))
        self.statusBar().showMessage(f"Heatmap: {HEATMAP_LABELS[mode]}", 2000)

    def _smoothing_changed(self, value: int) -> None:
        self.prefs.smoothing = value / 100.0
        self._update_value_labels()
        self.controller.set_smoothing(self.prefs.smoothing)

    def _max_faces_changed(self, value: int) -> None:
        self.prefs.max_faces = value
        self.controller.set_max_faces(value)

    def choose_model(self) -> None:
        start = self.prefs.model or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Choose a model", start, MODEL_FILTER)
        if path:
            self.set_model(path)

    def set_model(self, path: str) -> None:
        """Use another model; a running video restarts on it (a recording is finalised first)."""
        if path and not Path(path).is_file():
            self.show_fault("error", "model", f"Model file not found: {path}")
            return
        self.prefs.model = path
        self._show_model(path)
        if self.controller.running:
            source = self.controller.request.source if self.controller.request else self.prefs.source
            self.start_source(source)

    def _show_model(self, path: str) -> None:
        """The file name in the field (readable in a narrow dock), the full path in the tooltip."""
        self.model_edit.setText(Path(path).name if path else "")
        self.model_edit.setToolTip(path or "the model shipped with edgefer")

    def choose_output_dir(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Save recordings and snapshots in", self.output_edit.text())
        if path:
            self.output_edit.setText(path)
            self._output_changed()

    def _output_changed(self) -> None:
        text = self.output_edit.text().strip()
        if text:
            self.prefs.output_dir = text

    def set_full_screen(self, on: bool) -> None:
        """Full screen shows the video alone; F or Esc brings the controls back."""
        for w in (self.source_toolbar, self.faces_dock, self.settings_dock):
            w.setVisible(not on)
        if on:
            self.showFullScreen()
        else:
            self.showNormal()

    # ---- pipeline output --------------------------------------------------------------------
    def _on_frame_ready(self) -> None:
        result = self.controller.mailbox.take()
        if result is None:
            return
        image = result.annotated if result.annotated is not None else result.frame.image
        self.video.set_frame(image)
        self.face_list.update_result(result)
        self.last_result = result
        self.results_shown += 1
        banner = self.banner
        if (banner.isVisible() and banner.kind == "warning" and banner.stage == "capture"
                and time.monotonic() - banner.shown_at > 1.0):
            banner.hide()  # the source delivers again (reconnected): the warning is over
            self.statusBar().showMessage("Video is back", 4000)

    def _on_event(self, event: Any) -> None:
        """Warnings and errors go to the banner; status lines to the status bar, except that the
        progress of a fault on show (reconnecting, attempt n) updates its banner."""
        kind = getattr(event, "kind", "status")
        stage = getattr(event, "stage", "")
        message = getattr(event, "message", str(event))
        text = f"{stage}: {message}" if stage else message
        if kind in ("warning", "error"):
            self.show_fault(kind, stage, text)
        elif kind == "finished":
            self.statusBar().showMessage(f"Finished: {message}", 8000)
        elif self.banner.isVisible() and self.banner.kind == "warning" and self.banner.stage == stage:
            self.banner.show_message("warning", stage, text)
        else:
            self.statusBar().showMessage(text, 5000)
        self._sync_record_widgets()

    def show_fault(self, kind: str, stage: str, text: str) -> None:
        self.banner.show_message(kind, stage, text)
        self.statusBar().showMessage(text, 10000)
        (log.error if kind == "error" else log.warning)("%s", text)

    # ---- periodic refresh -------------------------------------------------------------------
    def _tick(self) -> None:
        stats = self.controller.stats()
        if stats is not None:
            self._last_stats = stats
            self._show_stats(stats)
        self._sync_record_widgets()

    def _show_stats(self, stats: Any) -> None:
        """FPS (last ~2 s), end-to-end latency p50 (p95 and per-stage figures in the tooltip)."""
        fps = float(getattr(stats, "fps", 0.0) or 0.0)
        self.fps_label.setText(f"{fps:.1f} fps")
        dropped = int(getattr(stats, "frames_dropped", 0) or 0)
        self.fps_label.setToolTip(f"{getattr(stats, 'frames_processed', 0)} frames shown, {dropped} dropped (stale)")
        e2e = getattr(stats, "end_to_end", None)
        p50 = getattr(e2e, "p50_ms", float("nan")) if e2e is not None else float("nan")
        if p50 == p50:  # not NaN: at least one frame went through
            self.latency_label.setText(f"latency {p50:.0f} ms")
            rows = [f"end-to-end p50 {p50:.1f} ms, p95 {e2e.p95_ms:.1f} ms"]
            rows += [f"{st.name}: p50 {st.p50_ms:.1f} ms, p95 {st.p95_ms:.1f} ms"
                     for st in getattr(stats, "stages", ()) if st.p50_ms == st.p50_ms]
            self.latency_label.setToolTip("\n".join(rows))
        else:
            self.latency_label.setText("latency \u2013")
        dash = "\u2013"
        self.backend_label.setText(f"backend {getattr(stats, 'backend', '') or dash}")
        model = str(getattr(stats, "model", "") or "")
        self.model_label.setText(f"model {Path(model).name if model else dash}")
        self.model_label.setToolTip(model)

    def _sync_record_widgets(self) -> None:
        path = self.controller.recording
        recording = path is not None
        if self.act_record.isChecked() != recording:
            self.act_record.blockSignals(True)
            self.act_record.setChecked(recording)
            self.act_record.blockSignals(False)
        if recording:
            text = f"\u25CF REC {Path(path).name}  {_fmt_elapsed(self.record_elapsed())}"
            self.rec_label.setText(text)
            self.rec_label.setToolTip(str(path))
            self.rec_state_label.setText(text)
            self.rec_state_label.setStyleSheet(f"color: {RECORD}; font-weight: bold;")
        else:
            self.rec_label.setText("")
            self.rec_state_label.setText("not recording")
            self.rec_state_label.setStyleSheet(f"color: {MUTED};")

    def _sync_controls(self) -> None:
        state = self.controller.state
        active = self.controller.running
        self.act_start.setText("Stop" if active else "Start")
        self.act_start.setIcon(self.icon_stop if active else self.icon_play)
        self.act_start.setEnabled(state != "stopping")
        can_steer = state in ("running", "paused")
        self.act_pause.setEnabled(can_steer)
        if self.act_pause.isChecked() != (state == "paused"):
            self.act_pause.blockSignals(True)
            self.act_pause.setChecked(state == "paused")
            self.act_pause.blockSignals(False)
        self.act_record.setEnabled(can_steer)
        message = {"starting": "Starting\u2026 (loading the model and the face tracker)",
                   "stopping": "Stopping\u2026", "stopped": "Stopped", "finished": "End of video",
                   "paused": "Paused"}.get(state)
        if message and state != self._shown_state:
            self.statusBar().showMessage(message, 0 if state in ("starting", "stopping") else 6000)
        self._shown_state = state
        if not can_steer:
            self.fps_label.setText("\u2013 fps")
        self._sync_record_widgets()

    # ---- closing ----------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        """Stop the pipeline (which finalises any recording) and remember the settings."""
        self.stats_timer.stop()
        try:
            self.save_settings()
        except Exception:  # never lose a recording because settings could not be saved
            log.exception("cannot save settings to %s", self.qsettings.fileName())
        self.controller.shutdown()
        event.accept()
