"""Helpers shared by the pipeline tests (no tests here): small real clips, running a pipeline to its
end with the callbacks' checks asserted afterwards, reading outputs back."""

from __future__ import annotations

import csv
import json
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgefer.pipeline.events import PipelineEvent
from edgefer.pipeline.runner import Pipeline
from edgefer.pipeline.settings import PipelineSettings
from edgefer.pipeline.stats import PipelineStats
from edgefer.types import FrameResult


def make_clip(out: Path, parts: list[tuple[Path, int, int]], size: tuple[int, int] = (320, 180), fps: float = 24.0) -> Path:
    """Concatenate real frames (`(video, first_frame, count)` parts), resized, into an mp4v clip."""
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened(), out
    for video, start, count in parts:
        cap = cv2.VideoCapture(str(video))
        cap.set(cv2.CAP_PROP_POS_FRAMES, start)
        for _ in range(count):
            ok, img = cap.read()
            assert ok, f"{video}: cannot read frame"
            writer.write(cv2.resize(img, size, interpolation=cv2.INTER_AREA))
        cap.release()
    writer.release()
    return out


def count_frames(path: Path) -> int:
    """Decode a video to the end; the number of frames that play back."""
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"{path} does not open"
    n = 0
    while True:
        ok, _ = cap.read()
        if not ok:
            break
        n += 1
    cap.release()
    return n


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def settings(source: Path | str, model: Path, face_model: Path, **kw: Any) -> PipelineSettings:
    return PipelineSettings(source=str(source), model=model, face_model=face_model, headless=True, **kw)


@dataclass
class Run:
    stats: PipelineStats
    events: list[PipelineEvent]
    results: int
    faces_per_frame: list[int] = field(default_factory=list)

    def messages(self, kind: str | None = None) -> list[str]:
        return [e.message for e in self.events if kind is None or e.kind == kind]


class CallbackFailures:
    """Failures inside callbacks that the pipeline calls on its own threads, kept for after the run.

    The pipeline logs and swallows an exception from `on_result` (a callback must never kill the
    sink), so an `assert` inside a callback cannot fail a test by itself. Wrap the callback with
    `wrap`, and call `check()` once the run is over: it fails the test with every failure seen.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.failures: list[str] = []

    def wrap(self, fn: Callable[..., None]) -> Callable[..., None]:
        def checked(*args: Any, **kwargs: Any) -> None:
            try:
                fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - an assertion or a bug in the test's callback; reported by check()
                with self._lock:
                    self.failures.append(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")

        return checked

    def check(self) -> None:
        with self._lock:
            failures = list(self.failures)
        assert not failures, f"{len(failures)} callback call(s) failed; the first:\n{failures[0]}"


def run_to_end(s: PipelineSettings, timeout: float = 120.0) -> Run:
    """Run a pipeline to its end through the public API, collecting events and results; what the
    result callback checked on every frame is asserted after the run (`CallbackFailures`)."""
    events: list[PipelineEvent] = []
    counts: list[int] = []
    lock = threading.Lock()
    failures = CallbackFailures()

    def on_result(r: FrameResult) -> None:
        assert r.annotated is not None, f"frame {r.frame.index}: no annotated image"
        assert r.annotated.shape == r.frame.image.shape, f"frame {r.frame.index}: {r.annotated.shape} != {r.frame.image.shape}"
        with lock:
            counts.append(len(r.predictions))

    with Pipeline(s, on_result=failures.wrap(on_result), on_event=events.append) as p:
        p.start()
        assert p.wait(timeout), "pipeline did not finish in time"
    assert not [t for t in threading.enumerate() if t.name.startswith("edgefer-")], "stage threads left behind"
    failures.check()
    return Run(p.stats(), events, len(counts), counts)


def rss_mb() -> float:
    """Resident memory of this process (Linux)."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def as_array(rows: list[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([float(r[key]) for r in rows])
