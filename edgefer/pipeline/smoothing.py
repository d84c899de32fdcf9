"""Per-track temporal smoothing of class probabilities, so labels do not flicker.

An exponential moving average per track id. `strength` is the weight the previous estimate keeps
per 1/30 s (`reference_fps`), and the actual weight adapts to the time between two frames of the
track: `a = strength ** (dt * reference_fps)`. So a 12.5 fps GIF, a 30 fps camera and a live
source that drops frames all smooth over the same wall-clock time, and a face seen again after a
long gap starts nearly fresh instead of dragging an old expression along.

State is per track id and is dropped when the track ends (not seen for `forget_after_s`); the
tracker never reuses ids, so memory stays bounded by the number of faces currently visible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgefer.live import SMOOTHING_MIN, SMOOTHING_SUP


@dataclass
class _TrackState:
    probs: np.ndarray
    last_t: float


class ProbabilitySmoother:
    """EMA of probability vectors keyed by track id."""

    def __init__(self, strength: float = 0.6, reference_fps: float = 30.0, forget_after_s: float = 1.5) -> None:
        self.strength = strength  # validated by the setter
        if reference_fps <= 0:
            raise ValueError(f"reference_fps must be > 0, got {reference_fps}")
        if forget_after_s <= 0:
            raise ValueError(f"forget_after_s must be > 0, got {forget_after_s}")
        self.reference_fps = float(reference_fps)
        self.forget_after_s = float(forget_after_s)
        self._tracks: dict[int, _TrackState] = {}

    @property
    def strength(self) -> float:
        return self._strength

    @strength.setter
    def strength(self, value: float) -> None:
        value = float(value)
        if not SMOOTHING_MIN <= value < SMOOTHING_SUP:
            raise ValueError(f"smoothing strength must be in [{SMOOTHING_MIN:g}, {SMOOTHING_SUP:g}), got {value}")
        self._strength = value

    def __len__(self) -> int:
        return len(self._tracks)

    def tracks(self) -> tuple[int, ...]:
        return tuple(self._tracks)

    def weight(self, dt_s: float) -> float:
        """The weight kept by the previous estimate after `dt_s` seconds (one frame if dt <= 0)."""
        if self._strength == 0.0:
            return 0.0
        frames = dt_s * self.reference_fps if dt_s > 0 else 1.0
        return float(self._strength**frames)

    def update(self, track_id: int, probs: np.ndarray, t: float) -> np.ndarray:
        """Smooth one track's probabilities observed at time `t` (seconds); returns a new array.

        A non-finite observation (a model that returned NaN or inf) is no observation: the
        track's state is left as it was (one such frame must not poison it for the rest of the
        track, as it did when NaN entered the average) and the result is all NaN, "no estimate
        in this frame" (`FacePrediction.has_estimate`).
        """
        p = np.asarray(probs, dtype=np.float32)
        if not np.isfinite(p).all():
            return np.full_like(p, np.nan)
        state = self._tracks.get(track_id)
        if state is None or self._strength == 0.0:
            out = p.copy()
        else:
            a = self.weight(t - state.last_t)
            out = (a * state.probs + (1.0 - a) * p).astype(np.float32)
            total = float(out.sum())
            if total > 0:
                out /= total  # keep a distribution despite rounding
        self._tracks[track_id] = _TrackState(out, t)
        return out.copy()

    def update_frame(self, track_ids: list[int], probs: np.ndarray, t: float) -> np.ndarray:
        """Smooth every face of one frame ((N, C) probabilities) and forget ended tracks."""
        probs = np.asarray(probs, dtype=np.float32)
        if probs.ndim != 2 or probs.shape[0] != len(track_ids):
            raise ValueError(f"expected ({len(track_ids)}, C) probabilities, got shape {probs.shape}")
        out = np.empty_like(probs)
        for i, tid in enumerate(track_ids):
            out[i] = self.update(int(tid), probs[i], t)
        self.forget(t, keep=track_ids)
        return out

    def forget(self, t: float, keep: list[int] | tuple[int, ...] = ()) -> None:
        """Drop the state of tracks not seen for `forget_after_s` (their track has ended)."""
        keep_set = set(int(k) for k in keep)
        stale = [tid for tid, s in self._tracks.items() if tid not in keep_set and t - s.last_t > self.forget_after_s]
        for tid in stale:
            del self._tracks[tid]

    def reset(self) -> None:
        self._tracks.clear()
