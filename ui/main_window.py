"""The main window: live view, face panels, controls, status bar, shortcuts, remembered settings.

Everything that runs video goes through `PipelineController` (the same Pipeline as `edgefer run`);
this module arranges the parts and turns user actions into controller calls. The parts live in
their own modules: the actions and source toolbar (`toolbar`), the Settings dock (`settings_panel`),
the status readouts (`status`), the fault banner (`banner`), the video (`video_view`) and the face
panels (`face_panels`). The record button and the REC indicator are refreshed from the pipeline's
own `recording` state every tick, so they show what is really being written, also after a
recording failed on its own.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from PyQt6.QtCore import QSettings, QSize, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QCloseEvent
from PyQt6.QtWidgets import QDockWidget, QMainWindow, QStatusBar, QVBoxLayout, QWidget

from edgefer.pipeline.events import PipelineEvent
from edgefer.pipeline.settings import LiveSettings
from edgefer.pipeline.sources import SourceSpec
from edgefer.pipeline.stats import PipelineStats
from edgefer.redact import MASK, redact
from edgefer.types import FrameResult
from ui.banner import Banner, FaultKind
from ui.controller import PipelineController, PipelineFactory, RunRequest, default_pipeline_factory
from ui.face_panels import FacePanelList
from ui.history import HistoryStore
from ui.outputs import Snapshot, recording_path, write_snapshot
from ui.prefs import HEATMAP_LABELS, needs_password
from ui.settings_panel import SettingsPanel
from ui.status import RecordClock, StatusReadouts, recording_text
from ui.toolbar import Actions, SourceToolbar
from ui.video_view import VideoView
from ui.window_state import load_prefs, restore_window, save_window

log = logging.getLogger(__name__)

_STATE_MESSAGES = {"starting": "Starting\u2026 (loading the model and the face tracker)", "stopping": "Stopping\u2026",
                   "stopped": "Stopped", "finished": "End of video", "paused": "Paused"}


class MainWindow(QMainWindow):
    """The monitoring window. `settings` is where preferences live (tests pass a temporary INI)."""

    snapshotSaved = pyqtSignal(object)  # Snapshot

    def __init__(self, settings: QSettings, source: str | None = None, model: str | None = None,
                 pipeline_factory: PipelineFactory = default_pipeline_factory,
                 realtime: bool = True, loop: bool = False, history_s: float = 10.0) -> None:
        super().__init__()
        self.setWindowTitle("edgefer \u2014 expression monitor")
        self.setMinimumSize(QSize(900, 560))
        self.qsettings = settings
        self.prefs = load_prefs(settings)
        if source:
            self.prefs.source = source
        if model is not None:
            self.prefs.model = model
        self.realtime = realtime
        self.loop = loop
        self.history = HistoryStore(window_s=history_s)
        self.controller = PipelineController(self.history, pipeline_factory, self)
        self.last_result: FrameResult | None = None
        self.results_shown = 0
        self.record_clock = RecordClock()
        self._last_stats: PipelineStats | None = None
        self._shown_state = ""

        self._build()
        self._connect()
        restore_window(settings, self)

        self.stats_timer = QTimer(self)
        self.stats_timer.setInterval(250)
        self.stats_timer.timeout.connect(self._tick)
        self.stats_timer.start()
        self._sync_controls()

    # ---- construction -----------------------------------------------------------------------
    def _build(self) -> None:
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        self.banner = Banner()
        self.video = VideoView()
        layout.addWidget(self.banner)
        layout.addWidget(self.video, 1)
        self.setCentralWidget(central)

        a = self.commands = Actions.create(self)
        self.act_start, self.act_pause, self.act_record = a.start, a.pause, a.record
        bar = self.source_toolbar = SourceToolbar(a, self.prefs.source, self.prefs.recent_sources)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        self.source_edit, self.camera_menu, self.rec_label = bar.source_edit, bar.camera_menu, bar.rec_label

        self.face_list = FacePanelList(self.history)
        self.faces_dock = self._dock("Faces", "facesDock", self.face_list)
        panel = self.settings_panel = SettingsPanel(self.prefs.live, self.prefs.model, self.prefs.output_dir)
        self.settings_dock = self._dock("Settings", "settingsDock", panel)
        self.resizeDocks([self.faces_dock, self.settings_dock], [560, 220], Qt.Orientation.Vertical)
        self.resizeDocks([self.faces_dock], [330], Qt.Orientation.Horizontal)
        self.heatmap_combo, self.opacity_slider = panel.heatmap_combo, panel.opacity_slider
        self.smoothing_slider, self.max_faces_spin = panel.smoothing_slider, panel.max_faces_spin
        self.model_edit, self.output_edit = panel.model_edit, panel.output_edit

        self.status_bar = QStatusBar()
        self.setStatusBar(self.status_bar)
        self.readouts = StatusReadouts(self.status_bar)
        self.fps_label, self.backend_label = self.readouts.fps_label, self.readouts.backend_label
        self.model_label, self.rec_state_label = self.readouts.model_label, self.readouts.rec_state_label

    def _dock(self, title: str, name: str, widget: QWidget) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        return dock

    def _connect(self) -> None:
        c, a, panel = self.controller, self.commands, self.settings_panel
        c.frameReady.connect(self._on_frame_ready)
        c.pipelineEvent.connect(self._on_event)
        c.stateChanged.connect(lambda _s: self._sync_controls())
        c.recordingChanged.connect(self._on_recording_changed)
        c.failed.connect(self._on_start_failed)
        a.open.triggered.connect(self.source_toolbar.choose_file)
        a.start.triggered.connect(self.toggle_start)
        a.pause.toggled.connect(self.set_paused)
        a.record.toggled.connect(self.set_recording)
        a.snapshot.triggered.connect(self.snapshot)
        a.heatmap.triggered.connect(self.cycle_heatmap)
        a.fullscreen.toggled.connect(self.set_full_screen)
        a.leave_fullscreen.triggered.connect(lambda: a.fullscreen.setChecked(False))
        a.quit.triggered.connect(self.close)
        self.source_toolbar.sourceChosen.connect(self.start_source)
        self.source_edit.returnPressed.connect(self.start_from_field)
        panel.liveChanged.connect(self._live_changed)
        panel.modelChosen.connect(self.set_model)
        panel.output_edit.editingFinished.connect(self._output_changed)

    # ---- settings and source ----------------------------------------------------------------
    def save_settings(self) -> None:
        self.prefs.output_dir = self.output_edit.text().strip() or self.prefs.output_dir
        save_window(self.qsettings, self, self.prefs)

    def _fill_camera_menu(self) -> None:
        self.source_toolbar.fill_camera_menu()

    def start_from_field(self) -> None:
        self.start_source(self.source_edit.text().strip())

    def toggle_start(self) -> None:
        if self.controller.running:
            self.stop()
        else:
            self.start_from_field()

    def start_source(self, source: str) -> bool:
        """Start (or restart) on `source` in the background; problems appear in the window.

        Returns False when the request was refused at once (empty or malformed source, missing
        file), judged by the pipeline's own `SourceSpec`; a failure while loading the model or
        opening the source arrives later as a banner.
        """
        source = source.strip()
        if not source:
            self.show_fault("warning", "source", "Choose a source first: a camera, a video file or a stream URL.")
            return False
        try:
            problem = SourceSpec.parse(source).file_problem()
        except ValueError as exc:
            self.show_fault("error", "source", str(exc))
            return False
        if problem is not None:
            self.show_fault("error", "source", problem[0].upper() + problem[1:])
            return False
        if needs_password(source):
            self.source_edit.setText(source)
            self.show_fault("warning", "source", f"Type the password in place of {MASK} in {source}: "
                            "edgefer never stores a password, so the recent list keeps it masked.")
            return False
        self.source_edit.setText(source)
        self.banner.hide()
        self.video.clear("Opening " + redact(source) + "\u2026")
        self.face_list.clear()
        self.last_result = None
        request = RunRequest(source=source, model=self.prefs.model, live=self.settings_panel.live(),
                             realtime=self.realtime, loop=self.loop)
        self.record_clock.reset()
        self.controller.start(request)
        self.prefs.source = source
        self.prefs.remember_source(source)
        self.source_toolbar.set_recent(self.prefs.recent_sources)
        self.status_bar.showMessage(f"Opening {redact(source)}\u2026", 4000)
        self._sync_controls()
        return True

    def _on_start_failed(self, message: str) -> None:
        self.show_fault("error", "pipeline", message)
        self.video.clear("Could not start. See the message above.")

    def stop(self) -> None:
        self.controller.stop()
        self.record_clock.reset()
        self._sync_controls()

    def set_paused(self, paused: bool) -> None:
        """Pause or resume; the recording clock stops too (a paused recording gets no frames)."""
        if self.controller.state in ("running", "paused"):
            self.controller.set_paused(paused)
            if paused:
                self.record_clock.pause()
            elif self.controller.recording is not None:
                self.record_clock.resume()
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
            except (OSError, ValueError, RuntimeError) as exc:
                self.act_record.setChecked(False)
                self.show_fault("error", "record", f"Recording failed: {exc}")
                return
            self.status_bar.showMessage(f"Recording to {path}", 4000)
        else:
            stopped = self.controller.recording
            self.controller.stop_recording()
            if stopped is not None:
                self.status_bar.showMessage(f"Recording saved: {stopped}", 6000)

    def _on_recording_changed(self, path: Path | None) -> None:
        if path is not None:
            self.record_clock.restart(running=not self.act_pause.isChecked())
        else:
            self.record_clock.reset()
        self._sync_record_widgets()

    def record_elapsed(self) -> float:
        return self.record_clock.elapsed()

    def snapshot(self) -> Snapshot | None:
        result = self.last_result
        if result is None:
            self.status_bar.showMessage("Nothing to snapshot yet: no frame shown", 4000)
            return None
        stats = self._last_stats
        model = (stats.model if stats is not None else "") or self.prefs.model or "default"
        try:
            snap = write_snapshot(result, self.output_edit.text().strip() or self.prefs.output_dir,
                                  source=redact(self.prefs.source), model=model)
        except (OSError, ValueError) as exc:
            self.show_fault("error", "snapshot", f"Snapshot failed: {exc}")
            return None
        self.status_bar.showMessage(f"Snapshot saved: {snap.png.name} + {snap.json.name} in {snap.png.parent}", 6000)
        self.snapshotSaved.emit(snap)
        return snap

    # ---- live settings ----------------------------------------------------------------------
    def _live_changed(self, live: LiveSettings) -> None:
        """A live control moved: remember it and steer the running pipeline."""
        p = self.prefs
        p.heatmap, p.opacity, p.smoothing, p.max_faces = live.heatmap, live.opacity, live.smoothing, live.max_faces
        self.controller.set_live(live)

    def cycle_heatmap(self) -> None:
        mode = self.prefs.next_heatmap()
        self.settings_panel.set_heatmap(mode)
        self.status_bar.showMessage(f"Heatmap: {HEATMAP_LABELS[mode]}", 2000)

    def set_model(self, path: str) -> None:
        """Use another model; a running video restarts on it (a recording is finalised first)."""
        if path and not Path(path).is_file():
            self.show_fault("error", "model", f"Model file not found: {path}")
            return
        self.prefs.model = path
        self.settings_panel.show_model(path)
        if self.controller.running:
            source = self.controller.request.source if self.controller.request else self.prefs.source
            self.start_source(source)

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
        if self.banner.shows_warning_of("capture") and time.monotonic() - self.banner.shown_at > 1.0:
            self.banner.hide()  # the source delivers again (reconnected): the warning is over
            self.status_bar.showMessage("Video is back", 4000)

    def _on_event(self, event: PipelineEvent) -> None:
        """Warnings and errors go to the banner; status lines to the status bar, except that the
        progress of a fault on show (reconnecting, attempt n) updates its banner."""
        text = f"{event.stage}: {event.message}"
        if event.kind == "warning" or event.kind == "error":
            self.show_fault(event.kind, event.stage, text)
        elif event.kind == "finished":
            self.status_bar.showMessage(f"Finished: {event.message}", 8000)
        elif self.banner.shows_warning_of(event.stage):
            self.banner.show_message("warning", event.stage, text)
        else:
            self.status_bar.showMessage(text, 5000)
        self._sync_record_widgets()

    def show_fault(self, kind: FaultKind, stage: str, text: str) -> None:
        self.banner.show_message(kind, stage, text)
        self.status_bar.showMessage(text, 10000)
        (log.error if kind == "error" else log.warning)("%s", text)

    # ---- periodic refresh -------------------------------------------------------------------
    def _tick(self) -> None:
        stats = self.controller.stats()
        if stats is not None:
            self._last_stats = stats
            self.readouts.show_stats(stats)
        self._sync_record_widgets()

    def _sync_record_widgets(self) -> None:
        path = self.controller.recording
        if self.act_record.isChecked() != (path is not None):
            self.act_record.blockSignals(True)
            self.act_record.setChecked(path is not None)
            self.act_record.blockSignals(False)
        text = recording_text(Path(path), self.record_elapsed()) if path is not None else None
        self.rec_label.setText(text or "")
        self.rec_label.setToolTip(str(path) if path is not None else "")
        self.readouts.show_recording(text)

    def _sync_controls(self) -> None:
        state = self.controller.state
        active = self.controller.running
        self.act_start.setText("Stop" if active else "Start")
        self.act_start.setIcon(self.commands.icon_stop if active else self.commands.icon_play)
        self.act_start.setEnabled(state != "stopping")
        can_steer = state in ("running", "paused")
        self.act_pause.setEnabled(can_steer)
        if self.act_pause.isChecked() != (state == "paused"):
            self.act_pause.blockSignals(True)
            self.act_pause.setChecked(state == "paused")
            self.act_pause.blockSignals(False)
        self.act_record.setEnabled(can_steer)
        message = _STATE_MESSAGES.get(state)
        if message and state != self._shown_state:
            self.status_bar.showMessage(message, 0 if state in ("starting", "stopping") else 6000)
        self._shown_state = state
        if not can_steer:
            self.readouts.show_idle()
        self._sync_record_widgets()

    # ---- closing ----------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent | None) -> None:  # noqa: N802
        """Stop the pipeline (which finalises any recording) and remember the settings."""
        self.stats_timer.stop()
        try:
            self.save_settings()
        except Exception:  # noqa: BLE001 - never lose a recording because settings could not be saved
            log.exception("cannot save settings to %s", self.qsettings.fileName())
        self.controller.shutdown()
        if event is not None:
            event.accept()
