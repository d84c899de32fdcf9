"""Stable face ids from per-frame detections: pure NumPy, no MediaPipe, testable on synthetic boxes.

MediaPipe's FaceLandmarker returns faces in no guaranteed order and without identities, so edgefer
keeps its own tracks (users of OpenFace and py-feat report ids that flip when faces cross or drop
out for a frame; see docs/peers.md). Per frame:

1. every live track predicts its box with a constant-velocity model of its centre (velocity smoothed
   over frames; size from the last observation), advanced by the number of frames since it was seen;
2. each (track, detection) pair gets a cost `(1 - IoU(predicted, detection)) + motion_weight *
   centre_distance / track_size`; pairs that neither overlap (IoU < min_iou) nor lie within
   `max_center_jump` track sizes are forbidden;
3. one global minimum-cost assignment (Hungarian algorithm) over all pairs, so two neighbouring
   faces cannot swap ids because one of them was matched first greedily;
4. unmatched detections open new tracks with fresh ids (a counter: ids are never reused, even after
   a track ends); unmatched tracks count a miss and end after `max_missed` consecutive misses, which
   bridges short dropouts (blinks, motion blur, a hand passing) without changing the id.
5. given the frame's time, a track also ends when it was last seen more than `max_gap_s` seconds
   ago, checked before matching: frames count misses only when frames arrive, so after an outage of
   a stream (no frames for 9 s) the first face back would otherwise inherit the old id, whoever it is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from edgefer.types import Box

_FORBIDDEN = 1e9


def hungarian(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost assignment of a rectangular cost matrix: list of (row, col) pairs.

    The classic O(n^3) shortest-augmenting-path algorithm with potentials (Kuhn-Munkres,
    Jonker-Volgenant style). Each row gets a column when rows <= cols, else each column a row.
    Faces per frame are few, so this pure-Python version costs microseconds.
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError(f"cost matrix must be 2-D, got shape {cost.shape}")
    if cost.size == 0:
        return []
    transposed = cost.shape[0] > cost.shape[1]
    a = cost.T if transposed else cost
    n, m = a.shape  # n <= m
    inf = math.inf
    u = [0.0] * (n + 1)
    v = [0.0] * (m + 1)
    p = [0] * (m + 1)  # p[j]: row (1-based) matched to column j
    way = [0] * (m + 1)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = [inf] * (m + 1)
        used = [False] * (m + 1)
        while True:
            used[j0] = True
            i0 = p[j0]
            delta = inf
            j1 = 0
            for j in range(1, m + 1):
                if not used[j]:
                    cur = a[i0 - 1, j - 1] - u[i0] - v[j]
                    if cur < minv[j]:
                        minv[j] = cur
                        way[j] = j0
                    if minv[j] < delta:
                        delta = minv[j]
                        j1 = j
            for j in range(m + 1):
                if used[j]:
                    u[p[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while True:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
            if j0 == 0:
                break
    pairs = [(p[j] - 1, j - 1) for j in range(1, m + 1) if p[j] != 0]
    if transposed:
        pairs = [(c, r) for r, c in pairs]
    return sorted(pairs)


@dataclass
class Track:
    """One identity being followed: its last box, centre velocity (px/frame) and bookkeeping."""

    track_id: int
    box: Box
    velocity: tuple[float, float] = (0.0, 0.0)
    missed: int = 0  # consecutive frames without a match
    hits: int = 1  # frames matched in total
    age: int = 1  # frames since the track began
    last_t: float | None = None  # the time (s) it was last matched, when frames carry one

    @property
    def size(self) -> float:
        return math.sqrt(max(self.box.w * self.box.h, 1.0))

    def predicted(self) -> Box:
        """The box expected in the next frame (constant centre velocity over the frames missed)."""
        steps = self.missed + 1
        return Box(
            self.box.x + self.velocity[0] * steps,
            self.box.y + self.velocity[1] * steps,
            self.box.w,
            self.box.h,
        )


def _centre(box: Box) -> tuple[float, float]:
    return box.x + box.w / 2.0, box.y + box.h / 2.0


@dataclass
class IdAssigner:
    """Assigns persistent ids to per-frame boxes (see the module docstring for the method).

    `update(boxes)` returns one id per box, in the order given. Parameters:
    `max_missed` frames a track survives unmatched; `min_iou` the overlap that allows a match;
    `max_center_jump` how far (in track sizes, sqrt of box area) a centre may move and still match
    without overlap; `motion_weight` the weight of centre distance against 1 - IoU;
    `velocity_smoothing` how much of the previous velocity is kept each frame (0 = last step only);
    `max_gap_s` how long (seconds of the frames' time) a track survives unseen, whatever the number
    of frames in between (`update(boxes, t)`; without `t` only frames count).
    """

    max_missed: int = 5
    max_gap_s: float = 1.0
    min_iou: float = 0.1
    max_center_jump: float = 1.0
    motion_weight: float = 0.5
    velocity_smoothing: float = 0.5
    tracks: list[Track] = field(default_factory=list, init=False)
    _next_id: int = field(default=1, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_missed < 0:
            raise ValueError(f"max_missed must be >= 0, got {self.max_missed}")
        if not 0.0 <= self.velocity_smoothing < 1.0:
            raise ValueError(f"velocity_smoothing must be in [0, 1), got {self.velocity_smoothing}")
        if not self.max_gap_s > 0:
            raise ValueError(f"max_gap_s must be > 0, got {self.max_gap_s}")

    def reset(self) -> None:
        """Forget every track (ids still continue from the counter: never reused)."""
        self.tracks.clear()

    def cost_matrix(self, boxes: Sequence[Box]) -> np.ndarray:
        cost = np.full((len(self.tracks), len(boxes)), _FORBIDDEN)
        for t, track in enumerate(self.tracks):
            pred = track.predicted()
            pcx, pcy = _centre(pred)
            for d, box in enumerate(boxes):
                iou = pred.iou(box)
                cx, cy = _centre(box)
                dist = math.hypot(cx - pcx, cy - pcy) / track.size
                if iou >= self.min_iou or dist <= self.max_center_jump:
                    cost[t, d] = (1.0 - iou) + self.motion_weight * dist
        return cost

    def update(self, boxes: Sequence[Box], t: float | None = None) -> list[int]:
        """Match this frame's boxes to tracks; return their ids (same order as `boxes`).

        `t`: the frame's time in seconds (media time for files, time since start for live sources);
        tracks not seen for more than `max_gap_s` end before matching.
        """
        if t is not None:
            self.tracks = [tr for tr in self.tracks if tr.last_t is None or t - tr.last_t <= self.max_gap_s]
        cost = self.cost_matrix(boxes)
        ids: list[int] = [0] * len(boxes)
        matched_tracks: set[int] = set()
        for i, d in hungarian(cost):
            if cost[i, d] >= _FORBIDDEN:
                continue
            self._observe(self.tracks[i], boxes[d], t)
            ids[d] = self.tracks[i].track_id
            matched_tracks.add(i)
        survivors: list[Track] = []
        for i, track in enumerate(self.tracks):
            if i not in matched_tracks:
                track.missed += 1
                track.age += 1
                if track.missed > self.max_missed:
                    continue
            survivors.append(track)
        self.tracks = survivors
        for d, box in enumerate(boxes):
            if ids[d] == 0:
                track = Track(self._next_id, box, last_t=t)
                self._next_id += 1
                self.tracks.append(track)
                ids[d] = track.track_id
        return ids

    def _observe(self, track: Track, box: Box, t: float | None = None) -> None:
        steps = track.missed + 1
        ocx, ocy = _centre(track.box)
        ncx, ncy = _centre(box)
        step_v = ((ncx - ocx) / steps, (ncy - ocy) / steps)
        k = self.velocity_smoothing if track.hits > 1 else 0.0
        track.velocity = (
            k * track.velocity[0] + (1 - k) * step_v[0],
            k * track.velocity[1] + (1 - k) * step_v[1],
        )
        track.box = box
        track.last_t = t
        track.missed = 0
        track.hits += 1
        track.age += 1
