"""Make Qt start cleanly even when OpenCV was imported first.

The opencv-python / opencv-contrib-python wheels ship their own Qt 5 build for `cv2.imshow` and,
when `cv2` is imported, set `QT_QPA_PLATFORM_PLUGIN_PATH` to `cv2/qt/plugins` and `QT_QPA_FONTDIR`
to `cv2/qt/fonts` (see `cv2/config-3.py`). Those variables are read by *every* Qt in the process,
including PyQt6's Qt 6: depending on the Qt version it then tries cv2's Qt 5 `libqxcb.so` first
("Could not load the Qt platform plugin 'xcb'" under a real X server, a well known breakage) and
looks for fonts in a folder that does not exist. The variables only matter at the moment the
QApplication is created, so we import cv2 (letting it do its thing once; later imports are cached
and do not touch the environment again), then remove the values that point into cv2's folder.
Values a user set on purpose to somewhere else are kept.

No PyQt6 import here: this must run *before* anything creates the QApplication.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

#: Variables that OpenCV's wheels set (or that point Qt at plugin folders) and that break PyQt6.
QT_PATH_VARIABLES: tuple[str, ...] = ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR", "QT_PLUGIN_PATH")


def _cv2_dir() -> Path | None:
    try:
        import cv2  # noqa: F401  (imported for its side effect on os.environ, once)
    except ImportError:  # pragma: no cover - cv2 comes with mediapipe, always present
        return None
    return Path(cv2.__file__).resolve().parent


def _points_into(value: str, folder: Path) -> bool:
    for part in value.split(os.pathsep):
        if not part:
            continue
        try:
            Path(part).resolve().relative_to(folder)
            return True
        except ValueError:
            continue
    return False


def prepare_qt_environment(platform: str | None = None) -> dict[str, str]:
    """Remove OpenCV's Qt variables from the environment; optionally force a QPA platform.

    Call it right before creating the QApplication, whatever was imported before. Returns the
    variables removed (name -> old value) so callers and tests can see what happened.
    """
    cv2_dir = _cv2_dir()
    removed: dict[str, str] = {}
    for name in QT_PATH_VARIABLES:
        value = os.environ.get(name)
        if value is None:
            continue
        if cv2_dir is not None and _points_into(value, cv2_dir):
            removed[name] = os.environ.pop(name)
    if removed:
        log.debug("removed OpenCV's Qt variables before starting Qt: %s", removed)
    if platform:
        os.environ["QT_QPA_PLATFORM"] = platform
    return removed
