"""The window's handle on `edgefer.pipeline.runner.Pipeline`: lifecycle, thread hand-over, faults.

Starting a pipeline loads the model and MediaPipe (about 2 s on a small CPU) and stopping one
drains its queues and closes the recording (up to its timeout when a camera or stream stalls).
Neither may run on the GUI thread, or the window would freeze. So lifecycle operations (start,
stop, the clean-up after the end of a file) run one after another on a single control thread,
and report back through Qt signals; each carries the "generation" it belongs to, so the report of
an operation the user has already superseded (Stop pressed while starting) is ignored.

The pipeline calls `on_result` / `on_event` from its own threads. Qt widgets may only be touched
from the GUI thread, so the callbacks do three cheap things and return: record the faces'
probabilities in the history (every frame, so the trend plot misses nothing), put the result in the
pipeline's one-slot `Mailbox` (the same newest-frame hand-over `edgefer run`'s window uses), and
emit a signal *only when the mailbox was empty*. Qt queues that signal to
the GUI thread (the controller lives there); the slot takes whatever is newest. If the GUI is
behind, newer results overwrite older ones in the slot and at most one notification is ever
pending, so the event queue cannot grow and the window never shows stale video.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from PyQt6.QtCore import QObject, pyqtSignal

from edgefer.pipeline.events import PipelineEvent
from edgefer.pipeline.mailbox import Mailbox
from edgefer.pipeline.settings import CaptureSettings, LiveSettings, PipelineSettings
from edgefer.pipeline.stats import PipelineStats
from edgefer.redact import redact
from edgefer.types import FrameResult
from ui.history import HistoryStore

if TYPE_CHECKING:  # the runner loads Numba and OpenCV: imported when a run starts, not with the window
    from edgefer.pipeline.runner import Pipeline

log = logging.getLogger(__name__)

#: What the window shows on its Start button and status bar.
ControllerState = Literal["starting", "running", "paused", "stopping", "stopped", "finished"]


@dataclass(frozen=True)
class RunRequest:
    """What the user asked to run; `live` is the live controls' values when Start was pressed."""

    source: str
    model: str = ""
    live: LiveSettings = field(default_factory=LiveSettings)
    realtime: bool = True
    loop: bool = False


ResultCallback = Callable[[FrameResult], None]
EventCallback = Callable[[PipelineEvent], None]
PipelineFactory = Callable[[RunRequest, ResultCallback, EventCallback], "Pipeline"]


def default_pipeline_factory(request: RunRequest, on_result: ResultCallback, on_event: EventCallback) -> Pipeline:
    """Build the real pipeline, the same one `edgefer run` uses, in headless mode (we draw)."""
    from edgefer.pipeline.runner import Pipeline

    settings = PipelineSettings(
        source=request.source,
        model=Path(request.model) if request.model else None,
        headless=True,  # the window shows the frames; no OpenCV window beside it
        realtime=request.realtime,
        capture=CaptureSettings(loop=request.loop),
    )
    settings.apply_live(request.live)
    return Pipeline(settings, on_result=on_result, on_event=on_event)


