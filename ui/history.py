"""Per-face probability history over the last seconds, so a panel shows a trend, not a flicker.

Written from the pipeline's callback thread (every result, also the ones the GUI skips when it is
behind) and read from the GUI thread, hence the lock. Time is the frame's own timestamp (media
time), so a file processed slower or faster than real time still shows its last 10 seconds of
video, and a live camera its last 10 seconds of wall time. Memory is bounded: at most
`max_samples` per face and faces unseen for a whole window are forgotten.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

from edgefer.classes import NUM_CLASSES
from edgefer.types import FrameResult


@dataclass(frozen=True)
class Series:
    """A face's samples, oldest first: `times` (n,) seconds, `probs` (n, 7)."""

    times: np.ndarray
    probs: np.ndarray

    def __len__(self) -> int:
        return int(self.times.shape[0])


class HistoryStore:
    """Ring buffers of (timestamp, probabilities) per track id."""

    def __init__(self, window_s: float = 10.0, max_samples: int = 1200) -> None:
        if window_s <= 0:
            raise ValueError(f"history window must be positive, got {window_s}")
        self.window_s = float(window_s)
        self.max_samples = int(max_samples)
        self._lock = threading.Lock()
        self._tracks: dict[int, deque[tuple[float, np.ndarray]]] = {}
        self._latest_t: float | None = None

    def add(self, timestamp_s: float, track_id: int, probs: np.ndarray) -> None:
        p = np.asarray(probs, dtype=np.float32).reshape(-1)
        if p.shape[0] != NUM_CLASSES:
            raise ValueError(f"expected {NUM_CLASSES} probabilities for face {track_id}, got {p.shape[0]}")
        t = float(timestamp_s)
        with self._lock:
            if self._latest_t is not None and t < self._latest_t - 1.0:
                # The source restarted (new file, looped video, reconnected camera): old curves
                # would be drawn in the future, so start over.
                self._tracks.clear()
                self._latest_t = t
            else:
                self._latest_t = t if self._latest_t is None else max(self._latest_t, t)
            buf = self._tracks.get(track_id)
            if buf is None:
                buf = self._tracks[track_id] = deque(maxlen=self.max_samples)
            buf.append((t, p.copy()))
            self._prune(t)

    def add_result(self, result: FrameResult) -> None:
        """Record every face of a pipeline result (a face without an estimate, NaN from the model,
        leaves a gap in its curve)."""
        for pred in result.predictions:
            if pred.has_estimate:
                self.add(result.frame.timestamp_s, pred.face.track_id, pred.probs)

    def _prune(self, now: float) -> None:
        horizon = now - self.window_s
        for tid in list(self._tracks):
            buf = self._tracks[tid]
            while buf and buf[0][0] < horizon:
                buf.popleft()
            if not buf:
                del self._tracks[tid]

    def clear(self) -> None:
        with self._lock:
            self._tracks.clear()
            self._latest_t = None

    @property
    def latest_time(self) -> float | None:
        with self._lock:
            return self._latest_t

    def track_ids(self) -> list[int]:
        with self._lock:
            return sorted(self._tracks)

    def series(self, track_id: int) -> Series:
        """A copy of one face's samples (empty when the face is unknown)."""
        with self._lock:
            buf = list(self._tracks.get(track_id, ()))
        if not buf:
            return Series(np.zeros(0, np.float64), np.zeros((0, NUM_CLASSES), np.float32))
        times = np.fromiter((s[0] for s in buf), dtype=np.float64, count=len(buf))
        probs = np.stack([s[1] for s in buf])
        return Series(times, probs)
