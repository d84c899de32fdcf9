"""FaceTracker on the real shared videos with the real MediaPipe model."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgefer.face_model import FaceModelError
from edgefer.tracking import BLENDSHAPE_NAMES, FaceTracker
from edgefer.types import Face


def read_frames(path: Path, limit: int | None = None) -> tuple[list[np.ndarray], float]:
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"cannot open {path}"
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    frames: list[np.ndarray] = []
    while limit is None or len(frames) < limit:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames, fps


def track(face_model: Path, frames: list[np.ndarray], fps: float, **kw: object) -> list[list[Face]]:
    with FaceTracker(face_model, **kw) as tracker:
        return [tracker.process(f, int(round(i * 1000 / fps))) for i, f in enumerate(frames)]


def test_one_face_video_keeps_one_id(face_model: Path, one_face_video: Path) -> None:
    frames, fps = read_frames(one_face_video, limit=200)
    assert len(frames) == 200
    results = track(face_model, frames, fps)
    assert all(len(faces) == 1 for faces in results)
    ids = Counter(f.track_id for faces in results for f in faces)
    assert ids.most_common(1)[0][1] >= 0.99 * len(frames)
    h, w = frames[0].shape[:2]
    for faces in results[::20]:
        face = faces[0]
        assert face.landmarks.shape == (478, 2) and face.landmarks.dtype == np.float32
        assert face.blendshapes is not None and face.blendshapes.shape == (len(BLENDSHAPE_NAMES),)
        assert face.blendshapes.dtype == np.float32 and 0.0 <= face.blendshapes.min() <= face.blendshapes.max() <= 1.0
        x0, y0, x1, y1 = face.box.xyxy
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        assert 40 < face.box.w < w and 40 < face.box.h < h  # a real face, not a speck
        inside = (face.landmarks[:, 0] >= x0 - 1e-3) & (face.landmarks[:, 0] <= x1 + 1e-3)
        assert inside.mean() > 0.95


def test_two_faces_never_swap(face_model: Path, two_face_gif: Path) -> None:
    frames, fps = read_frames(two_face_gif)
    assert len(frames) >= 50
    results = track(face_model, frames, fps, max_faces=4)
    two = [faces for faces in results if len(faces) == 2]
    assert len(two) >= 0.95 * len(frames)
    all_ids = {f.track_id for faces in results for f in faces}
    assert len(all_ids) == 2
    orders = {tuple(f.track_id for f in sorted(faces, key=lambda f: f.box.x)) for faces in two}
    assert len(orders) == 1, f"ids swapped x-order between frames: {orders}"


def test_faceless_opening_then_one_face(face_model: Path, noface_mov: Path) -> None:
    frames, fps = read_frames(noface_mov)
    assert len(frames) > 120
    results = track(face_model, frames, fps)
    opening = results[:96]
    # The cartoon opening has no person; MediaPipe may flag a rare false positive, never many.
    assert sum(len(faces) for faces in opening) <= 3
    # From frame 96 on a person faces the camera (the file's very last frame is black).
    later = [faces for faces, frame in zip(results[96:], frames[96:]) if frame.mean() > 10]
    assert len(later) >= 70
    assert all(len(faces) == 1 for faces in later)
    assert len({faces[0].track_id for faces in later}) == 1


def test_image_mode_and_no_blendshapes(face_model: Path, one_face_video: Path) -> None:
    frames, _ = read_frames(one_face_video, limit=3)
    with FaceTracker(face_model, mode="image", blendshapes=False, max_faces=2) as tracker:
        faces = [tracker.process(f) for f in frames]
    assert [len(f) for f in faces] == [1, 1, 1]
    assert all(f[0].blendshapes is None for f in faces)
    assert {f[0].track_id for f in faces} == {1}


def test_gray_and_non_contiguous_frames_are_accepted(face_model: Path, one_face_video: Path) -> None:
    frames, _ = read_frames(one_face_video, limit=2)
    with FaceTracker(face_model, mode="image") as tracker:
        gray = cv2.cvtColor(frames[0], cv2.COLOR_BGR2GRAY)
        assert len(tracker.process(gray)) == 1
        flipped = frames[1][:, ::-1]  # a view with negative strides
        assert not flipped.flags["C_CONTIGUOUS"]
        faces = tracker.process(flipped)
        assert len(faces) == 1
        ref = tracker.process(np.ascontiguousarray(frames[1]))[0]
        w = frames[1].shape[1]
        # mirrored frame: the face box mirrors too
        assert abs((w - faces[0].box.xyxy[2]) - ref.box.x) < 0.05 * w


@pytest.mark.parametrize(
    "frame, message",
    [
        (None, "is None"),
        ([[1, 2], [3, 4]], "numpy array"),
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        (np.zeros((32, 32, 3), np.float32), "uint8"),
        (np.zeros((32, 32, 2), np.uint8), r"\(H, W, 3\)"),
        (np.zeros((4, 32, 32, 3), np.uint8), r"\(H, W, 3\)"),
    ],
)
def test_bad_frames_are_refused(face_model: Path, frame: object, message: str) -> None:
    with FaceTracker(face_model) as tracker:
        with pytest.raises(ValueError, match=message):
            tracker.process(frame)  # type: ignore[arg-type]
        assert tracker.frames_processed == 0


def test_timestamps_must_not_go_backwards(face_model: Path, one_face_video: Path) -> None:
    frames, _ = read_frames(one_face_video, limit=3)
    with FaceTracker(face_model) as tracker:
        tracker.process(frames[0], 100)
        tracker.process(frames[1], 100)  # repeated: nudged, not an error
        with pytest.raises(ValueError, match="backwards.*reset"):
            tracker.process(frames[2], 50)
        tracker.reset()
        faces = tracker.process(frames[2], 0)
        assert len(faces) == 1 and faces[0].track_id == 2  # fresh track, id not reused


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "face_landmarker.task"
    with pytest.raises(FaceModelError, match="does not exist.*EDGEFER_FACE_MODEL"):
        FaceTracker(missing)
