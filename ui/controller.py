"""The window's handle on `edgefer.pipeline.runner.Pipeline`: lifecycle, thread hand-over, faults.

The pipeline calls `on_result` / `on_event` from its own threads. Qt widgets may only be touched
from the GUI thread, so the callbacks do three cheap things and return: record the faces'
probabilities in the history (every frame, so the trend plot misses nothing), put the result in a
one-slot mailbox, and emit a signal *only when the mailbox was empty*. Qt queues that signal to
the GUI thread (the controller lives there); the slot takes whatever is newest. If the GUI is
behind, newer results overwrite older ones in the slot and at most one notification is ever
pending, so the event queue cannot grow and the window never shows stale video.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from PyQt6.QtCore import QObject, pyqtSignal

from ui.history import HistoryStore

log = logging.getLogger(__name__)


class LatestResult:
    """A one-slot, thread-safe mailbox that keeps only the newest item and counts overwrites."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._item: Any = None
        self.received = 0
        self.overwritten = 0

    def put(self, item: Any) -> bool:
        """Store `item`; True when the slot was empty (the reader must be notified)."""
        with self._lock:
            was_empty = self._item is None
            if not was_empty:
                self.overwritten += 1
            self._item = item
            self.received += 1
            return was_empty

    def take(self) -> Any:
        with self._lock:
            item, self._item = self._item, None
            return item


@dataclass(frozen=True)
class RunRequest:
    """What the user asked to run: everything else comes from the live controls."""

    source: str
    model: str = ""
    max_faces: int = 4
    smoothing: float = 0.6
    heatmap: str = "attention"
    opacity: float = 0.45
    realtime: bool = True
    loop: bool = False


def default_pipeline_factory(request: RunRequest, on_result: Callable, on_event: Callable) -> Any:
    """Build the real pipeline, the same one `edgefer run` uses, in headless mode (we draw)."""
    from edgefer.pipeline.runner import Pipeline
    from edgefer.pipeline.settings import PipelineSettings

    settings = PipelineSettings(
        source=request.source,
        model=Path(request.model) if request.model else None,
        max_faces=request.max_faces,
        smoothing=request.smoothing,
        heatmap={"mode": request.heatmap, "opacity": request.opacity},
        headless=True,  # the window shows the frames; no OpenCV window beside it
        realtime=request.realtime,
        capture={"loop": request.loop},
    )
    return Pipeline(settings, on_result=on_result, on_event=on_event)


class PipelineController(QObject):
    """Starts, stops and steers one pipeline at a time; all methods are called from the GUI thread.

    Signals: `frameReady()` when a new result waits in `mailbox`; `pipelineEvent(object)` with each
    PipelineEvent; `stateChanged(str)` "stopped" | "running" | "paused" | "finished";
    `recordingChanged(object)` with the recording Path or None; `failed(str)` when the pipeline
    could not be built or started (bad source, bad model file).
    """

    frameReady = pyqtSignal()
    pipelineEvent = pyqtSignal(object)
    stateChanged = pyqtSignal(str)
    recordingChanged = pyqtSignal(object)
    failed = pyqtSignal(str)
    _finishedFromThread = pyqtSignal()

    def __init__(self, history: HistoryStore, factory: Callable[..., Any] = default_pipeline_factory,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.history = history
        self.factory = factory
        self.mailbox = LatestResult()
        self.pipeline: Any = None
        self.request: RunRequest | None = None
        self.state = "stopped"
        self._generation = 0  # results of a pipeline that was stopped are ignored
        self._finishedFromThread.connect(self._on_finished)

    # ---- callbacks (pipeline threads) -------------------------------------------------------
    def _make_callbacks(self, generation: int) -> tuple[Callable, Callable]:
        def on_result(result: Any) -> None:
            if generation != self._generation:
                return
            try:
                self.history.add_result(result)
            except Exception:  # a bad record must not kill the pipeline's sink thread
                log.exception("cannot record face history")
            if self.mailbox.put(result):
                self.frameReady.emit()

        def on_event(event: Any) -> None:
            if generation != self._generation:
                return
            self.pipelineEvent.emit(event)
            if getattr(event, "kind", "") == "finished":
                self._finishedFromThread.emit()

        return on_result, on_event

    # ---- lifecycle (GUI thread) -------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.pipeline is not None and self.state in ("running", "paused")

    def start(self, request: RunRequest) -> bool:
        """Stop whatever runs, then build and start a pipeline for `request`. False on failure."""
        self.stop()
        self._generation += 1
        self.history.clear()
        self.mailbox.take()
        on_result, on_event = self._make_callbacks(self._generation)
        try:
            pipeline = self.factory(request, on_result, on_event)
            pipeline.start()
        except Exception as exc:  # bad source/model: tell the user in the window, keep running
            log.warning("cannot start the pipeline on %s: %s", request.source, exc)
            self.pipeline = None
            self._set_state("stopped")
            self.failed.emit(f"Cannot start on {request.source}: {exc}")
            return False
        self.pipeline = pipeline
        self.request = request
        self._set_state("running")
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the pipeline; it closes its sinks, so any recording is finalised and playable."""
        pipeline, self.pipeline = self.pipeline, None
        if pipeline is None:
            return
        self._generation += 1
        was_recording = getattr(pipeline, "recording", None) is not None
        try:
            pipeline.stop(timeout=timeout)
        except Exception as exc:
            log.warning("error while stopping the pipeline: %s", exc)
            self.failed.emit(f"Error while stopping: {exc}")
        if was_recording:
            self.recordingChanged.emit(None)
        if self.state != "finished":
            self._set_state("stopped")

    def _on_finished(self) -> None:
        """End of the file (or the source gave up): join threads, keep the last frame shown."""
        if self.pipeline is None:
            return
        pipeline, self.pipeline = self.pipeline, None
        was_recording = getattr(pipeline, "recording", None) is not None
        try:
            pipeline.stop(timeout=10.0)
        except Exception as exc:
            log.warning("error while closing the finished pipeline: %s", exc)
        if was_recording:
            self.recordingChanged.emit(None)
        self._set_state("finished")

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.stateChanged.emit(state)

    # ---- live controls ----------------------------------------------------------------------
    def set_paused(self, paused: bool) -> None:
        if self.pipeline is None:
            return
        if paused:
            self.pipeline.pause()
            self._set_state("paused")
        else:
            self.pipeline.resume()
            self._set_state("running")

    def start_recording(self, path: Path) -> None:
        if self.pipeline is None:
            raise RuntimeError("start the video before recording")
        self.pipeline.start_recording(path)
        self.recordingChanged.emit(Path(path))

    def stop_recording(self) -> None:
        if self.pipeline is None:
            return
        self.pipeline.stop_recording()
        self.recordingChanged.emit(None)

    @property
    def recording(self) -> Path | None:
        return getattr(self.pipeline, "recording", None) if self.pipeline is not None else None

    def set_heatmap(self, mode: str, opacity: float) -> None:
        if self.pipeline is not None:
            self.pipeline.set_heatmap(mode, opacity)

    def set_smoothing(self, strength: float) -> None:
        if self.pipeline is not None:
            self.pipeline.set_smoothing(strength)

    def set_max_faces(self, n: int) -> None:
        if self.pipeline is not None:
            self.pipeline.set_max_faces(n)

    def stats(self) -> Any:
        return self.pipeline.stats() if self.pipeline is not None else None
