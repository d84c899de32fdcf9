"""Pipeline statistics: per-stage latency percentiles, throughput, dropped frames.

Everything here is bounded: latencies live in fixed-size ring buffers (the last `window`
samples per stage) and the throughput clock in a fixed-size deque, so a run of days keeps the
same memory as a run of seconds. `StatsCollector` is written to by the pipeline threads and
read (as an immutable `PipelineStats` snapshot) by the UI or the CLI at any time.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from edgefer.pipeline.events import STAGE_NAMES, StageName

#: The stages, in pipeline order (also the order of the printed table).
STAGES: tuple[StageName, ...] = STAGE_NAMES
#: Where a run is: "idle" before start, "running", "paused", "finished" once the sinks closed.
RunState = Literal["idle", "running", "paused", "finished"]
#: The counters `StatsCollector.count` adds to.
Counter = Literal["frames_read", "frames_dropped", "read_errors", "errors", "warnings", "reconnects"]


class LatencyWindow:
    """The last `size` latency samples (milliseconds) in a ring buffer, plus a running total."""

    def __init__(self, size: int = 512) -> None:
        if size < 1:
            raise ValueError("latency window size must be >= 1")
        self._buf = np.zeros(size, dtype=np.float64)
        self._n = 0  # samples ever added
        self._sum = 0.0

    def add(self, ms: float) -> None:
        self._buf[self._n % self._buf.size] = ms
        self._n += 1
        self._sum += ms

    @property
    def count(self) -> int:
        return self._n

    def snapshot(self, name: str) -> StageStats:
        if self._n == 0:
            return StageStats(name, 0, float("nan"), float("nan"), float("nan"))
        recent = self._buf[: min(self._n, self._buf.size)]
        p50, p95 = np.percentile(recent, [50, 95])
        return StageStats(name, self._n, float(p50), float(p95), self._sum / self._n)


@dataclass(frozen=True)
class StageStats:
    """Latency of one stage: p50/p95 over the recent window, mean over the whole run (ms)."""

    name: str
    count: int
    p50_ms: float
    p95_ms: float
    mean_ms: float


@dataclass(frozen=True)
class PipelineStats:
    """A snapshot of a run, cheap to take and safe to hand to another thread.

    `fps`: frames leaving the pipeline per second over the last ~2 s (what a person sees);
    `mean_fps`: frames out / seconds since the first frame. `frames_dropped`: stale frames of
    a live source replaced by newer ones (by design, to keep latency low). `read_errors`:
    frames that failed to decode inside a file or stream. `end_to_end`: capture to sink.
    """

    source: str = ""
    model: str = ""
    backend: str = ""
    state: RunState = "idle"
    elapsed_s: float = 0.0
    frames_read: int = 0
    frames_processed: int = 0
    frames_dropped: int = 0
    read_errors: int = 0
    faces: int = 0
    fps: float = 0.0
    mean_fps: float = 0.0
    stages: tuple[StageStats, ...] = ()
    end_to_end: StageStats | None = None
    outputs: tuple[str, ...] = ()
    errors: int = 0
    warnings: int = 0
    reconnects: int = 0

    def stage(self, name: str) -> StageStats:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(f"no stage {name!r}; stages are {[s.name for s in self.stages]}")

    def format(self) -> str:
        """A small human-readable table (printed by `edgefer run` at the end)."""
        lines = [
            f"source    {self.source}",
            f"model     {self.model}  [{self.backend}]",
            f"frames    {self.frames_processed} processed / {self.frames_read} read, "
            f"{self.frames_dropped} dropped (stale), {self.read_errors} read errors, {self.faces} faces",
            f"speed     {self.mean_fps:.1f} fps mean, {self.fps:.1f} fps recent, {self.elapsed_s:.1f} s",
            f"{'stage':<10}{'p50 ms':>9}{'p95 ms':>9}{'mean ms':>9}{'count':>8}",
        ]
        rows = list(self.stages) + ([self.end_to_end] if self.end_to_end else [])
        for s in rows:
            if s.count == 0:  # no sample: a dash, not the "nan" of an empty percentile
                lines.append(f"{s.name:<10}{'-':>9}{'-':>9}{'-':>9}{s.count:>8d}")
            else:
                lines.append(f"{s.name:<10}{s.p50_ms:>9.2f}{s.p95_ms:>9.2f}{s.mean_ms:>9.2f}{s.count:>8d}")
        if self.errors or self.warnings:
            lines.append(f"events    {self.errors} error(s), {self.warnings} warning(s)")
        return "\n".join(lines)


@dataclass
class _Counters:
    frames_read: int = 0
    frames_processed: int = 0
    frames_dropped: int = 0
    read_errors: int = 0
    faces: int = 0
    errors: int = 0
    warnings: int = 0
    reconnects: int = 0


@dataclass
class StatsCollector:
    """Thread-safe accumulation of the figures behind `PipelineStats`."""

    window: int = 512
    fps_window_s: float = 2.0
    source: str = ""
    model: str = ""
    backend: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _lat: dict[str, LatencyWindow] = field(default_factory=dict, repr=False)
    _e2e: LatencyWindow = field(default_factory=LatencyWindow, repr=False)
    _c: _Counters = field(default_factory=_Counters, repr=False)
    _out_times: deque[float] = field(default_factory=lambda: deque(maxlen=256), repr=False)
    _t_first: float | None = None
    _t_last: float | None = None
    state: RunState = "idle"

    def __post_init__(self) -> None:
        self._lat = {name: LatencyWindow(self.window) for name in STAGES}
        self._e2e = LatencyWindow(self.window)

    def stage_time(self, stage: StageName, seconds: float) -> None:
        with self._lock:
            self._lat[stage].add(seconds * 1000.0)

    def count(self, name: Counter, n: int = 1) -> None:
        """Add to a counter: frames_read, frames_dropped, read_errors, errors, warnings, reconnects."""
        with self._lock:
            setattr(self._c, name, getattr(self._c, name) + n)

    def frame_out(self, faces: int, latency_s: float | None) -> None:
        """A frame left the pipeline (after the sinks)."""
        now = time.monotonic()
        with self._lock:
            self._c.frames_processed += 1
            self._c.faces += faces
            if latency_s is not None:
                self._e2e.add(latency_s * 1000.0)
            if self._t_first is None:
                self._t_first = now
            self._t_last = now
            self._out_times.append(now)

    def recent_fps(self) -> float:
        """Frames out per second over the last `fps_window_s` (cheap: for the on-frame readout)."""
        now = time.monotonic()
        with self._lock:
            ts = self._out_times
            if len(ts) < 2:
                return 0.0
            n = 0
            for t in reversed(ts):
                if now - t > self.fps_window_s:
                    break
                n += 1
            if n < 2:
                return 0.0
            first = ts[-n]
            span = max(now - first, ts[-1] - first)
            return (n - 1) / span if span > 0 else 0.0

    def started(self) -> None:
        with self._lock:
            self._t_first = None
            self.state = "running"

    def snapshot(self, outputs: tuple[str, ...] = ()) -> PipelineStats:
        now = time.monotonic()
        with self._lock:
            c = self._c
            recent = [t for t in self._out_times if now - t <= self.fps_window_s]
            fps = 0.0
            if len(recent) >= 2 and self.state in ("running", "paused"):
                span = max(now - recent[0], recent[-1] - recent[0])
                fps = (len(recent) - 1) / span if span > 0 else 0.0
            elif len(self._out_times) >= 2 and self.state == "finished":
                # After the end: the rate over the last window of frames, not zero.
                ts = list(self._out_times)
                span = ts[-1] - ts[0]
                fps = (len(ts) - 1) / span if span > 0 else 0.0
            elapsed = 0.0
            mean_fps = 0.0
            if self._t_first is not None and self._t_last is not None:
                end = self._t_last if self.state == "finished" else now
                elapsed = end - self._t_first
                if elapsed > 0 and c.frames_processed > 1:
                    mean_fps = (c.frames_processed - 1) / elapsed
            return PipelineStats(
                source=self.source,
                model=self.model,
                backend=self.backend,
                state=self.state,
                elapsed_s=elapsed,
                frames_read=c.frames_read,
                frames_processed=c.frames_processed,
                frames_dropped=c.frames_dropped,
                read_errors=c.read_errors,
                faces=c.faces,
                fps=fps,
                mean_fps=mean_fps,
                stages=tuple(self._lat[name].snapshot(name) for name in STAGES),
                end_to_end=self._e2e.snapshot("end-to-end"),
                outputs=outputs,
                errors=c.errors,
                warnings=c.warnings,
                reconnects=c.reconnects,
            )
