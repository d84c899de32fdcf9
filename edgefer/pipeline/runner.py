"""The threaded real-time pipeline: capture -> track -> classify -> render -> sinks.

Threads live here and nowhere else. Each stage runs on its own thread and hands typed records
(`Frame`, `TrackedFrame`, `FrameResult`) to the next through a small bounded `StageQueue`: a slow
stage slows (files) or thins (live sources) the stream instead of piling it up. A live source
keeps only the newest frame in front of the tracker (a stale one is replaced and counted as
dropped), so what you see is at most a few frames old. A file is processed frame by frame as fast
as the stages allow, or at its own frame rate with `realtime` (then it drops stale frames too).

This module keeps the wiring and the lifecycle. Each other concern has a room of its own:
`load_collaborators` (model, aligner, tracker), `Capture` (reading, pacing, reconnecting),
`FrameWork` (track, classify and render under the live settings, with `stages`' functions),
`Outputs` and its `Recording` state machine (what the sink writes), `EventLog` (throttled
events), `StatsCollector`, and the `Mailbox` a display takes the newest frame from.

The public API (driven by the PyQt6 UI and by `edgefer run`; see docs/pipeline.md):

    p = Pipeline(settings, on_result=..., on_event=...)
    p.start(); ...; p.stop()          # or: with Pipeline(settings) as p: p.start(); p.wait()
    p.pause(); p.resume(); p.start_recording(path); p.stop_recording(); p.recording
    p.set_live(LiveSettings(...)), or p.set_heatmap(mode, opacity); p.set_smoothing(s); p.set_max_faces(n)
    p.stats() -> PipelineStats; p.events() -> list[PipelineEvent]

Callbacks: `on_result(FrameResult)` is called on the sink thread for every frame that leaves the
pipeline, after it was written (`.annotated` is set; do not modify it, copy if you keep it long).
`on_event(PipelineEvent)` on the thread that noticed the event (a stage, or the caller of start or
stop). Both must be quick and must not call `stop()`/`wait()`; their exceptions are logged only.

Faults are events, not exceptions: a lost camera is reopened with backoff, a damaged file is read
as far as it decodes, a recording that cannot be written stops alone. Only what must be fixed
before anything runs (missing model or source file, bad settings) raises `PipelineError`.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from edgefer.live import HeatmapMode
from edgefer.pipeline.capture import Capture
from edgefer.pipeline.collaborators import Collaborators, load_collaborators
from edgefer.pipeline.display import Display
from edgefer.pipeline.eventlog import EventLog
from edgefer.pipeline.events import PipelineError, PipelineEvent, StageName
from edgefer.pipeline.mailbox import Mailbox
from edgefer.pipeline.outputs import Outputs
from edgefer.pipeline.queues import StageQueue, Stamped
from edgefer.pipeline.settings import LiveSettings, PipelineSettings
from edgefer.pipeline.smoothing import ProbabilitySmoother
from edgefer.pipeline.sources import SourceSpec
from edgefer.pipeline.stats import PipelineStats, StatsCollector
from edgefer.pipeline.work import FrameWork
from edgefer.tracking import BLENDSHAPE_NAMES
from edgefer.types import Frame, FrameResult, TrackedFrame

log = logging.getLogger(__name__)

__all__ = ["Pipeline", "PipelineError", "PipelineEvent", "PipelineSettings", "PipelineStats", "run_pipeline"]

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass
class _Wiring:
    """What `start` connects: the collaborators, the capture and the queues between the stages."""

    models: Collaborators
    capture: Capture
    frames: StageQueue[Frame]  # capture -> track
    tracked: StageQueue[TrackedFrame]  # track -> classify
    classified: StageQueue[FrameResult]  # classify -> render
    rendered: StageQueue[FrameResult]  # render -> sink


class Pipeline:
    """Real-time FER over one source; see the module docstring for the API and threading."""

    def __init__(
        self,
        settings: PipelineSettings,
        on_result: Callable[[FrameResult], None] | None = None,
        on_event: Callable[[PipelineEvent], None] | None = None,
    ) -> None:
        self.settings = settings.model_copy(deep=True)
        self._lock = threading.RLock()
        self._stats = StatsCollector()
        self._events = EventLog(self._stats, on_event)
        self._threads: list[threading.Thread] = []
        self._started = False
        self._starting = False
        self._stop_req = threading.Event()
        self._abort = threading.Event()
        self._finished = threading.Event()
        self._paused = threading.Event()
        self._smoother = ProbabilitySmoother(self.settings.smoothing)
        self._work = FrameWork(self.settings, self._smoother, self._stats, self._events)
        self._outputs = Outputs(self.settings, self._events, self._source_fps, on_result)
        self._recording = self._outputs.recording
        self._models: Collaborators | None = None
        self._wiring: _Wiring | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Load the model and tracker, open the row sink and start the stage threads.

        Returns at once (the source is opened on the capture thread: a camera or stream may
        take a while). Raises PipelineError for what must be fixed first.
        """
        with self._lock:
            if self._started or self._starting:
                raise PipelineError("pipeline already started (create a new Pipeline to run again)")
            self._starting = True
        try:
            w = self._wiring = self._prepare()
        except BaseException:
            self._close_models()  # nothing runs yet: release what was loaded; start() may be retried
            with self._lock:
                self._starting = False
            raise
        loops: list[tuple[StageName, Callable[[], None]]] = [
            ("capture", w.capture.run),
            ("track", lambda: self._stage("track", w.frames, w.tracked, self._work.track)),
            ("classify", lambda: self._stage("classify", w.tracked, w.classified, self._work.classify)),
            ("render", lambda: self._stage("render", w.classified, w.rendered, self._work.render,
                                           before=self._work.warm_up_render)),
            ("sink", lambda: self._sink_loop(w)),
        ]
        self._stats.started()
        for name, loop in loops:
            t = threading.Thread(target=self._guarded, args=(name, loop, w), name=f"edgefer-{name}", daemon=True)
            self._threads.append(t)
        with self._lock:
            self._started = True
            self._starting = False
        _RUNNING.add(self)
        for t in self._threads:
            t.start()
        label = w.capture.spec.label
        self._events.emit("status", "pipeline", f"started on {label} with {self._stats.model} [{self._stats.backend}]")

    def _prepare(self) -> _Wiring:
        """Everything `start` does before threads exist: parse, check, load, open the rows, wire."""
        s = self.settings
        try:
            spec = SourceSpec.parse(
                s.source, live=s.capture.live, width=s.capture.width, height=s.capture.height, fps=s.capture.fps
            )
        except ValueError as exc:
            raise PipelineError(str(exc)) from None
        problem = spec.file_problem()
        if problem is not None:
            raise PipelineError(problem)
        self._outputs.claim_run()  # before anything is opened: never into a previous run's files
        models = self._models = load_collaborators(s, self._work.tracker_faces)
        self._work.attach(models)
        self._stats.source = spec.label
        self._stats.model = models.classifier.source.name
        self._stats.backend = models.classifier.backend_name
        try:
            self._outputs.open_rows(tuple(BLENDSHAPE_NAMES) if s.blendshapes else None)
        except ValueError as exc:
            raise PipelineError(str(exc)) from None
        n = s.queue_size
        # A live source keeps one frame in front of the tracker (the newest); files block.
        frames: StageQueue[Frame] = StageQueue(s.capture.live_buffer if spec.is_live or s.realtime else n, self._abort)
        capture = Capture(
            spec, s, frames, stats=self._stats, events=self._events, stop=self._stop_req, paused=self._paused
        )
        return _Wiring(models, capture, frames, StageQueue(n, self._abort), StageQueue(n, self._abort),
                       StageQueue(n, self._abort))

    def stop(self, timeout: float = 10.0, abort: threading.Event | None = None) -> None:
        """Stop reading, let queued frames finish, close the sinks (files playable), join threads.

        If the stages do not finish within `timeout` seconds, or as soon as `abort` is set (the
        CLI's second Ctrl+C), queued frames are dropped; the sinks are still closed properly and
        the stage threads joined, so no thread is killed at interpreter exit in the middle of a
        write. Safe to call more than once and from any thread but the pipeline's own callbacks.
        """
        if not self._started:
            return
        self._stop_req.set()
        self._paused.clear()
        if self._wiring is not None and self._wiring.capture.spec.is_live:
            # A live source has nothing left to finish reading: end its queue now, so the drain
            # (and the files) do not wait for a read blocked on a stalled stream.
            self._wiring.frames.close()
        if not self._drained(timeout, abort):
            if abort is not None and abort.is_set():
                log.warning("aborting: dropping queued frames; closing the files")
            else:
                log.warning("pipeline did not drain within %.1f s; dropping queued frames", timeout)
            self._abort.set()
            if self._wiring is not None:
                self._wiring.frames.close()  # in case the capture thread is stuck in a blocking read
            self._finished.wait(max(2.0, timeout / 4))
        for t in self._threads:
            t.join(timeout=1.0)
        capture = self._threads[0] if self._threads else None
        if capture is not None and capture.is_alive() and self._wiring is not None and self._wiring.capture.spec.is_live:
            # Blocked in a read of a stalled stream: it returns within capture.stall_timeout_s. The
            # files are closed already; waiting keeps the thread out of native code at exit.
            wait_s = self.settings.capture.stall_timeout_s + 1.0
            log.info("waiting up to %.0f s for the source's blocked read to return", wait_s)
            capture.join(timeout=wait_s)
        self._close_models()
        _RUNNING.discard(self)

    def _drained(self, timeout: float, abort: threading.Event | None) -> bool:
        """Wait up to `timeout` for the run to finish; False at once when `abort` is set."""
        if abort is None:
            return self._finished.wait(timeout)
        end = time.monotonic() + timeout
        while not abort.is_set():
            left = end - time.monotonic()
            if left <= 0:
                return self._finished.is_set()
            if self._finished.wait(min(0.05, left)):
                return True
        return self._finished.is_set()

    def _close_models(self) -> None:
        """Close the tracker and the classifier, unless a stage thread still uses one (stuck)."""
        if self._models is None:
            return
        alive = {t.name for t in self._threads if t.is_alive()}
        stuck = "edgefer-track" in alive or "edgefer-classify" in alive
        self._models.close(tracker="edgefer-track" not in alive, classifier="edgefer-classify" not in alive)
        if not stuck:
            self._models = None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run finished (end of file, stopped, or source given up); True if so."""
        return self._finished.wait(timeout)

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    @property
    def running(self) -> bool:
        return self._started and not self._finished.is_set()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- live controls (any thread) ------------------------------------------------------------
    def pause(self) -> None:
        """Hold the stream: files stop reading; live sources keep reading but discard frames."""
        if self.running and not self._paused.is_set():
            self._paused.set()
            self._stats.state = "paused"
            self._events.emit("status", "pipeline", "paused")

    def resume(self) -> None:
        if self._paused.is_set():
            self._paused.clear()
            if not self._finished.is_set():
                self._stats.state = "running"
            self._events.emit("status", "pipeline", "resumed")

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def start_recording(self, path: str | Path) -> None:
        """Record the annotated video to `path` from the next frame on (replacing any recording).

        Failures (folder not writable, disk full, codec missing) arrive as an "error" event
        from the sink stage naming the path, and `recording` becomes None again.
        """
        with self._lock:
            running = self.running
            target = self._recording.start(path, running=running)
            if not running:
                self.settings.record.path = target  # picked up by start()

    def stop_recording(self, timeout: float = 5.0) -> None:
        """Finish the current recording (the file is closed and playable when this returns)."""
        with self._lock:
            running = self.running
            if not running:
                self.settings.record.path = None
        self._recording.stop(running=running, timeout=timeout)

    @property
    def recording(self) -> Path | None:
        """The path being recorded (as asked; segments add _000, _001, ...), or None."""
        return self._recording.path

    def recording_files(self) -> list[str]:
        """Every video file written so far in this run (finished segments included)."""
        return self._recording.files()

    @property
    def live(self) -> LiveSettings:
        """The live settings in force (heatmap, opacity, smoothing, max faces)."""
        return self._work.live

    def set_live(self, live: LiveSettings) -> None:
        """Apply every live setting at once; each applies from the next frame."""
        self._work.set_live(live)

    def set_heatmap(self, mode: HeatmapMode, opacity: float | None = None) -> None:
        """Switch the overlay ("attention", "cam" or "off") and its opacity in [0, 1]."""
        self._work.change_live(heatmap=mode, **({} if opacity is None else {"opacity": opacity}))

    @property
    def heatmap(self) -> tuple[HeatmapMode, float]:
        live = self._work.live
        return live.heatmap, live.opacity

    def set_smoothing(self, strength: float) -> None:
        """EMA strength in [0, 1) (0 = raw probabilities); applies from the next frame."""
        self._work.change_live(smoothing=strength)

    def set_max_faces(self, n: int) -> None:
        """At most `n` faces per frame (the largest are kept)."""
        self._work.change_live(max_faces=n)

    def stats(self) -> PipelineStats:
        """A live snapshot: fps, per-stage p50/p95 latency, dropped frames, counts, outputs."""
        return self._stats.snapshot(self._outputs.files())

    def events(self) -> list[PipelineEvent]:
        """The most recent events (up to 256), oldest first."""
        return self._events.events()

    def _source_fps(self) -> float | None:
        return self._wiring.capture.fps if self._wiring is not None else None

    # -- stage threads -------------------------------------------------------------------------
    def _guarded(self, name: StageName, loop: Callable[[], None], w: _Wiring) -> None:
        """Run a stage loop; an unexpected crash is an error event and ends the run cleanly."""
        try:
            loop()
        except Exception as exc:  # noqa: BLE001 - reported, and the other stages wind down
            log.exception("stage %s crashed", name)
            self._events.emit("error", name, f"stage crashed: {type(exc).__name__}: {exc}")
            self._stop_req.set()
            self._abort.set()
            outputs: dict[StageName, StageQueue[Any]] = {
                "capture": w.frames, "track": w.tracked, "classify": w.classified, "render": w.rendered}
            if name == "sink":
                self._finish()
            else:
                outputs[name].close()  # the stages behind it drain and finish

    def _stage(self, name: StageName, q_in: StageQueue[In], q_out: StageQueue[Out], work: Callable[[In], Out],
               before: Callable[[], None] | None = None) -> None:
        """The loop of track, classify and render: take, work (timed), hand on; close when done."""
        if before is not None:
            before()
        for stamped in q_in.items():
            t0 = time.perf_counter()
            out = work(stamped.item)
            self._stats.stage_time(name, time.perf_counter() - t0)
            if not q_out.put(Stamped(out, stamped.t_capture)):
                break
        q_out.close()

    def _sink_loop(self, w: _Wiring) -> None:
        try:
            self._recording.begin()
            for stamped in w.rendered.items(between=self._recording.serve):
                t0 = time.perf_counter()
                self._outputs.write(stamped.item)
                self._stats.stage_time("sink", time.perf_counter() - t0)
                self._stats.frame_out(len(stamped.item.predictions), time.perf_counter() - stamped.t_capture)
        finally:
            self._recording.serve()
            self._finish()

    def _finish(self) -> None:
        if self._finished.is_set():
            return
        self._work.report_totals()
        self._outputs.close()
        self._stats.state = "finished"
        st = self._stats.snapshot(self._outputs.files())
        self._events.emit("finished", "pipeline", f"{st.frames_processed} frame(s) processed, "
                          f"{st.frames_dropped} dropped, {st.read_errors} read error(s)")
        self._finished.set()


#: Pipelines started and not yet stopped. At interpreter exit (a script that ends without `stop()`,
#: an uncaught exception) they are stopped before the stage threads, which are daemon threads, are
#: killed: a recording killed in the middle of a write loses its index (or, in native code, the
#: process aborts with "FATAL: exception not rethrown"). atexit runs while daemon threads still run.
_RUNNING: weakref.WeakSet[Pipeline] = weakref.WeakSet()


@atexit.register
def _stop_running_pipelines() -> None:
    for pipeline in list(_RUNNING):
        log.warning("the interpreter is exiting while a pipeline runs: stopping it (files closed)")
        pipeline.stop(timeout=2.0)


def run_pipeline(
    settings: PipelineSettings,
    on_result: Callable[[FrameResult], None] | None = None,
    on_event: Callable[[PipelineEvent], None] | None = None,
    stop_event: threading.Event | None = None,
    on_created: Callable[[Pipeline], None] | None = None,
    abort_event: threading.Event | None = None,
) -> PipelineStats:
    """Run to the end (or until `stop_event` is set, or q/Esc in the window) and return the stats.

    `abort_event` (the CLI's second Ctrl+C) cuts the drain after a stop short: queued frames are
    dropped, the files are still closed and the threads joined (`Pipeline.stop`).

    Without `settings.headless` the newest annotated frame is shown in an OpenCV window from
    this (the calling) thread, which is what OpenCV's HighGUI expects; the sink thread leaves
    each result in a `Mailbox`, so a slow window skips frames instead of queueing them.
    """
    display = None if settings.headless else Display.open_or_none(settings.window_name)
    newest: Mailbox[FrameResult] = Mailbox()

    def _result(result: FrameResult) -> None:
        if display is not None:
            newest.put(result)
        if on_result is not None:
            on_result(result)

    pipeline = Pipeline(settings, on_result=_result, on_event=on_event)
    if on_created is not None:  # e.g. the remote outputs, which read its stats while it runs
        on_created(pipeline)
    try:
        pipeline.start()
        while not pipeline.wait(0.02 if display else 0.2):
            if stop_event is not None and stop_event.is_set():
                break
            if display is not None:
                res = newest.take()
                if res is not None and res.annotated is not None:
                    display.show(res.annotated)
                if display.poll_quit():
                    break
    finally:
        pipeline.stop(abort=abort_event)
        if display is not None:
            display.close()
    return pipeline.stats()
