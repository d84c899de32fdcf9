"""The per-frame work of each stage as plain functions (no threads, no queues).

track -> classify -> render: the runner calls these from its stage threads; tests and benchmarks
call them directly. Keeping them free of threading is what makes the pipeline testable piece by
piece. The collaborators are described by the little they are asked for (Protocols), so a test
may pass the real MediaPipe tracker and ONNX classifier or a stand-in of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from edgefer import render
from edgefer.align import AlignedCrop
from edgefer.live import HeatmapMode
from edgefer.pipeline.smoothing import ProbabilitySmoother
from edgefer.runtime.base import ClassifierOutput
from edgefer.types import Face, FacePrediction, Frame, FrameResult, TrackedFrame


class FaceSource(Protocol):
    """What the track stage asks of a tracker (`edgefer.tracking.FaceTracker`)."""

    def process(self, frame_bgr: np.ndarray, timestamp_ms: int | None = None) -> list[Face]: ...


class CropMaker(Protocol):
    """What the classify stage asks of an aligner (`edgefer.align.Aligner`)."""

    def crop_batch(
        self, frame_bgr: np.ndarray, landmarks_list: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, list[AlignedCrop]]: ...


class Predictor(Protocol):
    """What the classify stage asks of a classifier (`edgefer.runtime.Classifier`)."""

    def predict(self, crops: np.ndarray) -> ClassifierOutput: ...


def video_timestamp_ms(timestamp_s: float, last_ms: int) -> int:
    """The frame's time in whole ms, strictly after `last_ms`: MediaPipe's VIDEO mode refuses a
    repeated or earlier timestamp, and some sources repeat them."""
    return max(int(round(timestamp_s * 1000.0)), last_ms + 1)


def track_frame(tracker: FaceSource, frame: Frame, timestamp_ms: int, max_faces: int) -> TrackedFrame:
    """The faces of one frame with their track ids; at most `max_faces`, the largest kept."""
    return TrackedFrame(frame, keep_largest(list(tracker.process(frame.image, timestamp_ms)), max_faces))


def keep_largest(faces: list[Face], n: int) -> list[Face]:
    """At most `n` faces, the largest boxes first kept (ties keep the tracker's order)."""
    if len(faces) <= n:
        return faces
    order = sorted(range(len(faces)), key=lambda i: -(faces[i].box.w * faces[i].box.h))
    keep = sorted(order[:n])
    return [faces[i] for i in keep]


def classify_frame(
    tracked: TrackedFrame,
    aligner: CropMaker,
    classifier: Predictor,
    smoother: ProbabilitySmoother | None = None,
) -> FrameResult:
    """Align every face of the frame, classify them in ONE batched call, smooth per track.

    A frame without faces gives a result without predictions (it still flows to the sinks, so
    the recording keeps every frame); the smoother then forgets tracks that have ended.
    """
    frame = tracked.frame
    faces = tracked.faces
    if not faces:
        if smoother is not None:
            smoother.forget(frame.timestamp_s)
        return FrameResult(frame=frame, predictions=[])
    crops, aligned = aligner.crop_batch(frame.image, [f.landmarks for f in faces])
    out = classifier.predict(crops)
    raw = np.asarray(out.probs, dtype=np.float32)
    if smoother is not None:
        probs = smoother.update_frame([f.track_id for f in faces], raw, frame.timestamp_s)
    else:
        probs = raw.copy()
    cam = out.cam
    preds = [
        FacePrediction(
            face=face,
            probs=probs[i],
            raw_probs=raw[i],
            attention=None if out.attention is None else out.attention[i],
            cam=None if cam is None else cam[i],
            crop_to_frame=np.asarray(aligned[i].crop_to_frame, dtype=np.float32),
        )
        for i, face in enumerate(faces)
    ]
    return FrameResult(frame=frame, predictions=preds)


def render_result(
    result: FrameResult,
    crop_size: tuple[int, int],
    *,
    mode: HeatmapMode,
    opacity: float,
    colormap: str,
    status: str | None = None,
) -> np.ndarray:
    """The annotated frame: each face's heatmap warped back onto it, box, id, label, bars."""
    return render.render_frame(result, crop_size, mode=mode, opacity=opacity, colormap=colormap, status=status)
