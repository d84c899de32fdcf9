"""The recording state machine: what the user asked to record and what the sink thread writes.

The user starts and stops recordings from any thread (the window's button, `edgefer run
--record`), but the video file is opened, written and closed on the sink thread only, where the
frames are. So requests go through a queue that the sink works off between frames. A started
recording is opened at the next frame, because only then are the frame size and the source's
frame rate known; a path that cannot be written is reported at that moment, as an "error" event,
and the recording is dropped while the rest of the run goes on. `stop()` returns once the file is
closed and playable.

States as the user sees them: `path` is the recording asked for (None: not recording). On the
sink thread: idle -> requested (`_target`) -> open (`_recorder`) -> idle, with every file written
listed in `files()` (segments included).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from edgefer.pipeline.eventlog import EventLog
from edgefer.pipeline.settings import RecordSettings
from edgefer.pipeline.sinkbase import SinkError, first_free_run, run_path
from edgefer.pipeline.video import VideoRecorder, record_path
from edgefer.types import FrameResult

#: Frame rate used for recordings of live sources that do not report one.
LIVE_FALLBACK_FPS = 30.0

_Action = Literal["start", "stop"]


class Recording:
    """Requests from any thread; `begin`, `serve`, `write` and `close` from the sink thread only."""

    def __init__(self, settings: RecordSettings, events: EventLog, source_fps: Callable[[], float | None]) -> None:
        self.settings = settings
        self._events = events
        self._source_fps = source_fps
        self._lock = threading.Lock()
        self._requests: deque[tuple[_Action, Path | None, threading.Event]] = deque()
        self._asked: Path | None = record_path(settings.path, settings.container) if settings.path else None
        self._recorder: VideoRecorder | None = None
        self._target: Path | None = None  # asked for, opened at the next frame
        self._files: list[str] = []

    # -- any thread ---------------------------------------------------------------------------
    @property
    def path(self) -> Path | None:
        """The path being recorded (as asked; segments add _000, _001, ...), or None."""
        return self._asked

    def files(self) -> list[str]:
        """Every video file written so far (finished segments included)."""
        with self._lock:
            return list(self._files)

    def rename(self, path: Path) -> None:
        """Before the run starts: record to `path` instead (a restart's run number)."""
        with self._lock:
            self._asked = path
            self.settings.path = path

    def start(self, path: str | Path, *, running: bool) -> Path:
        """Record to `path` from the next frame (replacing any recording); the path with its
        container suffix, numbered when a file of that name exists (`OUT-2.mp4`: an earlier
        recording is never overwritten). Before the run starts, it is what `begin` will open."""
        target = record_path(path, self.settings.container)
        if running:
            target = run_path(target, first_free_run([(target, self.settings.segment_seconds is not None)]))
        with self._lock:
            self._asked = target
            if running:
                self._requests.append(("start", target, threading.Event()))
        return target

    def stop(self, *, running: bool, timeout: float = 5.0) -> None:
        """Finish the recording; while running, wait (up to `timeout`) until the file is closed."""
        with self._lock:
            self._asked = None
            if not running:
                return
            done = threading.Event()
            self._requests.append(("stop", None, done))
        done.wait(timeout)

    # -- sink thread --------------------------------------------------------------------------
    def begin(self) -> None:
        """The sink thread starts: a recording asked for before the run opens at its first frame."""
        with self._lock:
            initial = self._asked
            if initial is not None:
                self._requests.appendleft(("start", initial, threading.Event()))

    def serve(self) -> None:
        """Act on the queued requests: close what is open, remember what to open next."""
        while True:
            with self._lock:
                if not self._requests:
                    return
                action, path, done = self._requests.popleft()
            self.close()
            # The file is opened at the next frame (its size and the source's frame rate are
            # known by then); an unwritable path is reported at that moment.
            self._target = path if action == "start" else None
            done.set()

    def write(self, result: FrameResult) -> None:
        """Write the annotated frame to the open recording (opening a requested one first)."""
        if self._recorder is None and self._target is not None:
            target, self._target = self._target, None
            self._open(target)
        rec = self._recorder
        if rec is None or result.annotated is None:
            return
        try:
            n_files = len(rec.files)
            rec.write(result.annotated, result.frame.timestamp_s)
            if len(rec.files) != n_files:
                with self._lock:
                    self._files.append(str(rec.files[-1]))
        except (SinkError, OSError) as exc:
            self._forget(rec.dropped)
            self._failed(exc)

    def close(self, quiet: bool = False) -> None:
        """Close the open recording (its file is playable afterwards); says what was saved."""
        rec, self._recorder = self._recorder, None
        if rec is None:
            return
        try:
            rec.close()
        except Exception as exc:  # noqa: BLE001 - a failed close is reported, the run goes on
            self._forget(rec.dropped)
            if not quiet:
                self._events.emit("error", "record", f"closing {rec.base} failed: {exc}")
            return
        if rec.frames_written and not quiet:
            saved = ", ".join(str(f) for f in rec.files)
            self._events.emit("status", "record", f"saved {rec.frames_written} frame(s) to {saved}")

    def _forget(self, dropped: list[Path]) -> None:
        """A file of which nothing played was removed: it is no output."""
        gone = {str(p) for p in dropped}
        with self._lock:
            self._files = [f for f in self._files if f not in gone]

    def _open(self, path: Path) -> None:
        r = self.settings
        fps = r.fps or self._source_fps() or LIVE_FALLBACK_FPS
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
        except (SinkError, ValueError) as exc:
            self._failed(exc)
            return
        rec = self._recorder
        if rec.fallback_reason is not None:  # `auto` without H.264: the window shows this too
            self._events.emit("warning", "record", f"recording {rec.base}: {rec.fallback_reason}")
        self._events.emit("status", "record", f"recording to {rec.base} as {rec.format}")

    def _failed(self, exc: Exception) -> None:
        self._events.emit("error", "record", f"{exc}; recording stopped, the rest goes on")
        with self._lock:
            self._asked = None
        self.close(quiet=True)
