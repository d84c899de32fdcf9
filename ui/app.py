"""Create the QApplication and the window; the optional timed screenshot and quit.

`prepare_qt_environment` runs before the QApplication exists (see `ui.qt_env` for why OpenCV's
Qt variables must go). Ctrl+C in the terminal closes the window the normal way, so the pipeline
stops and a recording is finalised instead of the process dying mid-write.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from ui.qt_env import prepare_qt_environment

log = logging.getLogger(__name__)

ORGANIZATION = "edgefer"
APPLICATION = "edgefer-ui"


def make_settings(path: Path | None) -> Any:
    """QSettings in the user's location, or in the INI file `path` (created on first save)."""
    from PyQt6.QtCore import QSettings

    if path is None:
        return QSettings(ORGANIZATION, APPLICATION)
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return QSettings(str(path), QSettings.Format.IniFormat)


def grab_window(window: Any, path: Path) -> dict[str, Any]:
    """Save what the screen shows of `window` (QScreen.grabWindow), plus a JSON description.

    The JSON gives the video rectangle in the PNG's pixels and the index of the frame on show,
    so a test can compare the screenshot with the source video frame.
    """
    from PyQt6.QtCore import QPoint
    from PyQt6.QtGui import QGuiApplication

    # Paint the newest frame now and let the window system catch up, so the pixels grabbed are
    # those of the frame named in the JSON.
    QGuiApplication.processEvents()
    window.video.repaint()
    QGuiApplication.sync()
    result = window.last_result
    screen = window.screen()
    pixmap = screen.grabWindow(int(window.winId()))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if pixmap.isNull() or not pixmap.save(str(path), "PNG"):
        raise OSError(f"cannot save the screenshot to {path}")
    ratio = pixmap.devicePixelRatio() or 1.0
    video = window.video
    rect = video.video_rect()
    top_left = video.mapTo(window, rect.topLeft()) if not rect.isEmpty() else QPoint()
    info = {
        "png": str(path),
        "qt_platform": QGuiApplication.platformName(),
        "screen": screen.name(),
        "size": [pixmap.width(), pixmap.height()],
        "video_rect": [round(top_left.x() * ratio), round(top_left.y() * ratio),
                       round(rect.width() * ratio), round(rect.height() * ratio)],
        "frame_index": int(result.frame.index) if result is not None else None,
        "frame_size": [video.frame_size().width(), video.frame_size().height()],
        "frames_shown": window.results_shown,
        "faces": {str(tid): panel.expression for tid, panel in window.face_list.panels.items()},
        "fps_label": window.fps_label.text(),
    }
    stats = window._last_stats
    if stats is not None:
        info.update(pipeline_fps=round(float(stats.fps), 2), pipeline_mean_fps=round(float(stats.mean_fps), 2),
                    frames_processed=int(stats.frames_processed), frames_dropped=int(stats.frames_dropped))
    path.with_name(path.name + ".json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return info


def run_app(source: str | None = None, model: str | None = None, settings_path: Path | None = None,
            realtime: bool = True, loop: bool = False, quit_after: float | None = None,
            screenshot: Path | None = None, platform: str | None = None, remote: Any = None) -> int:
    """Open the window (and run Qt's loop until it closes). `remote`: a started `RemoteSession`
    (`--serve`, `--events`) that every pipeline of the window feeds (ui/remote.py)."""
    prepare_qt_environment(platform)
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication

    from ui.main_window import MainWindow
    from ui.style import apply_dark_theme

    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication([sys.argv[0] if sys.argv else "edgefer-ui"])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("edgefer")
    apply_dark_theme(app)
    extra: dict[str, Any] = {}
    if remote is not None:
        from ui.remote import remote_factory

        extra["pipeline_factory"] = remote_factory(remote)
    window = MainWindow(make_settings(settings_path), source=source, model=model,
                        realtime=realtime, loop=loop, **extra)
    window.show()
    if source:
        QTimer.singleShot(0, lambda: window.start_source(source))

    status = {"rc": 0}

    def finish() -> None:
        if screenshot is not None:
            try:
                info = grab_window(window, screenshot)
                print(f"screenshot: {info['png']} ({info['frames_shown']} frames shown)")
            except OSError as exc:
                print(f"edgefer ui: {exc}", file=sys.stderr)
                status["rc"] = 1
        window.close()

    if quit_after is not None:
        QTimer.singleShot(int(quit_after * 1000), finish)

    # Python only runs signal handlers between bytecodes; a short timer gives it the chance
    # while Qt's event loop (C++) is running.
    previous = {sig: signal.signal(sig, lambda *_: window.close()) for sig in (signal.SIGINT, signal.SIGTERM)}
    poke = QTimer()
    poke.timeout.connect(lambda: None)
    poke.start(200)
    try:
        rc = app.exec()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        poke.stop()
    return status["rc"] or int(rc)
