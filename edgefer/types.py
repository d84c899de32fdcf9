"""Typed records passed between pipeline stages (one type per stage boundary).

In the spirit of supervision's `Detections`: small dataclasses holding NumPy arrays, so each stage
is a plain function of its input record and can be tested without threads, cameras or windows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Box:
    """Axis-aligned box in frame pixels (x, y = top-left corner)."""

    x: float
    y: float
    w: float
    h: float

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        return (self.x, self.y, self.x + self.w, self.y + self.h)

    def iou(self, other: Box) -> float:
        ax0, ay0, ax1, ay1 = self.xyxy
        bx0, by0, bx1, by1 = other.xyxy
        iw = max(0.0, min(ax1, bx1) - max(ax0, bx0))
        ih = max(0.0, min(ay1, by1) - max(ay0, by0))
        inter = iw * ih
        union = self.w * self.h + other.w * other.h - inter
        return inter / union if union > 0 else 0.0


@dataclass
class Face:
    """One tracked face in one frame.

    `landmarks` are the 478 MediaPipe mesh points in frame pixels (x, y), float32 (478, 2);
    `blendshapes` the 52 ARKit-style scores in MediaPipe's order (or None when not requested).
    `track_id` is stable across frames for the same person (MediaPipe itself gives no ids).
    """

    track_id: int
    box: Box
    landmarks: np.ndarray
    blendshapes: np.ndarray | None = None


@dataclass
class Frame:
    """A decoded frame as it leaves the source: BGR uint8 (H, W, 3). `wall_time_s`: when it was
    read, in seconds since the epoch (UTC; None when not known, e.g. a frame built by hand)."""

    index: int
    timestamp_s: float
    image: np.ndarray
    wall_time_s: float | None = None


@dataclass
class TrackedFrame:
    """A frame with the faces the tracker found in it (possibly none)."""

    frame: Frame
    faces: list[Face] = field(default_factory=list)


@dataclass
class FacePrediction:
    """The classifier's output for one face, after temporal smoothing.

    `probs` (7,) in the project's class order (`edgefer.classes.EXPRESSIONS`);
    `raw_probs` before smoothing; `attention` (h, w) float32 in crop space, the channel mean of
    the aligned layer; `cam` (h, w) for the predicted class when the model has it;
    `crop_to_frame` the 2x3 affine that maps crop pixels back into the frame.
    """

    face: Face
    probs: np.ndarray
    raw_probs: np.ndarray
    attention: np.ndarray | None
    cam: np.ndarray | None
    crop_to_frame: np.ndarray

    @property
    def has_estimate(self) -> bool:
        """False when the model gave no usable output for this face in this frame (NaN/inf):
        then `probs` is all NaN, and nothing should be read as an expression (argmax of NaN is
        index 0, "neutral")."""
        return bool(np.isfinite(self.probs).all())

    @property
    def label_index(self) -> int:
        return int(np.argmax(self.probs))

    @property
    def confidence(self) -> float:
        return float(np.max(self.probs))


@dataclass
class FrameResult:
    """Everything known about one frame after classification: what renderers and sinks consume."""

    frame: Frame
    predictions: list[FacePrediction] = field(default_factory=list)
    annotated: np.ndarray | None = None
