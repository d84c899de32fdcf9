"""The threaded real-time pipeline: capture -> track -> classify -> render -> sinks.

Threads live here and nowhere else. Each stage runs on its own thread and hands typed records
(`Frame`, `TrackedFrame`, `FrameResult`) to the next through a small bounded queue, so memory is
bounded and a slow stage slows (files) or thins (live sources) the stream instead of piling it
up. A live source keeps only the newest frame in front of the tracker: a stale frame is replaced
and counted as dropped, so what you see is at most a few frames old. A file is processed frame by
frame as fast as the stages allow, or paced at its own frame rate with `realtime` (then it
behaves like a live source and drops stale frames).

The public API (driven by the PyQt6 UI and by `edgefer run`):

    p = Pipeline(settings, on_result=..., on_event=...)
    p.start(); ...; p.stop()          # or: with Pipeline(settings) as p: p.start(); p.wait()
    p.pause(); p.resume(); p.paused
    p.start_recording(path); p.stop_recording(); p.recording
    p.set_heatmap("attention" | "cam" | "off", opacity); p.set_smoothing(s); p.set_max_faces(n)
    p.stats() -> PipelineStats; p.events() -> list[PipelineEvent]

Callbacks: `on_result(FrameResult)` is called on the sink thread for every frame that leaves the
pipeline, after it was written (`.annotated` is set; do not modify it, copy if you keep it long).
`on_event(PipelineEvent)` is called on the thread that noticed the event (capture, sink, ... or the
caller of start/stop). Both must be quick and must not call `stop()`/`wait()` themselves; an
exception in a callback is logged and ignored.

Faults are events, not exceptions: a lost camera is reopened with exponential backoff, a damaged
file is read as far as it decodes, a recording that cannot be written stops alone. Only problems
the user must fix before anything can run (missing model, missing source file, bad settings)
raise `PipelineError` from `start()`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from edgefer.pipeline.events import PipelineEvent
from edgefer.pipeline.settings import HEATMAP_MODES, PipelineSettings
from edgefer.pipeline.sinks import RowWriter, SinkError, VideoRecorder, face_rows, record_path, row_columns
from edgefer.pipeline.smoothing import ProbabilitySmoother
from edgefer.pipeline.sources import FrameReader, SourceError, SourceSpec, backoff_delays
from edgefer.pipeline.stages import classify_frame, keep_largest
from edgefer.pipeline.stats import PipelineStats, StatsCollector
from edgefer.types import FrameResult, TrackedFrame

log = logging.getLogger(__name__)

__all__ = ["Pipeline", "PipelineError", "PipelineEvent", "PipelineSettings", "PipelineStats", "run_pipeline"]

_END = object()  # end-of-stream marker flowing through the queues
#: Per stage, the first this-many errors are reported as events; after that every 100th.
_ERROR_EVENTS_IN_FULL = 5
#: Frames a reconnected live source must deliver before its reconnection backoff starts over.
_STABLE_FRAMES = 10
#: Frame rate used for recordings of live sources that do not report one.
_LIVE_FALLBACK_FPS = 30.0


class PipelineError(RuntimeError):
    """A problem that prevents the pipeline from starting (the message says what to fix)."""


@dataclass
class _Item:
    """What flows between stages: the stage record plus the time its frame was captured."""

    payload: Any
    t_capture: float


class Pipeline:
    """Real-time FER over one source; see the module docstring for the API and threading."""

    def __init__(
        self,
        settings: PipelineSettings,
        on_result: Callable[[FrameResult], None] | None = None,
        on_event: Callable[[PipelineEvent], None] | None = None,
    ) -> None:
        self.settings = settings.model_copy(deep=True)
        self._on_result = on_result
        self._on_event = on_event
        self._lock = threading.RLock()
        self._stats = StatsCollector()
        self._events: deque[PipelineEvent] = deque(maxlen=256)
        self._error_counts: dict[str, int] = {}
        self._threads: list[threading.Thread] = []
        self._started = False
        self._starting = False
        self._stop_req = threading.Event()
        self._abort = threading.Event()
        self._finished = threading.Event()
        self._paused = threading.Event()
        self._end_sent = False
        self._heatmap = (self.settings.heatmap.mode, float(self.settings.heatmap.opacity))
        self._smoother = ProbabilitySmoother(self.settings.smoothing)
        self._max_faces = int(self.settings.max_faces)
        self._tracker_faces = int(self.settings.max_faces)
        self._rec_requests: deque[tuple[str, Path | None, threading.Event]] = deque()
        rp = self.settings.record.path
        self._recording: Path | None = record_path(rp, self.settings.record.container) if rp else None
        self._recorder: VideoRecorder | None = None
        self._rec_target: Path | None = None  # recording asked for, opened at the next frame
        self._rec_files: list[str] = []
        self._rows: RowWriter | None = None
        self._rows_path: Path | None = None
        self._source_fps: float | None = None
        self._frames_at_connect = 0  # reader frame count when the live source last (re)connected
        self._last_attempt = 0  # reconnection attempts of the current outage
        self._spec: SourceSpec | None = None
        self._classifier: Any = None
        self._aligner: Any = None
        self._tracker: Any = None
        self._blendshape_names: tuple[str, ...] | None = None
        self._cam_warned = False
        self._q: list[queue.Queue] = []

    # ------------------------------------------------------------------------------------
    # lifecycle
    # ------------------------------------------------------------------------------------
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
            self._prepare()
        except BaseException:
            self._close_models()  # nothing runs yet: release what was loaded; start() may be retried
            with self._lock:
                self._starting = False
            raise
        s = self.settings
        spec = self._spec
        assert spec is not None
        live = spec.is_live or s.realtime
        # A live source keeps one frame in front of the tracker (the newest); files block.
        self._q = [queue.Queue(maxsize=1 if live else s.queue_size)] + [queue.Queue(maxsize=s.queue_size) for _ in range(3)]
        stages: list[tuple[str, Callable[[], None]]] = [
            ("capture", self._capture_loop),
            ("track", self._track_loop),
            ("classify", self._classify_loop),
            ("render", self._render_loop),
            ("sink", self._sink_loop),
        ]
        self._stats.started()
        for name, fn in stages:
            t = threading.Thread(target=self._guarded, args=(name, fn), name=f"edgefer-{name}", daemon=True)
            self._threads.append(t)
        with self._lock:
            self._started = True
            self._starting = False
        for t in self._threads:
            t.start()
        self._emit("status", "pipeline", f"started on {spec.label} with {self._stats.model} [{self._stats.backend}]")

    def _prepare(self) -> None:
        """Everything `start` does before threads exist: parse, check, load, open the rows."""
        s = self.settings
        try:
            spec = SourceSpec.parse(
                s.source, live=s.capture.live, width=s.capture.width, height=s.capture.height, fps=s.capture.fps
            )
        except ValueError as exc:
            raise PipelineError(str(exc)) from None
        if spec.kind == "file" and "%" not in spec.uri and not Path(spec.uri).is_file():
            raise PipelineError(f"source file not found: {spec.uri}")
        self._spec = spec
        self._load_models()
        self._stats.source = spec.label
        self._stats.model = Path(getattr(self._classifier, "source", s.model or "default model")).name
        self._stats.backend = str(getattr(self._classifier, "backend_name", "?"))
        self._open_rows()

    def _load_models(self) -> None:
        s = self.settings
        from edgefer.runtime import load_classifier

        try:
            self._classifier = load_classifier(s.model, s.backend)
        except (OSError, ValueError, RuntimeError) as exc:
            raise PipelineError(f"cannot load the expression model: {exc}") from exc
        contract = self._classifier.contract
        try:
            from edgefer.align import Aligner
            from edgefer.tracking import FaceTracker

            self._aligner = Aligner(contract.framing, tuple(contract.input_size))
            self._tracker = FaceTracker(
                face_model=s.face_model, max_faces=self._tracker_faces, mode="video", blendshapes=s.blendshapes
            )
        except (OSError, ValueError, RuntimeError) as exc:
            raise PipelineError(f"cannot start the face tracker: {exc}") from exc
        if s.blendshapes:
            self._blendshape_names = _blendshape_names()
        if s.heatmap.mode == "cam" and not getattr(self._classifier, "has_cam", False):
            self._cam_warned = True
            self._emit("warning", "render", "this model has no CAM output; showing its attention map instead")

    def _open_rows(self) -> None:
        s = self.settings
        if s.csv and s.jsonl:
            raise PipelineError("give either a CSV or a JSONL output, not both")
        path, fmt = (s.csv, "csv") if s.csv else (s.jsonl, "jsonl") if s.jsonl else (None, None)
        if path is None:
            return
        try:
            self._rows = RowWriter(path, row_columns(self._blendshape_names), fmt, s.flush_seconds)
            self._rows_path = self._rows.path
        except SinkError as exc:
            self._emit("error", "rows", f"{exc}; rows will not be written, the rest goes on")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop reading, let queued frames finish, close the sinks (files playable), join threads.

        If the stages do not finish within `timeout` seconds, queued frames are dropped (the
        sinks are still closed properly). Safe to call more than once and from any thread but
        the pipeline's own callbacks.
        """
        if not self._started:
            return
        self._stop_req.set()
        self._paused.clear()
        if not self._finished.wait(timeout):
            log.warning("pipeline did not drain within %.1f s; dropping queued frames", timeout)
            self._abort.set()
            self._send_end()  # in case the capture thread is stuck in a blocking read
            self._finished.wait(max(2.0, timeout / 4))
        for t in self._threads:
            t.join(timeout=1.0)
        self._close_models()

    def _close_models(self) -> None:
        alive = {t.name for t in self._threads if t.is_alive()}
        if self._tracker is not None and "edgefer-track" not in alive:
            try:
                self._tracker.close()
            except Exception:  # noqa: BLE001 - closing must not raise
                log.debug("tracker close failed", exc_info=True)
            self._tracker = None
        if self._classifier is not None and "edgefer-classify" not in alive:
            try:
                self._classifier.close()
            except Exception:  # noqa: BLE001
                log.debug("classifier close failed", exc_info=True)
            self._classifier = None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run finished (end of file, stopped, or source given up); True if so."""
        return self._finished.wait(timeout)

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    @property
    def running(self) -> bool:
        return self._started and not self._finished.is_set()

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------
    # live controls (any thread)
    # ------------------------------------------------------------------------------------
    def pause(self) -> None:
        """Hold the stream: files stop reading; live sources keep reading but discard frames."""
        if self.running and not self._paused.is_set():
            self._paused.set()
            self._stats.state = "paused"
            self._emit("status", "pipeline", "paused")

    def resume(self) -> None:
        if self._paused.is_set():
            self._paused.clear()
            if not self._finished.is_set():
                self._stats.state = "running"
            self._emit("status", "pipeline", "resumed")

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def start_recording(self, path: str | Path) -> None:
        """Record the annotated video to `path` from the next frame on (replacing any recording).

        Failures (folder not writable, disk full, codec missing) arrive as an "error" event
        from the sink stage naming the path, and `recording` becomes None again.
        """
        target = record_path(path, self.settings.record.container)
        with self._lock:
            self._recording = target
            if self._started and not self._finished.is_set():
                self._rec_requests.append(("start", target, threading.Event()))
            else:
                self.settings.record.path = target  # picked up by start()

    def stop_recording(self, timeout: float = 5.0) -> None:
        """Finish the current recording (the file is closed and playable when this returns)."""
        with self._lock:
            self._recording = None
            if not (self._started and not self._finished.is_set()):
                self.settings.record.path = None
                return
            done = threading.Event()
            self._rec_requests.append(("stop", None, done))
        done.wait(timeout)

    @property
    def recording(self) -> Path | None:
        """The path being recorded (as asked; segments add _000, _001, ...), or None."""
        return self._recording

    def recording_files(self) -> list[str]:
        """Every video file written so far in this run (finished segments included)."""
        with self._lock:
            return list(self._rec_files)

    def set_heatmap(self, mode: str, opacity: float | None = None) -> None:
        """Switch the overlay ("attention", "cam" or "off") and its opacity in [0, 1]."""
        if mode not in HEATMAP_MODES:
            raise ValueError(f"heatmap mode must be one of {HEATMAP_MODES}, not {mode!r}")
        op = self._heatmap[1] if opacity is None else float(opacity)
        if not 0.0 <= op <= 1.0:
            raise ValueError(f"heatmap opacity must be in [0, 1], got {opacity}")
        if mode == "cam" and self._classifier is not None and not getattr(self._classifier, "has_cam", False):
            if not self._cam_warned:
                self._cam_warned = True
                self._emit("warning", "render", "this model has no CAM output; showing its attention map instead")
        self._heatmap = (mode, op)

    @property
    def heatmap(self) -> tuple[str, float]:
        return self._heatmap

    def set_smoothing(self, strength: float) -> None:
        """EMA strength in [0, 1) (0 = raw probabilities); applies from the next frame."""
        self._smoother.strength = strength  # validates

    def set_max_faces(self, n: int) -> None:
        """At most `n` faces per frame (the largest are kept)."""
        n = int(n)
        if not 1 <= n <= 32:
            raise ValueError(f"max faces must be in 1..32, got {n}")
        self._max_faces = n

    def stats(self) -> PipelineStats:
        """A live snapshot: fps, per-stage p50/p95 latency, dropped frames, counts, outputs."""
        return self._stats.snapshot(self._outputs())

    def events(self) -> list[PipelineEvent]:
        """The most recent events (up to 256), oldest first."""
        with self._lock:
            return list(self._events)

    def _outputs(self) -> tuple[str, ...]:
        with self._lock:
            out = list(self._rec_files)
        if self._rows_path is not None:
            out.append(str(self._rows_path))
        return tuple(out)

    # ------------------------------------------------------------------------------------
    # plumbing
    # ------------------------------------------------------------------------------------
    def _emit(self, kind: str, stage: str, message: str) -> None:
        if kind == "error":
            n = self._error_counts.get(stage, 0) + 1
            self._error_counts[stage] = n
            self._stats.count("errors")
            if n > _ERROR_EVENTS_IN_FULL and n % 100:
                log.debug("%s error #%d: %s", stage, n, message)
                return
            if n > _ERROR_EVENTS_IN_FULL:
                message = f"{message} ({n} errors in this stage so far)"
        elif kind == "warning":
            self._stats.count("warnings")
        event = PipelineEvent(kind, stage, message)  # type: ignore[arg-type]
        level = {"error": logging.ERROR, "warning": logging.WARNING}.get(kind, logging.INFO)
        log.log(level, "%s: %s", stage, message)
        with self._lock:
            self._events.append(event)
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:  # noqa: BLE001 - a callback must never kill a stage
                log.exception("on_event callback failed")

    def _guarded(self, name: str, fn: Callable[[], None]) -> None:
        """Run a stage loop; an unexpected crash is an error event and ends the run cleanly."""
        try:
            fn()
        except Exception as exc:  # noqa: BLE001
            log.exception("stage %s crashed", name)
            self._emit("error", name, f"stage crashed: {type(exc).__name__}: {exc}")
            self._stop_req.set()
            self._abort.set()
            if name == "sink":
                self._finish()
            else:
                idx = ("capture", "track", "classify", "render").index(name)
                self._put_end(self._q[idx])

    def _put(self, q: queue.Queue, item: Any) -> bool:
        """Blocking put that gives up when the run is aborted (returns False then)."""
        while True:
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                if self._abort.is_set():
                    return False

    def _put_end(self, q: queue.Queue) -> None:
        """Deliver the end marker even into a full queue (drops queued items when aborting)."""
        while True:
            try:
                q.put(_END, timeout=0.1)
                return
            except queue.Full:
                if self._abort.is_set():
                    try:
                        q.get_nowait()
                    except queue.Empty:
                        pass

    def _send_end(self) -> None:
        with self._lock:
            if self._end_sent:
                return
            self._end_sent = True
        self._put_end(self._q[0])

    def _offer_latest(self, q: queue.Queue, item: _Item) -> None:
        """Live sources: replace a frame the tracker has not taken yet (counted as dropped)."""
        while True:
            try:
                q.put_nowait(item)
                return
            except queue.Full:
                try:
                    old = q.get_nowait()
                except queue.Empty:
                    continue
                if old is _END:  # never drop the end marker
                    q.put(old)
                    return
                self._stats.count("frames_dropped")

    def _items(self, q: queue.Queue) -> Iterator[_Item]:
        """Items of a queue until the end marker; while aborting, queued items are skipped."""
        while True:
            item = q.get()
            if item is _END:
                return
            if self._abort.is_set():
                continue
            yield item

    # ------------------------------------------------------------------------------------
    # stages
    # ------------------------------------------------------------------------------------
    def _capture_loop(self) -> None:
        s = self.settings
        spec = self._spec
        assert spec is not None
        reader = FrameReader(
            spec,
            loop=s.capture.loop,
            max_read_failures=s.capture.max_read_failures,
            width=s.capture.width,
            height=s.capture.height,
            fps=s.capture.fps,
        )
        out = self._q[0]
        live_queue = spec.is_live or s.realtime
        try:
            if not self._open_source(reader, spec):
                return
            pace_wall: float | None = None
            pace_ts = 0.0
            last_errors = 0
            while not self._stop_req.is_set():
                if self._paused.is_set():
                    if spec.is_live:
                        # keep the device buffer fresh; nothing is queued
                        if reader.read() is None and not self._reconnect(reader, spec):
                            break
                    else:
                        self._stop_req.wait(0.05)
                    pace_wall = None
                    continue
                t0 = time.perf_counter()
                frame = reader.read()
                if reader.counters.read_errors != last_errors:
                    self._stats.count("read_errors", reader.counters.read_errors - last_errors)
                    last_errors = reader.counters.read_errors
                if frame is None:
                    if spec.is_live and not self._stop_req.is_set():
                        if self._reconnect(reader, spec):
                            continue
                    break
                self._stats.stage_time("capture", time.perf_counter() - t0)
                self._stats.count("frames_read")
                if s.realtime and not spec.is_live:
                    if pace_wall is None:
                        pace_wall, pace_ts = time.monotonic(), frame.timestamp_s
                    delay = pace_wall + (frame.timestamp_s - pace_ts) - time.monotonic()
                    if delay > 0 and self._stop_req.wait(delay):
                        break
                item = _Item(frame, time.perf_counter())
                if live_queue:
                    self._offer_latest(out, item)
                elif not self._put(out, item):
                    break
                if s.max_frames is not None and reader.counters.frames >= s.max_frames:
                    break
            self._report_file_end(reader, spec)
        finally:
            reader.close()
            self._send_end()

    def _open_source(self, reader: FrameReader, spec: SourceSpec) -> bool:
        try:
            reader.open()
        except SourceError as exc:
            if not spec.is_live:
                self._emit("error", "capture", str(exc))
                return False
            self._emit("warning", "capture", f"{exc}; retrying")
            if not self._reconnect(reader, spec, announce=False):
                return False
        self._source_fps = reader.fps
        return True

    def _reconnect(self, reader: FrameReader, spec: SourceSpec, announce: bool = True) -> bool:
        """Reopen a lost live source with capped exponential backoff; False when given up/stopped.

        A connection that delivered fewer than `_STABLE_FRAMES` frames before dropping again does
        not reset the backoff: a flapping stream is retried ever more slowly, not in a tight loop.
        """
        rc = self.settings.reconnect
        reader.close()
        if announce:
            self._emit("warning", "capture", f"lost {spec.label}; reconnecting")
        stable = reader.counters.frames - self._frames_at_connect >= _STABLE_FRAMES
        first = 1 if stable else self._last_attempt + 1
        delays = backoff_delays(rc.initial_delay_s, rc.max_delay_s)
        for _ in range(first - 1):
            next(delays)
        for attempt, delay in enumerate(delays, start=first):
            self._last_attempt = attempt
            if rc.max_attempts is not None and attempt > rc.max_attempts:
                self._emit("error", "capture", f"gave up on {spec.label} after {rc.max_attempts} reconnection attempts")
                return False
            self._emit("status", "capture", f"reconnecting to {spec.label} in {delay:.1f} s (attempt {attempt})")
            if self._stop_req.wait(delay):
                return False
            try:
                reader.open()
            except SourceError as exc:
                log.info("reconnect attempt %d failed: %s", attempt, exc)
                continue
            self._stats.count("reconnects")
            self._frames_at_connect = reader.counters.frames
            self._source_fps = reader.fps or self._source_fps
            self._emit("status", "capture", f"reconnected to {spec.label}")
            return True
        return False  # pragma: no cover - the generator is infinite

    def _report_file_end(self, reader: FrameReader, spec: SourceSpec) -> None:
        c = reader.counters
        if spec.is_live:
            return
        if c.frames == 0 and not self._stop_req.is_set():
            self._emit("error", "capture", f"no frame could be decoded from {spec.label}")
        elif c.damaged:
            total = f" of {reader.frame_count} announced" if reader.frame_count else ""
            self._emit(
                "warning",
                "capture",
                f"{spec.label} is damaged or truncated: {c.frames} frame(s){total} decoded, "
                f"{c.read_errors} failed read(s); every decodable frame was processed",
            )
        elif c.read_errors:
            self._emit("warning", "capture", f"{spec.label}: {c.read_errors} frame(s) could not be decoded and were skipped")

    def _track_loop(self) -> None:
        q_in, q_out = self._q[0], self._q[1]
        last_ms = -1
        for item in self._items(q_in):
            frame = item.payload
            t0 = time.perf_counter()
            want = self._max_faces
            if want > self._tracker_faces:
                self._rebuild_tracker(want)
            ts_ms = max(int(round(frame.timestamp_s * 1000.0)), last_ms + 1)
            last_ms = ts_ms
            try:
                faces = self._tracker.process(frame.image, ts_ms)
            except Exception as exc:  # noqa: BLE001 - one bad frame must not end the run
                self._emit("error", "track", f"frame {frame.index}: {type(exc).__name__}: {exc}")
                faces = []
            faces = keep_largest(list(faces), want)
            self._stats.stage_time("track", time.perf_counter() - t0)
            if not self._put(q_out, _Item(TrackedFrame(frame, faces), item.t_capture)):
                break
        self._put_end(q_out)

    def _rebuild_tracker(self, n: int) -> None:
        """Raise the landmarker's face limit: a fresh landmarker, track ids keep counting up."""
        old = self._tracker_faces
        try:
            self._tracker.max_faces = n
            self._tracker.reset()
        except Exception as exc:  # noqa: BLE001
            self._emit("error", "track", f"cannot raise max faces to {n}: {exc}; staying at {old}")
            self._max_faces = old
            self._tracker.max_faces = old
            self._tracker.reset()
            return
        self._tracker_faces = n
        self._emit("status", "track", f"tracking up to {n} faces")

    def _classify_loop(self) -> None:
        q_in, q_out = self._q[1], self._q[2]
        for item in self._items(q_in):
            tracked: TrackedFrame = item.payload
            t0 = time.perf_counter()
            try:
                result = classify_frame(tracked, self._aligner, self._classifier, self._smoother)
            except Exception as exc:  # noqa: BLE001
                self._emit("error", "classify", f"frame {tracked.frame.index}: {type(exc).__name__}: {exc}")
                result = FrameResult(frame=tracked.frame, predictions=[])
            self._stats.stage_time("classify", time.perf_counter() - t0)
            if not self._put(q_out, _Item(result, item.t_capture)):
                break
        self._put_end(q_out)

    def _render_loop(self) -> None:
        from edgefer import render

        render.warmup()
        q_in, q_out = self._q[2], self._q[3]
        crop_size = tuple(self._classifier.contract.input_size)
        colormap = self.settings.heatmap.colormap
        for item in self._items(q_in):
            result: FrameResult = item.payload
            t0 = time.perf_counter()
            mode, opacity = self._heatmap
            status = None
            if self.settings.show_fps:
                status = f"{self._stats.recent_fps():.1f} fps  {len(result.predictions)} face(s)"
            try:
                result.annotated = render.render_frame(
                    result, crop_size, mode=mode, opacity=opacity, colormap=colormap, status=status
                )
            except Exception as exc:  # noqa: BLE001 - the raw frame still goes out
                self._emit("error", "render", f"frame {result.frame.index}: {type(exc).__name__}: {exc}")
                result.annotated = result.frame.image.copy()
            self._stats.stage_time("render", time.perf_counter() - t0)
            if not self._put(q_out, item):
                break
        self._put_end(q_out)

    # -- sinks ------------------------------------------------------------------------------
    def _sink_loop(self) -> None:
        q_in = self._q[3]
        try:
            with self._lock:
                initial = self._recording
            if initial is not None:
                self._rec_requests.appendleft(("start", initial, threading.Event()))
            while True:
                self._handle_record_requests()
                try:
                    item = q_in.get(timeout=0.1)
                except queue.Empty:
                    continue
                if item is _END:
                    break
                if self._abort.is_set():
                    continue
                result: FrameResult = item.payload
                t0 = time.perf_counter()
                self._write_video(result)
                self._write_rows(result)
                if self._on_result is not None:
                    try:
                        self._on_result(result)
                    except Exception:  # noqa: BLE001
                        log.exception("on_result callback failed")
                self._stats.stage_time("sink", time.perf_counter() - t0)
                self._stats.frame_out(len(result.predictions), time.perf_counter() - item.t_capture)
        finally:
            self._handle_record_requests()
            self._finish()

    def _handle_record_requests(self) -> None:
        while self._rec_requests:
            try:
                action, path, done = self._rec_requests.popleft()
            except IndexError:
                return
            self._close_recorder()
            # The file is opened at the next frame (its size and the source's frame rate are
            # known by then); an unwritable path is reported at that moment.
            self._rec_target = path if action == "start" else None
            done.set()

    def _open_recorder(self, path: Path) -> None:
        r = self.settings.record
        fps = r.fps or self._source_fps or _LIVE_FALLBACK_FPS
        try:
            self._recorder = VideoRecorder(
                path,
                fps,
                codec=r.codec,
                container=r.container,
                segment_seconds=r.segment_seconds,
                encoder=r.encoder,
                gst_encoder=r.gst_encoder,
                bitrate_kbps=r.bitrate_kbps,
                min_free_mb=r.min_free_mb,
            )
            self._emit("status", "record", f"recording to {self._recorder.base}")
        except (SinkError, ValueError) as exc:
            self._recording_failed(exc)

    def _recording_failed(self, exc: Exception) -> None:
        self._emit("error", "record", f"{exc}; recording stopped, the rest goes on")
        with self._lock:
            self._recording = None
        self._close_recorder(quiet=True)

    def _close_recorder(self, quiet: bool = False) -> None:
        rec, self._recorder = self._recorder, None
        if rec is None:
            return
        try:
            rec.close()
        except Exception as exc:  # noqa: BLE001
            if not quiet:
                self._emit("error", "record", f"closing {rec.base} failed: {exc}")
        if rec.frames_written and not quiet:
            self._emit("status", "record", f"saved {rec.frames_written} frame(s) to {', '.join(str(f) for f in rec.files)}")

    def _write_video(self, result: FrameResult) -> None:
        if self._recorder is None and self._rec_target is not None:
            target, self._rec_target = self._rec_target, None
            self._open_recorder(target)
        rec = self._recorder
        if rec is None or result.annotated is None:
            return
        try:
            n_files = len(rec.files)
            rec.write(result.annotated, result.frame.timestamp_s)
            if len(rec.files) != n_files:
                with self._lock:
                    self._rec_files.append(str(rec.files[-1]))
        except (SinkError, OSError) as exc:
            self._recording_failed(exc)

    def _write_rows(self, result: FrameResult) -> None:
        if self._rows is None or not result.predictions:
            return
        try:
            self._rows.write(face_rows(result, self._blendshape_names))
        except (SinkError, OSError) as exc:
            self._emit("error", "rows", f"{exc}; rows stopped, the rest goes on")
            rows, self._rows = self._rows, None
            try:
                rows.close()
            except Exception:  # noqa: BLE001
                pass

    def _finish(self) -> None:
        if self._finished.is_set():
            return
        self._close_recorder()
        if self._rows is not None:
            rows, self._rows = self._rows, None
            try:
                rows.close()
            except SinkError as exc:
                self._emit("error", "rows", str(exc))
        self._stats.state = "finished"
        st = self._stats.snapshot(self._outputs())
        self._emit(
            "finished",
            "pipeline",
            f"{st.frames_processed} frame(s) processed, {st.frames_dropped} dropped, {st.read_errors} read error(s)",
        )
        self._finished.set()


