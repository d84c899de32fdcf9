"""`FaceTracker`: frames in, `list[edgefer.types.Face]` with stable ids out.

MediaPipe's FaceLandmarker finds up to N faces and their 478-point meshes (and 52 blendshapes) but
gives them no identity. The tracker validates each frame, runs the landmarker, derives a box from
the landmarks, and hands boxes to `IdAssigner` for persistent ids.

Modes: "video" (MediaPipe's VIDEO mode, for streams: it tracks landmarks between frames instead of
re-detecting every frame, and needs strictly increasing millisecond timestamps) and "image" (each
frame detected independently, for stills or sparse frames; ids are still assigned across calls).

Timestamps in video mode: pass the source's timestamp in ms when you have it; with None the tracker
advances its own clock by `1000 / assumed_fps`. A repeated timestamp is nudged forward by 1 ms
(some cameras repeat them); one that goes backwards (a seek) is an error: call `reset()` first.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgefer.tracking.ids import IdAssigner
from edgefer.tracking.landmarker import check_frame, convert_result, create_landmarker, to_mp_image
from edgefer.types import Box, Face

log = logging.getLogger(__name__)


def box_from_landmarks(landmarks: np.ndarray, frame_shape: tuple[int, ...] | None = None) -> Box:
    """Tight axis-aligned box around the landmarks, clipped to the frame when its shape is given.

    Clipping keeps drawn boxes inside the image when a face leaves the frame (MediaPipe then
    extrapolates landmarks outside it); a face entirely outside gets a zero-area box at the border.
    """
    x0, y0 = np.min(landmarks, axis=0)
    x1, y1 = np.max(landmarks, axis=0)
    if frame_shape is not None:
        h, w = frame_shape[:2]
        x0, x1 = float(np.clip(x0, 0, w)), float(np.clip(x1, 0, w))
        y0, y1 = float(np.clip(y0, 0, h)), float(np.clip(y1, 0, h))
    return Box(float(x0), float(y0), float(x1 - x0), float(y1 - y0))


class FaceTracker:
    """Faces with persistent track ids from a stream of BGR frames (see the module docstring).

    Use as a context manager (or call `close()`): MediaPipe holds native threads and memory.
    `max_missed`: frames a face may go undetected before its id ends (a short dropout keeps its id);
    in video mode also `max_gap_s` (default 1 s, an `IdAssigner` option) of the frames' time, so an
    outage of a stream ends every track.
    Extra keyword arguments go to `IdAssigner` (min_iou, max_center_jump, motion_weight, ...).
    """

    def __init__(
        self,
        face_model: str | Path | None = None,
        max_faces: int = 4,
        mode: str = "video",
        blendshapes: bool = True,
        min_confidence: float = 0.5,
        max_missed: int = 5,
        assumed_fps: float = 30.0,
        **id_options: Any,
    ) -> None:
        if assumed_fps <= 0:
            raise ValueError(f"assumed_fps must be > 0, got {assumed_fps}")
        self.mode = mode
        self.max_faces = max_faces
        self.blendshapes = blendshapes
        self.min_confidence = min_confidence
        self.assumed_fps = assumed_fps
        self._face_model = face_model
        self._id_options = dict(max_missed=max_missed, **id_options)
        self.ids = IdAssigner(**self._id_options)
        self._landmarker: Any = create_landmarker(
            face_model, mode=mode, max_faces=max_faces, blendshapes=blendshapes, min_confidence=min_confidence
        )
        self._last_ts: int | None = None
        self.frames_processed = 0
        #: Seconds spent inside MediaPipe calls (the rest of `process` is the tracker's own cost).
        self.mediapipe_seconds = 0.0

    def _timestamp(self, timestamp_ms: int | None) -> int:
        if timestamp_ms is None:
            if self._last_ts is None:
                return 0
            return self._last_ts + max(1, int(round(1000.0 / self.assumed_fps)))
        ts = int(timestamp_ms)
        if self._last_ts is not None:
            if ts < self._last_ts:
                raise ValueError(
                    f"timestamp {ts} ms goes backwards (last was {self._last_ts} ms); VIDEO mode needs "
                    "increasing timestamps: call reset() after a seek or when switching sources"
                )
            if ts == self._last_ts:
                ts += 1
        return ts

    def process(self, frame_bgr: np.ndarray, timestamp_ms: int | None = None) -> list[Face]:
        """The faces in this frame, sorted by track id. Bad frames raise ValueError before MediaPipe."""
        if self._landmarker is None:
            raise RuntimeError("FaceTracker is closed")
        frame = check_frame(frame_bgr)
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        image = to_mp_image(rgb)
        if self.mode == "video":
            ts = self._timestamp(timestamp_ms)
            t0 = time.perf_counter()
            result = self._landmarker.detect_for_video(image, ts)
            self.mediapipe_seconds += time.perf_counter() - t0
            self._last_ts = ts
        else:
            t0 = time.perf_counter()
            result = self._landmarker.detect(image)
            self.mediapipe_seconds += time.perf_counter() - t0
        self.frames_processed += 1
        h, w = frame.shape[:2]
        raw = convert_result(result, w, h)
        boxes = [box_from_landmarks(r.landmarks, frame.shape) for r in raw]
        # Video mode: the frame's time, so a track also ends after `max_gap_s` without frames (an
        # outage of a stream), not only after `max_missed` frames without the face.
        ids = self.ids.update(boxes, ts / 1000.0 if self.mode == "video" else None)
        faces = [
            Face(track_id=i, box=b, landmarks=r.landmarks, blendshapes=r.blendshapes if self.blendshapes else None)
            for i, b, r in zip(ids, boxes, raw, strict=True)
        ]
        faces.sort(key=lambda f: f.track_id)
        return faces

    def reset(self) -> None:
        """Start over (new source or a seek): fresh landmarker, no tracks; ids keep counting up."""
        self.close()
        self._landmarker = create_landmarker(
            self._face_model,
            mode=self.mode,
            max_faces=self.max_faces,
            blendshapes=self.blendshapes,
            min_confidence=self.min_confidence,
        )
        self.ids.reset()
        self._last_ts = None

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # best effort; explicit close() is the contract
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown may have torn MediaPipe down
            pass
