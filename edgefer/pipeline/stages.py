"""The per-frame work of each stage as plain functions (no threads, no queues).

The runner calls these from its stage threads; tests and benchmarks call them directly. Keeping
them free of threading is what makes the pipeline testable piece by piece.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import numpy as np

from edgefer.pipeline.smoothing import ProbabilitySmoother
from edgefer.types import Face, FacePrediction, FrameResult, TrackedFrame


class _Aligner(Protocol):
    def crop_batch(self, frame_bgr: np.ndarray, landmarks_list: Sequence[np.ndarray]) -> tuple[np.ndarray, list[Any]]: ...


class _Classifier(Protocol):
    def predict(self, crops: np.ndarray) -> Any: ...


def keep_largest(faces: list[Face], n: int) -> list[Face]:
    """At most `n` faces, the largest boxes first kept (ties keep the tracker's order)."""
    if len(faces) <= n:
        return faces
    order = sorted(range(len(faces)), key=lambda i: -(faces[i].box.w * faces[i].box.h))
    keep = sorted(order[:n])
    return [faces[i] for i in keep]


def classify_frame(
    tracked: TrackedFrame,
    aligner: _Aligner,
    classifier: _Classifier,
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
    cam = getattr(out, "cam", None)
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