def _blendshape_names() -> tuple[str, ...]:
    """The 52 blendshape names in MediaPipe order (the row columns with --blendshapes)."""
    from edgefer.tracking import BLENDSHAPE_NAMES

    return tuple(BLENDSHAPE_NAMES)


def run_pipeline(
    settings: PipelineSettings,
    on_result: Callable[[FrameResult], None] | None = None,
    on_event: Callable[[PipelineEvent], None] | None = None,
    stop_event: threading.Event | None = None,
) -> PipelineStats:
    """Run to the end (or until `stop_event` is set, or q/Esc in the window) and return the stats.

    Without `settings.headless` the newest annotated frame is shown in an OpenCV window from
    this (the calling) thread, which is what OpenCV's HighGUI expects.
    """
    from edgefer.pipeline.display import Display

    display = None if settings.headless else Display.open_or_none(settings.window_name)
    latest: list[FrameResult | None] = [None]

    def _result(result: FrameResult) -> None:
        if display is not None:
            latest[0] = result  # only the newest frame is shown
        if on_result is not None:
            on_result(result)

    pipeline = Pipeline(settings, on_result=_result, on_event=on_event)
    try:
        pipeline.start()
        while not pipeline.wait(0.02 if display else 0.2):
            if stop_event is not None and stop_event.is_set():
                break
            if display is not None:
                res, latest[0] = latest[0], None
                if res is not None and res.annotated is not None:
                    display.show(res.annotated)
                if display.poll_quit():
                    break
    finally:
        pipeline.stop()
        if display is not None:
            display.close()
    return pipeline.stats()
