"""The status bar's permanent readouts: frame rate, latency, backend, model, recording state.

Filled from the pipeline's own `PipelineStats` snapshot every tick of the window's timer, so the
numbers are the ones `edgefer run` prints at the end, not a second measurement.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from PyQt6.QtWidgets import QLabel, QStatusBar

from edgefer.pipeline.stats import PipelineStats
from ui.style import MUTED, RECORD

DASH = "\u2013"


def fmt_elapsed(seconds: float) -> str:
    """`mm:ss`, or `h:mm:ss` from an hour on."""
    s = int(seconds)
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


def recording_text(path: Path, elapsed_s: float) -> str:
    """What the toolbar and the status bar say while recording."""
    return f"\u25CF REC {path.name}  {fmt_elapsed(elapsed_s)}"


class StatusReadouts:
    """The labels added to the right of a QStatusBar."""

    def __init__(self, bar: QStatusBar) -> None:
        self.fps_label = QLabel(f"{DASH} fps")
        self.latency_label = QLabel(f"latency {DASH}")
        self.backend_label = QLabel(f"backend {DASH}")
        self.model_label = QLabel(f"model {DASH}")
        self.rec_state_label = QLabel("not recording")
        for w in (self.fps_label, self.latency_label, self.backend_label, self.model_label, self.rec_state_label):
            w.setStyleSheet(f"color: {MUTED};")
            bar.addPermanentWidget(w)

    def show_stats(self, stats: PipelineStats) -> None:
        """FPS (last ~2 s), end-to-end latency p50 (p95 and per-stage figures in the tooltip)."""
        self.fps_label.setText(f"{stats.fps:.1f} fps")
        self.fps_label.setToolTip(f"{stats.frames_processed} frames shown, {stats.frames_dropped} dropped (stale)")
        e2e = stats.end_to_end
        if e2e is not None and not math.isnan(e2e.p50_ms):  # at least one frame went through
            self.latency_label.setText(f"latency {e2e.p50_ms:.0f} ms")
            rows = [f"end-to-end p50 {e2e.p50_ms:.1f} ms, p95 {e2e.p95_ms:.1f} ms"]
            rows += [f"{st.name}: p50 {st.p50_ms:.1f} ms, p95 {st.p95_ms:.1f} ms"
                     for st in stats.stages if not math.isnan(st.p50_ms)]
            self.latency_label.setToolTip("\n".join(rows))
        else:
            self.latency_label.setText(f"latency {DASH}")
        self.backend_label.setText(f"backend {stats.backend or DASH}")
        self.model_label.setText(f"model {Path(stats.model).name if stats.model else DASH}")
        self.model_label.setToolTip(stats.model)

    def show_idle(self) -> None:
        """No video flows: no frame rate to show."""
        self.fps_label.setText(f"{DASH} fps")

    def show_recording(self, text: str | None) -> None:
        """The recording line (`recording_text`), or None when not recording."""
        if text is not None:
            self.rec_state_label.setText(text)
            self.rec_state_label.setStyleSheet(f"color: {RECORD}; font-weight: bold;")
        else:
            self.rec_state_label.setText("not recording")
            self.rec_state_label.setStyleSheet(f"color: {MUTED};")


class RecordClock:
    """How long the current recording has been written: it stops while the video is paused (a
    paused recording gets no frames) and starts over with each recording."""

    def __init__(self) -> None:
        self._started: float | None = None
        self._elapsed = 0.0

    def restart(self, running: bool) -> None:
        """A new recording: from zero, counting now unless the video is paused."""
        self._elapsed = 0.0
        self._started = time.monotonic() if running else None

    def pause(self) -> None:
        if self._started is not None:
            self._elapsed += time.monotonic() - self._started
            self._started = None

    def resume(self) -> None:
        if self._started is None:
            self._started = time.monotonic()

    def reset(self) -> None:
        self._started = None
        self._elapsed = 0.0

    def elapsed(self) -> float:
        extra = time.monotonic() - self._started if self._started is not None else 0.0
        return self._elapsed + extra
