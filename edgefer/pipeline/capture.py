"""The capture stage: open the source, read frames, pace a file, reconnect a lost live source.

This object owns everything about getting frames in, as ultralytics' stream loader owns its capture
thread: the `FrameReader`, the pacing of a file played at its own rate (`realtime`), pausing, the
reconnection of a live source with capped exponential backoff, and the report of a damaged file at
its end. It hands `Stamped[Frame]` to the tracker's queue and closes that queue when it stops, so
the stages behind it drain and finish. The runner only creates it and runs `run()` on a thread.
"""

from __future__ import annotations

import logging
import threading
import time

from edgefer.pipeline.eventlog import EventLog
from edgefer.pipeline.queues import StageQueue, Stamped
from edgefer.pipeline.settings import PipelineSettings
from edgefer.pipeline.sources import LOCAL_DEVICES, FrameReader, SourceError, SourceSpec, backoff_delays
from edgefer.pipeline.stats import StatsCollector
from edgefer.types import Frame

log = logging.getLogger(__name__)

#: Frames a reconnected live source must deliver before its reconnection backoff starts over.
STABLE_FRAMES = 10


class Capture:
    """Reads `spec` into `out` until the end, a stop request, or a live source given up."""

    def __init__(
        self,
        spec: SourceSpec,
        settings: PipelineSettings,
        out: StageQueue[Frame],
        *,
        stats: StatsCollector,
        events: EventLog,
        stop: threading.Event,
        paused: threading.Event,
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.out = out
        self._stats = stats
        self._events = events
        self._stop = stop
        self._paused = paused
        c = settings.capture
        self.reader = FrameReader(
            spec, loop=c.loop, max_read_failures=c.max_read_failures, width=c.width, height=c.height, fps=c.fps,
            stall_timeout_s=c.stall_timeout_s,
        )
        #: The source's frame rate once it is open (None when it does not say); the recording
        #: uses it.
        self.fps: float | None = None
        self._frames_at_connect = 0  # reader frame count when the live source last (re)connected
        self._last_attempt = 0  # reconnection attempts of the current outage

    @property
    def drops_stale(self) -> bool:
        """A live source (or a file paced in real time) keeps only the newest frame queued."""
        return self.spec.is_live or self.settings.realtime

    def run(self) -> None:
        """The capture thread's loop; always closes the reader and the output queue."""
        try:
            if self._open():
                self._read_loop()
                self._report_file_end()
        finally:
            self.reader.close()
            self.out.close()

    def _read_loop(self) -> None:
        s, spec, reader = self.settings, self.spec, self.reader
        pace_wall: float | None = None
        pace_ts = 0.0
        last_errors = 0
        while not self._stop.is_set():
            if self._paused.is_set():
                if spec.is_live:
                    # keep the device buffer fresh; nothing is queued
                    if reader.read() is None and not self._reconnect():
                        return
                else:
                    self._stop.wait(0.05)
                pace_wall = None
                continue
            t0 = time.perf_counter()
            frame = reader.read()
            if reader.counters.read_errors != last_errors:
                self._stats.count("read_errors", reader.counters.read_errors - last_errors)
                last_errors = reader.counters.read_errors
            if frame is None:
                if spec.is_live and not self._stop.is_set() and self._reconnect():
                    continue
                return
            self._stats.stage_time("capture", time.perf_counter() - t0)
            self._stats.count("frames_read")
            if s.realtime and not spec.is_live:
                if pace_wall is None:
                    pace_wall, pace_ts = time.monotonic(), frame.timestamp_s
                delay = pace_wall + (frame.timestamp_s - pace_ts) - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return
            item = Stamped(frame, time.perf_counter())
            if self.drops_stale:
                dropped = self.out.offer_newest(item, max_age_s=s.capture.max_lag_s)
                if dropped:
                    self._stats.count("frames_dropped", dropped)
            elif not self.out.put(item):
                return
            if s.max_frames is not None and reader.counters.frames >= s.max_frames:
                return

    def _open(self) -> bool:
        try:
            self.reader.open()
        except SourceError as exc:
            if not self.spec.is_live:
                self._events.emit("error", "capture", str(exc))
                return False
            if self.spec.kind in LOCAL_DEVICES and not self.settings.capture.wait_for_device:
                # Never opened: a wrong index or no camera at all, which waiting does not fix.
                self._events.emit("error", "capture", f"{exc}; `edgefer doctor` lists the cameras this machine "
                                  "can open (set capture.wait_for_device: true to wait for one to be plugged in)")
                return False
            self._events.emit("warning", "capture", f"{exc}; retrying")
            if not self._reconnect(announce=False):
                return False
        self.fps = self.reader.fps
        return True

    def _reconnect(self, announce: bool = True) -> bool:
        """Reopen a lost live source with capped exponential backoff; False when given up/stopped.

        A connection that delivered fewer than `STABLE_FRAMES` frames before dropping again does
        not reset the backoff: a flapping stream is retried ever more slowly, not in a tight loop.
        """
        rc, spec, reader = self.settings.reconnect, self.spec, self.reader
        reader.close()
        if announce:
            self._events.emit("warning", "capture", f"lost {spec.label}; reconnecting")
        stable = reader.counters.frames - self._frames_at_connect >= STABLE_FRAMES
        first = 1 if stable else self._last_attempt + 1
        delays = backoff_delays(rc.initial_delay_s, rc.max_delay_s)
        for _ in range(first - 1):
            next(delays)
        for attempt, delay in enumerate(delays, start=first):
            self._last_attempt = attempt
            if rc.max_attempts is not None and attempt > rc.max_attempts:
                self._events.emit("error", "capture", f"gave up on {spec.label} after {rc.max_attempts} reconnection attempts")
                return False
            self._events.emit("status", "capture", f"reconnecting to {spec.label} in {delay:.1f} s (attempt {attempt})")
            if self._stop.wait(delay):
                return False
            try:
                reader.open()
            except SourceError as exc:
                log.info("reconnect attempt %d failed: %s", attempt, exc)
                continue
            self._stats.count("reconnects")
            self._frames_at_connect = reader.counters.frames
            self.fps = reader.fps or self.fps
            self._events.emit("status", "capture", f"reconnected to {spec.label}")
            return True
        return False  # pragma: no cover - the generator is infinite

    def _report_file_end(self) -> None:
        c, spec = self.reader.counters, self.spec
        if spec.is_live:
            return
        if c.frames == 0 and not self._stop.is_set():
            self._events.emit("error", "capture", f"no frame could be decoded from {spec.label}")
        elif c.damaged:
            total = f" of {self.reader.frame_count} announced" if self.reader.frame_count else ""
            self._events.emit(
                "warning",
                "capture",
                f"{spec.label} is damaged or truncated: {c.frames} frame(s){total} decoded, "
                f"{c.read_errors} failed read(s); reading went on past each damaged stretch",
            )
        elif c.read_errors:
            self._events.emit(
                "warning", "capture", f"{spec.label}: {c.read_errors} frame(s) could not be decoded and were skipped"
            )
