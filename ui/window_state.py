"""Where the window keeps what it remembers: preferences, geometry and dock layout in QSettings.

QSettings is the user's platform location, or an INI file given with `--settings` (tests always
use a temporary file). The preferences themselves are validated by `ui.prefs`, which knows nothing
of QSettings; this module only moves them in and out.
"""

from __future__ import annotations

from PyQt6.QtCore import QByteArray, QSettings
from PyQt6.QtWidgets import QMainWindow

from ui.prefs import UiPrefs, prefs_from_mapping, prefs_to_mapping


def load_prefs(qs: QSettings) -> UiPrefs:
    """The stored preferences; a missing or invalid value keeps its default (with a warning)."""
    return prefs_from_mapping(lambda key: qs.value(f"prefs/{key}") if qs.contains(f"prefs/{key}") else None,
                              origin=qs.fileName())


def save_window(qs: QSettings, window: QMainWindow, prefs: UiPrefs) -> None:
    """Store the preferences and the window's geometry and dock layout, written to disk now."""
    for key, value in prefs_to_mapping(prefs).items():
        qs.setValue(f"prefs/{key}", value)
    qs.setValue("window/geometry", window.saveGeometry())
    qs.setValue("window/state", window.saveState())
    qs.sync()


def restore_window(qs: QSettings, window: QMainWindow, default_size: tuple[int, int] = (1280, 760)) -> None:
    """Put the window back where it was (or give it `default_size` the first time)."""
    geometry = qs.value("window/geometry")
    state = qs.value("window/state")
    if isinstance(geometry, QByteArray) and not geometry.isEmpty():
        window.restoreGeometry(geometry)
    else:
        window.resize(*default_size)
    if isinstance(state, QByteArray) and not state.isEmpty():
        window.restoreState(state)
