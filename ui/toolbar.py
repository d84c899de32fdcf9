"""The window's actions (with their shortcuts) and the source toolbar above the video.

Every user command is one QAction added to the window itself, so its shortcut works also when
the toolbars are hidden (full screen). The toolbar holds the camera menu, the source field (with
the recently used sources), Start/Stop, Pause, Record with its REC readout, and Snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PyQt6.QtCore import QSize, Qt, pyqtSignal
from PyQt6.QtGui import QAction, QIcon, QKeySequence
from PyQt6.QtWidgets import (
    QCompleter,
    QFileDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QToolBar,
    QToolButton,
)

from edgefer.media import VIDEO_SUFFIXES
from ui import icons
from ui.cameras import list_cameras

VIDEO_FILTER = f"Videos and images ({' '.join('*' + s for s in VIDEO_SUFFIXES)});;All files (*)"


def make_action(window: QMainWindow, text: str, shortcut: str | QKeySequence.StandardKey | None = None,
                tip: str = "", checkable: bool = False, icon: QIcon | None = None) -> QAction:
    """An action of `window` whose tooltip names its shortcut."""
    act = QAction(text, window)
    if icon is not None:
        act.setIcon(icon)
    if shortcut is not None:
        act.setShortcut(QKeySequence(shortcut))
        act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    act.setCheckable(checkable)
    key = act.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
    act.setToolTip(f"{tip or text} ({key})" if key else (tip or text))
    window.addAction(act)  # shortcuts keep working when toolbars are hidden (full screen)
    return act


@dataclass
class Actions:
    """The window's commands."""

    open: QAction
    start: QAction
    pause: QAction
    record: QAction
    snapshot: QAction
    heatmap: QAction
    fullscreen: QAction
    leave_fullscreen: QAction
    quit: QAction
    icon_play: QIcon
    icon_stop: QIcon

    @classmethod
    def create(cls, w: QMainWindow) -> Actions:
        play = icons.play()
        return cls(
            open=make_action(w, "Open file\u2026", QKeySequence.StandardKey.Open, "Open a video file", icon=icons.folder()),
            start=make_action(w, "Start", "Ctrl+Return", "Start or stop the video", icon=play),
            pause=make_action(w, "Pause", "Space", "Pause / resume", checkable=True, icon=icons.pause()),
            record=make_action(w, "Record", "R", "Record the annotated video", checkable=True, icon=icons.record()),
            snapshot=make_action(w, "Snapshot", "S", "Save the annotated frame (PNG) and predictions (JSON)",
                                 icon=icons.snapshot()),
            heatmap=make_action(w, "Heatmap", "H", "Cycle the heatmap: attention, CAM, off"),
            fullscreen=make_action(w, "Full screen", "F", "Full screen video", checkable=True),
            leave_fullscreen=make_action(w, "Leave full screen", "Esc"),
            quit=make_action(w, "Quit", QKeySequence.StandardKey.Quit),
            icon_play=play,
            icon_stop=icons.stop(),
        )


class SourceToolbar(QToolBar):
    """Camera menu, source field, Start, Pause, Record (+ REC readout) and Snapshot.

    Signals: `sourceChosen(str)` with the camera picked from the menu or the file picked in the dialog.
    """

    sourceChosen = pyqtSignal(str)

    def __init__(self, actions: Actions, source: str, recent: list[str]) -> None:
        super().__init__("Source")
        self.setObjectName("sourceToolbar")
        self.setMovable(False)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.setIconSize(QSize(16, 16))
        self.camera_button = QToolButton()
        self.camera_button.setText("Camera")
        self.camera_button.setIcon(icons.camera())
        self.camera_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.camera_button.setToolTip("Pick a camera (/dev/video*)")
        self.camera_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.camera_menu = QMenu(self.camera_button)
        self.camera_button.setMenu(self.camera_menu)
        self.camera_menu.aboutToShow.connect(self.fill_camera_menu)
        self.addWidget(self.camera_button)
        self.addAction(actions.open)
        self.source_edit = QLineEdit(source)
        self.source_edit.setObjectName("sourceEdit")
        self.source_edit.setPlaceholderText("camera index, video file, rtsp://\u2026 URL or GStreamer pipeline")
        self.source_edit.setClearButtonEnabled(True)
        self.source_edit.setMinimumWidth(260)
        self._completer = QCompleter(recent, self)
        self.source_edit.setCompleter(self._completer)
        self.addWidget(self.source_edit)
        self.addAction(actions.start)
        self.addAction(actions.pause)
        self.addSeparator()
        self.addAction(actions.record)
        rec_button = self.widgetForAction(actions.record)
        if rec_button is not None:
            rec_button.setObjectName("recordButton")
        self.rec_label = QLabel("")
        self.rec_label.setObjectName("recLabel")
        self.addWidget(self.rec_label)
        self.addAction(actions.snapshot)

    def fill_camera_menu(self) -> None:
        """List the cameras there are now (/dev/video*), or say there are none."""
        self.camera_menu.clear()
        cameras = list_cameras()
        if not cameras:
            act = self.camera_menu.addAction("No camera found (/dev/video*)")
            if act is not None:
                act.setEnabled(False)
        for cam in cameras:
            act = self.camera_menu.addAction(cam.label)
            if act is not None:
                act.triggered.connect(lambda _c=False, src=cam.source: self.sourceChosen.emit(src))

    def choose_file(self) -> None:
        """The Open dialog, starting where the current source is."""
        text = self.source_edit.text()
        start_dir = str(Path(text).expanduser().parent) if text else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open a video", start_dir, VIDEO_FILTER)
        if path:
            self.sourceChosen.emit(path)

    def set_recent(self, sources: list[str]) -> None:
        """The sources the field completes (most recent first)."""
        model = self._completer.model()
        if model is not None:
            model.setStringList(sources)  # type: ignore[attr-defined]  # QCompleter's default QStringListModel
