"""StillLandmarker on small crops: coordinates come back in the input's pixels; junk is refused."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgefer.tracking import FaceTracker
from edgefer.tracking.still import DEFAULT_VARIANTS, StillLandmarker, Variant, present, present_key


def test_present_pads_and_upscales() -> None:
    image = np.full((48, 48, 3), 200, np.uint8)
    shown, pad, scale = present(image, Variant("x", 0.25, 288, "constant", 0.5))
    assert (pad, scale) == (12, 4.0) and shown.shape == (288, 288, 3)
    assert shown[0, 0].tolist() == [0, 0, 0] and shown[144, 144].tolist() == [200, 200, 200]
    shown, pad, scale = present(np.zeros((480, 640, 3), np.uint8), Variant("y", 0.0, 192, "constant", 0.5))
    assert (pad, scale) == (0, 1.0) and shown.shape == (480, 640, 3)  # never downscaled
    assert len({present_key(v) for v in DEFAULT_VARIANTS}) == len(DEFAULT_VARIANTS)


@pytest.fixture(scope="module")
def still(face_model: Path):
    with StillLandmarker(face_model) as landmarker:
        yield landmarker


def test_small_crop_landmarks_match_the_full_resolution_face(
    still: StillLandmarker, face_model: Path, one_face_video: Path
) -> None:
    """Cut the face from a 640x360 frame, shrink it to 48x48 gray (a FER2013-like crop): the
    landmarks, mapped back to the frame, land where the tracker puts them at full resolution."""
    cap = cv2.VideoCapture(str(one_face_video))
    ok, frame = cap.read()
    cap.release()
    assert ok
    with FaceTracker(face_model, mode="image", blendshapes=False) as tracker:
        (face,) = tracker.process(frame)
    x0, y0, x1, y1 = face.box.xyxy
    side = max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    crop = frame[top : top + int(side), left : left + int(side)]
    small = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), (48, 48), interpolation=cv2.INTER_AREA)
    marks, variant = still.detect(cv2.cvtColor(small, cv2.COLOR_GRAY2RGB))
    assert marks is not None and variant == 0
    back = marks * (crop.shape[1] / 48.0) + np.array([left, top])
    err = np.linalg.norm(back - face.landmarks, axis=1)
    assert np.median(err) < 0.03 * side  # within ~1.5 px of the 48x48 crop


def test_blank_and_junk_images_give_no_face(still: StillLandmarker) -> None:
    assert still.detect(np.zeros((48, 48, 3), np.uint8)) == (None, -1)
    junk = np.full((48, 48, 3), 230, np.uint8)
    cv2.putText(junk, "?", (12, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (60, 60, 60), 3)
    marks, status = still.detect(junk)
    assert marks is None and status == -1


def test_plausibility_check_refuses_tiny_faces(face_model: Path, fer_dir: Path) -> None:
    image = cv2.cvtColor(cv2.imread(str(sorted((fer_dir / "test" / "happy").glob("*.jpg"))[0])), cv2.COLOR_BGR2RGB)
    with StillLandmarker(face_model) as normal:
        marks, status = normal.detect(image)
    assert marks is not None and status == 0
    # Demand faces wider than the image itself: nothing can pass.
    with StillLandmarker(face_model, min_face=1.01) as strict:
        assert strict.detect(image) == (None, -1)
    # Force confirmation for every face: the first variant alone is not enough, a second agrees.
    with StillLandmarker(face_model, confirm_below=1.01) as confirming:
        confirmed, status = confirming.detect(image)
    assert confirmed is not None and status == 0 and np.abs(confirmed - marks).max() < 1e-4
    with pytest.raises(ValueError, match="at least one variant"):
        StillLandmarker(face_model, variants=())
