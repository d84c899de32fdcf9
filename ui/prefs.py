"""The settings the window remembers between runs, validated, independent of where they are stored.

`UiPrefs` is a plain dataclass; `ui.main_window` reads and writes it through QSettings (the user's
platform location, or an INI file given with `--settings`; tests always use a temporary file).
A stored value that is missing or no longer valid (a hand-edited file, a renamed mode) falls back
to its default with a warning, instead of stopping the application from starting. The live
settings among them (heatmap mode and opacity, smoothing, max faces) take their defaults and
bounds from the pipeline's own `LiveSettings`, so the window accepts exactly what the pipeline does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any

from edgefer.live import HEATMAP_MODES, MAX_FACES_LIMIT, HeatmapMode
from edgefer.pipeline.settings import LiveSettings
from edgefer.redact import MASK, redact

log = logging.getLogger(__name__)

__all__ = ["HEATMAP_LABELS", "HEATMAP_MODES", "MAX_FACES_LIMIT", "UiPrefs", "needs_password", "prefs_from_mapping",
           "prefs_to_mapping"]

#: What the window calls each heatmap mode.
HEATMAP_LABELS: dict[HeatmapMode, str] = {"attention": "Attention", "cam": "CAM", "off": "Off"}
MAX_RECENT = 8
_LIVE = LiveSettings()


def default_output_dir() -> str:
    """Recordings and snapshots go under ~/Videos/edgefer unless the user picks another folder."""
    return str(Path.home() / "Videos" / "edgefer")


@dataclass
class UiPrefs:
    source: str = ""
    model: str = ""  # empty: the shipped default model
    heatmap: HeatmapMode = _LIVE.heatmap
    opacity: float = _LIVE.opacity
    smoothing: float = _LIVE.smoothing
    max_faces: int = _LIVE.max_faces
    output_dir: str = field(default_factory=default_output_dir)
    recent_sources: list[str] = field(default_factory=list)

    def remember_source(self, source: str) -> None:
        """Put `source` first in the recent list (no duplicates, bounded), its password masked.

        A password is never kept: the list (shown in the window and saved in the settings file)
        holds `rtsp://user:***@host/...`, and choosing it asks the user to type the password again
        (`needs_password`). A settings file is not a secret store and travels in bug reports.
        """
        if not source:
            return
        source = redact(source)
        self.recent_sources = [source] + [s for s in self.recent_sources if s != source]
        del self.recent_sources[MAX_RECENT:]

    def next_heatmap(self) -> HeatmapMode:
        """The mode after the current one, cycling attention -> cam -> off -> attention."""
        i = HEATMAP_MODES.index(self.heatmap) if self.heatmap in HEATMAP_MODES else -1
        return HEATMAP_MODES[(i + 1) % len(HEATMAP_MODES)]

    @property
    def live(self) -> LiveSettings:
        """The remembered live settings as the pipeline's record (validated)."""
        return LiveSettings(heatmap=self.heatmap, opacity=self.opacity, smoothing=self.smoothing,
                            max_faces=self.max_faces)


def _as_list(v: Any) -> list[str]:
    if v is None or v == "":
        return []
    if isinstance(v, str):
        return [v]
    return [str(x) for x in v][:MAX_RECENT]


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "source": str,
    "model": str,
    **{name: partial(LiveSettings.check, name) for name in LiveSettings.model_fields},
    "output_dir": str,
    "recent_sources": _as_list,
}


def prefs_from_mapping(get: Callable[[str], Any], origin: str = "settings") -> UiPrefs:
    """Build UiPrefs from a getter (None = not stored); invalid values warn and keep defaults."""
    prefs = UiPrefs()
    for f in fields(UiPrefs):
        raw = get(f.name)
        if raw is None:
            continue
        try:
            setattr(prefs, f.name, _CONVERTERS[f.name](raw))
        except (TypeError, ValueError) as exc:
            log.warning("%s: ignoring stored %s=%r (%s); using %r", origin, f.name, raw, exc, getattr(prefs, f.name))
    return prefs


def needs_password(source: str) -> bool:
    """True for a remembered source whose password was masked (it must be typed again)."""
    return redact(source) == source and (f":{MASK}@" in source or f"={MASK}" in source or f"//{MASK}@" in source)


def prefs_to_mapping(prefs: UiPrefs) -> dict[str, Any]:
    """What is written to the settings file: every source with its password masked."""
    stored = {f.name: getattr(prefs, f.name) for f in fields(UiPrefs)}
    stored["source"] = redact(prefs.source)
    stored["recent_sources"] = [redact(s) for s in prefs.recent_sources]
    return stored
