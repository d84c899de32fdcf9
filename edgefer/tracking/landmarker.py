"""Thin, checked access to MediaPipe's FaceLandmarker (Tasks API).

Everything that touches MediaPipe directly lives here: building a landmarker from the verified model
file, validating frames *before* they reach MediaPipe (whose own errors on a bad array are cryptic
C++ aborts or silent garbage), and turning its normalised results into pixel-space NumPy arrays.
MediaPipe is imported lazily so that importing `edgefer.tracking` (e.g. for the pure id logic or the
blendshape names) stays instant. MediaPipe 1.2's C++ side prints a few INFO/WARNING lines to stderr
when a landmarker starts (XNNPACK delegate, feedback tensors); GLOG_minloglevel, ABSL_MIN_LOG_LEVEL
and TF_CPP_MIN_LOG_LEVEL do not silence them (tried), and they are harmless.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgefer.face_model import resolve_face_model
from edgefer.tracking.blendshapes import BLENDSHAPE_NAMES, NUM_BLENDSHAPES, NUM_LANDMARKS

log = logging.getLogger(__name__)

MODES = ("video", "image")


def create_landmarker(
    face_model: str | Path | None = None,
    *,
    mode: str = "video",
    max_faces: int = 4,
    blendshapes: bool = True,
    min_confidence: float = 0.5,
) -> Any:
    """A MediaPipe FaceLandmarker in VIDEO or IMAGE mode, from the verified model file.

    `min_confidence` sets detection, presence and tracking confidences together: users tune one
    knob, and MediaPipe's three thresholds mean the same thing to them.
    """
    if mode not in MODES:
        raise ValueError(f"landmarker mode must be one of {MODES}, not {mode!r}")
    if max_faces < 1:
        raise ValueError(f"max_faces must be >= 1, got {max_faces}")
    if not 0.0 <= min_confidence <= 1.0:
        raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")
    path = resolve_face_model(face_model)
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(path)),
        running_mode=vision.RunningMode.VIDEO if mode == "video" else vision.RunningMode.IMAGE,
        num_faces=max_faces,
        min_face_detection_confidence=min_confidence,
        min_face_presence_confidence=min_confidence,
        min_tracking_confidence=min_confidence,
        output_face_blendshapes=blendshapes,
    )
    return vision.FaceLandmarker.create_from_options(options)


def check_frame(frame: Any, what: str = "frame") -> np.ndarray:
    """Validate a BGR (H, W, 3) or gray (H, W) uint8 frame and return it as contiguous BGR.

    Refused with a ValueError naming the problem: None, not an array, empty, wrong dtype, wrong
    number of channels. Non-contiguous views (slices, flips) are copied, not refused. BGRA is
    accepted (alpha dropped) because some capture backends deliver it.
    """
    if frame is None:
        raise ValueError(f"{what} is None (the source returned no image: end of stream or a read error?)")
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"{what} must be a numpy array, got {type(frame).__name__}")
    if frame.size == 0 or frame.ndim < 2 or min(frame.shape[:2]) == 0:
        raise ValueError(f"{what} is empty (shape {frame.shape})")
    if frame.dtype != np.uint8:
        raise ValueError(f"{what} must be uint8 (8-bit BGR), got dtype {frame.dtype}")
    if frame.ndim == 2:
        return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_GRAY2BGR)
    if frame.ndim != 3 or frame.shape[2] not in (1, 3, 4):
        raise ValueError(f"{what} must be (H, W, 3) BGR or (H, W) gray, got shape {frame.shape}")
    if frame.shape[2] == 1:
        return cv2.cvtColor(np.ascontiguousarray(frame[:, :, 0]), cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(frame)


def to_mp_image(rgb: np.ndarray) -> Any:
    """Wrap a contiguous RGB uint8 array as a mediapipe Image (no copy on our side)."""
    import mediapipe as mp

    return mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))


@dataclass
class RawFace:
    """One face as MediaPipe returned it, converted to pixels: no id yet."""

    landmarks: np.ndarray  # (478, 2) float32, pixels of the image given to MediaPipe
    blendshapes: np.ndarray | None  # (52,) float32 in BLENDSHAPE_NAMES order


def convert_result(result: Any, width: int, height: int) -> list[RawFace]:
    """MediaPipe's normalised landmarks -> pixel arrays (x * width, y * height)."""
    faces: list[RawFace] = []
    scale = np.array([width, height], dtype=np.float32)
    shapes = getattr(result, "face_blendshapes", None) or []
    for i, marks in enumerate(result.face_landmarks):
        if len(marks) != NUM_LANDMARKS:
            log.warning("MediaPipe returned %d landmarks instead of %d; face dropped", len(marks), NUM_LANDMARKS)
            continue
        pts = np.array([(p.x, p.y) for p in marks], dtype=np.float32) * scale
        bs = None
        if i < len(shapes) and shapes[i]:
            bs = np.zeros(NUM_BLENDSHAPES, dtype=np.float32)
            by_name = {c.category_name: c.score for c in shapes[i]}
            for k, name in enumerate(BLENDSHAPE_NAMES):
                bs[k] = by_name.get(name, 0.0)
        faces.append(RawFace(pts, bs))
    return faces
