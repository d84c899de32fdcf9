"""The settings the window remembers between runs, validated, independent of where they are stored.

`UiPrefs` is a plain dataclass; `ui.main_window` reads and writes it through QSettings (the user's
platform location, or an INI file given with `--settings`; tests always use a temporary file).
A stored value that is missing or no longer valid (a hand-edited file, a renamed mode) falls back
to its default with a warning, instead of stopping the application from starting.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

HEATMAP_MODES: tuple[str, ...] = ("attention", "cam", "off")
HEATMAP_LABELS: dict[str, str] = {"attention": "Attention", "cam": "CAM", "off": "Off"}
MAX_RECENT = 8


def default_output_dir() -> str:
    """Recordings and snapshots go under ~/Videos/edgefer unless the user picks another folder."""
    return str(Path.home() / "Videos" / "edgefer")


@dataclass
class UiPrefs:
    source: str = ""
    model: str = ""  # empty: the shipped default model
    heatmap: str = "attention"
    opacity: float = 0.45
    smoothing: float = 0.6
    max_faces: int = 4
    output_dir: str = field(default_factory=default_output_dir)
    recent_sources: list[str] = field(default_factory=list)

    def remember_source(self, source: str) -> None:
        """Put `source` first in the recent list (no duplicates, bounded)."""
        if not source:
            return
        self.recent_sources = [source] + [s for s in self.recent_sources if s != source]
        del self.recent_sources[MAX_RECENT:]

    def next_heatmap(self) -> str:
        """The mode after the current one, cycling attention -> cam -> off -> attention."""
        i = HEATMAP_MODES.index(self.heatmap) if self.heatmap in HEATMAP_MODES else -1
        return HEATMAP_MODES[(i + 1) % len(HEATMAP_MODES)]


def _in_range(cast: Callable[[Any], Any], lo: float, hi: float) -> Callable[[Any], Any]:
    """A converter for a stored setting: cast it, and refuse values outside [lo, hi]."""

    def conv(v: Any) -> Any:
        x = cast(v)
        if not lo <= x <= hi:
            raise ValueError(f"{x} is outside {lo}..{hi}")
        return x

    return conv


def _as_mode(v: Any) -> str:
    s = str(v).lower()
    if s not in HEATMAP_MODES:
        raise ValueError(f"{v!r} is not one of {', '.join(HEATMAP_MODES)}")
    return s


def _as_list(v: Any) -> list[str]:
    if v is None or v == "":
        return []
    if isinstance(v, str):
        return [v]
    return [str(x) for x in v][:MAX_RECENT]


MAX_FACES_LIMIT = 16

_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "source": str,
    "model": str,
    "heatmap": _as_mode,
    "opacity": _in_range(float, 0.0, 1.0),
    "smoothing": _in_range(float, 0.0, 0.95),
    "max_faces": _in_range(int, 1, MAX_FACES_LIMIT),
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


def prefs_to_mapping(prefs: UiPrefs) -> dict[str, Any]:
    return {f.name: getattr(prefs, f.name) for f in fields(UiPrefs)}