class PipelineController(QObject):
    """Starts, stops and steers one pipeline at a time. Public methods are for the GUI thread.

    Signals: `frameReady()` when a new result waits in `mailbox`; `pipelineEvent(object)` with each
    PipelineEvent; `stateChanged(str)`: "starting" | "running" | "paused" | "stopping" | "stopped"
    | "finished"; `recordingChanged(object)` with the recording Path or None; `failed(str)` when the
    pipeline could not be built or started (bad source, bad model file).
    """

    frameReady = pyqtSignal()
    pipelineEvent = pyqtSignal(object)
    stateChanged = pyqtSignal(str)
    recordingChanged = pyqtSignal(object)
    failed = pyqtSignal(str)
    _workerState = pyqtSignal(int, str)
    _workerFailed = pyqtSignal(int, str)

    ACTIVE: tuple[ControllerState, ...] = ("starting", "running", "paused")

    def __init__(self, history: HistoryStore, factory: PipelineFactory = default_pipeline_factory,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.history = history
        self.factory = factory
        self.mailbox: Mailbox[FrameResult] = Mailbox()
        self.request: RunRequest | None = None
        self.state: ControllerState = "stopped"
        self._lock = threading.Lock()
        self._pipeline: Pipeline | None = None
        self._generation = 0
        self._live = LiveSettings()
        self._ops: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._workerState.connect(self._on_worker_state)
        self._workerFailed.connect(self._on_worker_failed)

    @property
    def pipeline(self) -> Pipeline | None:
        with self._lock:
            return self._pipeline

    @property
    def running(self) -> bool:
        """True while starting, running or paused (the Start button shows Stop)."""
        return self.state in self.ACTIVE

    # ---- the control thread -----------------------------------------------------------------
    def _submit(self, op: Callable[[], None] | None) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._work, name="edgefer-ui-control", daemon=True)
            self._worker.start()
        self._ops.put(op)

    def _work(self) -> None:
        while True:
            op = self._ops.get()
            if op is None:
                return
            try:
                op()
            except Exception:  # an op must never kill the control thread
                log.exception("pipeline control operation failed")

    def _bump(self) -> int:
        with self._lock:
            self._generation += 1
            return self._generation

    def _current(self, generation: int) -> bool:
        with self._lock:
            return generation == self._generation

    # ---- callbacks (pipeline threads) -------------------------------------------------------
    def _make_callbacks(self, generation: int) -> tuple[ResultCallback, EventCallback]:
        def on_result(result: FrameResult) -> None:
            if not self._current(generation):
                return
            try:
                self.history.add_result(result)
            except Exception:  # a bad record must not kill the pipeline's sink thread
                log.exception("cannot record face history")
            if self.mailbox.put(result):
                self.frameReady.emit()

        def on_event(event: PipelineEvent) -> None:
            if not self._current(generation):
                return
            self.pipelineEvent.emit(event)
            if event.kind == "finished":
                self._submit(lambda: self._do_finish(generation))

        return on_result, on_event

    # ---- lifecycle (GUI thread) -------------------------------------------------------------
    def start(self, request: RunRequest) -> None:
        """Stop whatever runs, then build and start a pipeline for `request` (in the background).

        The outcome arrives as `stateChanged("running")` or `failed(message)`.
        """
        generation = self._bump()
        self.request = request
        self.history.clear()
        self.mailbox.take()
        with self._lock:
            self._live = request.live
        self._set_state("starting")
        self._submit(lambda: self._do_start(request, generation))

    def stop(self) -> None:
        """Stop in the background; the pipeline closes its sinks, so a recording is finalised."""
        if self.state in ("stopped", "finished"):
            return
        generation = self._bump()
        self._set_state("stopping")
        self._submit(lambda: self._do_stop(generation))

    def shutdown(self, timeout: float = 20.0) -> bool:
        """Stop and wait (closing the window): True when everything stopped within `timeout`."""
        generation = self._bump()
        self._submit(lambda: self._do_stop(generation))
        self._submit(None)
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
            if worker.is_alive():
                log.error("the pipeline did not stop within %.0f s", timeout)
                return False
        self._worker = None
        self.state = "stopped"
        return True

    # ---- operations (control thread) --------------------------------------------------------
    def _do_start(self, request: RunRequest, generation: int) -> None:
        self._stop_current()
        if not self._current(generation):
            return  # superseded while waiting in the queue
        on_result, on_event = self._make_callbacks(generation)
        try:
            pipeline = self.factory(request, on_result, on_event)
            pipeline.start()
        except Exception as exc:  # noqa: BLE001 - bad source/model (any error type): shown, the app goes on
            shown = redact(request.source)  # the password opens the stream; it is shown nowhere
            log.warning("cannot start the pipeline on %s: %s", shown, redact(exc))
            self._workerFailed.emit(generation, f"Cannot start on {shown}: {redact(exc)}")
            return
        with self._lock:
            stale = generation != self._generation
            if not stale:
                self._pipeline = pipeline
                live = self._live
        if stale:
            pipeline.stop()
            return
        pipeline.set_live(live)  # controls moved while it was starting
        self._workerState.emit(generation, "running")

    def _stop_current(self) -> None:
        with self._lock:
            pipeline, self._pipeline = self._pipeline, None
        if pipeline is None:
            return
        was_recording = pipeline.recording is not None
        try:
            pipeline.stop()
        except Exception as exc:  # noqa: BLE001 - stopping must finish whatever failed inside
            log.warning("error while stopping the pipeline: %s", exc)
        if was_recording:
            self.recordingChanged.emit(None)

    def _do_stop(self, generation: int) -> None:
        self._stop_current()
        self._workerState.emit(generation, "stopped")

    def _do_finish(self, generation: int) -> None:
        """End of the file (or the source gave up): join the threads, keep the last frame shown."""
        if not self._current(generation):
            return
        self._stop_current()
        self._workerState.emit(generation, "finished")

    # ---- reports (GUI thread) ---------------------------------------------------------------
    def _on_worker_state(self, generation: int, state: ControllerState) -> None:
        if self._current(generation):
            self._set_state(state)

    def _on_worker_failed(self, generation: int, message: str) -> None:
        if self._current(generation):
            self._set_state("stopped")
            self.failed.emit(message)

    def _set_state(self, state: ControllerState) -> None:
        if state != self.state:
            self.state = state
            self.stateChanged.emit(state)

    # ---- live controls (GUI thread; the pipeline's setters are thread-safe) -----------------
    def set_paused(self, paused: bool) -> None:
        pipeline = self.pipeline
        if pipeline is None or self.state not in ("running", "paused"):
            return
        if paused:
            pipeline.pause()
            self._set_state("paused")
        else:
            pipeline.resume()
            self._set_state("running")

    def start_recording(self, path: Path) -> None:
        pipeline = self.pipeline
        if pipeline is None:
            raise RuntimeError("start the video before recording")
        pipeline.start_recording(path)
        self.recordingChanged.emit(Path(path))

    def stop_recording(self) -> None:
        """Finish the recording; the pipeline returns once the file is closed and playable."""
        pipeline = self.pipeline
        if pipeline is None:
            return
        pipeline.stop_recording()
        self.recordingChanged.emit(None)

    @property
    def recording(self) -> Path | None:
        pipeline = self.pipeline
        return pipeline.recording if pipeline is not None else None

    @property
    def live(self) -> LiveSettings:
        """The live settings the controls show (and the running pipeline uses)."""
        return self._live

    def set_live(self, live: LiveSettings) -> None:
        """Take all live settings at once: kept for the next start, applied to the running pipeline."""
        with self._lock:
            self._live = live
            pipeline = self._pipeline
        if pipeline is not None:
            pipeline.set_live(live)

    def stats(self) -> PipelineStats | None:
        pipeline = self.pipeline
        return pipeline.stats() if pipeline is not None else None
