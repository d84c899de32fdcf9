"""AU maps and Ekman masks on real MediaPipe landmarks (one-face video, FER2013 crops).

Landmarks come from the project's still-image landmarker (MediaPipe FaceLandmarker, IMAGE mode) on
frame 260 of WolfgangLanger_Pexels.mp4 (frontal: roll ~2 degrees, nose centred between the eyes)
cropped around the face, on the same crop enlarged 2x, and on FER2013 test crops.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgefer.au import au_map, au_maps, ekman_mask, to_ibug68
from edgefer.au.geometry import au_ellipses, prepare_landmarks
from edgefer.au.reference import reference_render
from edgefer.classes import EXPRESSIONS, FER2013_FOLDERS, INDEX, NEUTRAL

FRONTAL_FRAME = 260
EMOTIONS = tuple(range(1, len(EXPRESSIONS)))  # every class but neutral


@dataclass
class Faces:
    crop: np.ndarray  # BGR face crop of the frontal frame
    lm: np.ndarray  # its landmarks (478, 2), crop pixels
    lm_2x: np.ndarray  # landmarks MediaPipe found on the crop enlarged 2x (2x crop pixels)
    fer: list[tuple[np.ndarray, np.ndarray, int]]  # (48x48 gray image, landmarks, class index)


def _read_frame(path: Path, index: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    try:
        for _ in range(index):
            assert cap.grab(), f"{path} has fewer than {index} frames"
        ok, frame = cap.read()
    finally:
        cap.release()
    assert ok, f"cannot read frame {index} of {path}"
    return frame


@pytest.fixture(scope="module")
def faces(one_face_video: Path, fer_dir: Path, face_model: Path) -> Faces:
    from edgefer.tracking.still import StillLandmarker

    frame = _read_frame(one_face_video, FRONTAL_FRAME)
    with StillLandmarker(face_model) as landmarker:
        def detect(bgr: np.ndarray) -> np.ndarray:
            pts, _ = landmarker.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            assert pts is not None, "MediaPipe found no face"
            return pts.astype(np.float64)

        full = detect(frame)
        lo, hi = full.min(axis=0), full.max(axis=0)
        side = int(1.3 * (hi - lo).max())
        x0, y0 = (((lo + hi) / 2) - side / 2).astype(int)
        crop = np.ascontiguousarray(frame[y0:y0 + side, x0:x0 + side])
        lm = detect(crop)
        lm_2x = detect(cv2.resize(crop, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC))
        fer = []
        for folder in ("happy", "surprise", "disgust", "sad", "angry", "fear"):
            for path in sorted((fer_dir / "test" / folder).glob("*.jpg"))[:4]:
                gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
                pts, _ = landmarker.detect(cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB))
                if pts is not None:
                    fer.append((gray, pts.astype(np.float64), FER2013_FOLDERS[folder]))
                    break
    assert len(fer) == 6, "MediaPipe should find a face in one of the first 4 crops of each class"
    return Faces(crop, lm, lm_2x, fer)


def _size(img: np.ndarray) -> tuple[int, int]:
    return img.shape[0], img.shape[1]


def _rel_l1(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).sum() / max(a.sum(), 1e-9))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _value_at(amap: np.ndarray, pt: np.ndarray) -> float:
    """Map value at a continuous pixel position (nearest pixel)."""
    j, i = np.clip(np.floor(pt).astype(int), 0, [amap.shape[1] - 1, amap.shape[0] - 1])
    return float(amap[i, j])


# ---------------------------------------------------------------- the mesh <-> iBUG table, on a real face

def test_ibug_points_sit_where_ibug_puts_them(faces: Faces):
    p = to_ibug68(faces.lm)
    x, y = p[:, 0], p[:, 1]
    # Image-left points have smaller x than their image-right mirrors on a frontal face.
    for left, right in [(36, 45), (39, 42), (17, 26), (21, 22), (19, 24), (31, 35), (48, 54), (0, 16),
                        (4, 12), (6, 10), (37, 44), (41, 46), (59, 55)]:
        assert x[left] < x[right], (left, right)
    # Along each eye and brow from image-left to image-right; the lower jaw runs left to right
    # (its upper ends, 0-2 and 14-16, are near-vertical, so x may step back there, as in iBUG).
    assert x[36] < x[39] < x[42] < x[45]
    assert np.all(np.diff(x[17:27]) > 0)
    assert np.all(np.diff(x[3:14]) > 0)
    assert x[0:3].max() < x[4] and x[14:17].min() > x[12]
    # Vertical order: brows above eyes above nose tip above mouth above chin.
    eyes_y = y[36:48].mean()
    assert y[17:27].max() < eyes_y
    assert eyes_y < y[30] < y[51] < y[57] < y[8]
    assert min(y[48], y[54]) > y[39] and min(y[48], y[54]) > y[42], "mouth corners below the eyes"
    assert y[8] == y[0:17].max(), "the chin tip is the lowest jaw point"
    # Upper lids above lower lids; inner lip inside the outer lip.
    assert y[37] < y[41] and y[38] < y[40] and y[43] < y[47] and y[44] < y[46]
    assert y[51] < y[62] <= y[66] < y[57]


# ---------------------------------------------------------------- where the maps put their mass

def _mass_fractions(m: np.ndarray, lm: np.ndarray) -> tuple[float, float]:
    """(share of the map's mass in the lower half of the face, below the midpoint of forehead top
    (mesh 10) and chin (152); share within 0.6 IOD of a mouth corner)."""
    ys, xs = np.mgrid[0:m.shape[0], 0:m.shape[1]] + 0.5
    iod = np.linalg.norm(lm[[362, 263]].mean(axis=0) - lm[[33, 133]].mean(axis=0))
    near = np.zeros(m.shape, bool)
    for corner in (61, 291):
        near |= np.hypot(xs - lm[corner, 0], ys - lm[corner, 1]) < 0.6 * iod
    lower = ys > (lm[10, 1] + lm[152, 1]) / 2
    return float(m[lower].sum() / m.sum()), float(m[near].sum() / m.sum())


def test_happiness_mass_is_on_mouth_corners_and_cheeks(faces: Faces):
    """Measured on this face: 0.75 of the mass in the lower half, 0.83 near the mouth corners
    (surprise: 0.31 and 0.30, checked below so the thresholds mean something)."""
    lm, size = faces.lm, _size(faces.crop)
    m = au_map(lm, "happiness", size)
    assert m is not None and m.dtype == np.float32 and m.shape == size
    assert m.min() == 0.0 and m.max() == pytest.approx(1.0)
    lower, near_corners = _mass_fractions(m, lm)
    assert lower > 0.6, f"most happiness mass belongs to the lower face, got {lower:.2f}"
    assert near_corners > 0.6, f"most happiness mass is around the mouth corners, got {near_corners:.2f}"
    assert max(_mass_fractions(au_map(lm, "surprise", size), lm)) < 0.5
    eyes_y = lm[[33, 133, 362, 263], 1].mean()
    assert m[: int(eyes_y)].sum() / m.sum() < 0.02, "nothing above the eyes for happiness"
    for corner in (61, 291):  # mouth corners: AU12
        assert _value_at(m, lm[corner]) > 0.95
    for cheek in ((36, 205), (266, 425)):  # cheek apples: AU6
        assert _value_at(m, lm[list(cheek)].mean(axis=0)) > 0.95
    for elsewhere in (105, 334, 159, 386):  # brows and eyes are not part of happiness
        assert _value_at(m, lm[elsewhere]) < 0.05


def test_surprise_mass_is_on_brows_eyes_and_mouth(faces: Faces):
    lm, size = faces.lm, _size(faces.crop)
    m = au_map(lm, "surprise", size)
    assert m is not None
    for brow in (66, 296, 63, 293):  # AU1, AU2
        assert _value_at(m, lm[brow]) > 0.95
    for eye in ((33, 133, 159, 145), (362, 263, 386, 374)):  # AU5
        assert _value_at(m, lm[list(eye)].mean(axis=0)) > 0.9
    assert _value_at(m, lm[[0, 17]].mean(axis=0)) > 0.95  # AU26/27: the mouth
    for cheek in ((36, 205), (266, 425)):
        assert _value_at(m, lm[list(cheek)].mean(axis=0)) < 0.05
    assert _value_at(m, lm[152]) < 0.05  # chin


def test_every_expression_covers_its_au_centres_and_masks_match(faces: Faces):
    lm, size = faces.lm, _size(faces.crop)
    pts = prepare_landmarks(lm, size)
    for e in EMOTIONS:
        m = au_map(lm, e, size)
        mask = ekman_mask(lm, e, size)
        assert m is not None and mask is not None and mask.dtype == bool and mask.shape == size
        for ell in au_ellipses(pts, e):
            assert _value_at(m, np.array([ell.cx, ell.cy])) > 0.9, (EXPRESSIONS[e], ell.au)
            assert _value_at(mask.astype(np.float32), np.array([ell.cx, ell.cy])) == 1.0
        # Blobs are 0.5 on their ellipse boundary, so the mask is where the map is >= 0.5
        # (min 0 and max 1 here, so normalisation changes nothing); allow float32 ties.
        assert (mask != (m >= 0.5)).sum() <= 2
        assert 0.02 < mask.mean() < 0.5


def test_maps_are_left_right_symmetric_on_a_frontal_face(faces: Faces):
    """Mirror each map about the face's midline (through the eye centres' midpoint, perpendicular to
    the eye line) and compare. Measured on this face: relative L1 0.05-0.08 and mask IoU >= 0.92 for
    every expression; the tolerance (0.15 / 0.88) leaves room for the real face's own asymmetry."""
    lm, size = faces.lm, _size(faces.crop)
    left = lm[[33, 133]].mean(axis=0)
    right = lm[[362, 263]].mean(axis=0)
    mid = (left + right) / 2
    d = (right - left) / np.linalg.norm(right - left)
    reflect = np.eye(2) - 2 * np.outer(d, d)
    # In OpenCV's warp, integer coordinates are pixel centres (ours are at +0.5).
    shift = reflect @ (np.array([0.5, 0.5]) - mid) + mid - 0.5
    warp = np.hstack([reflect, shift[:, None]])

    def mirrored(a: np.ndarray) -> np.ndarray:
        return cv2.warpAffine(a.astype(np.float32), warp, (size[1], size[0]), flags=cv2.INTER_LINEAR)

    for e in EMOTIONS:
        m = au_map(lm, e, size)
        mask = ekman_mask(lm, e, size)
        assert _rel_l1(mirrored(m), m) < 0.15, EXPRESSIONS[e]
        assert _iou(mirrored(mask) > 0.5, mask) > 0.88, EXPRESSIONS[e]
    # And the test can fail: a map that is only the image-left AU12 blob is not symmetric.
    one_sided = au_map(lm, "happiness", size).copy()
    one_sided[:, int(mid[0]):] = 0
    assert _rel_l1(mirrored(one_sided), one_sided) > 0.5


def test_same_face_at_two_scales_gives_the_same_map(faces: Faces):
    """The crop enlarged 2x, landmarks found again by MediaPipe: the 2x map, area-downsampled, equals
    the 1x map within relative L1 0.06 (measured 0.016-0.020: MediaPipe's own jitter, mask IoU
    >= 0.96); with the landmarks scaled exactly, within 0.005 (measured 0.0004: pixel sampling only)."""
    lm, size = faces.lm, _size(faces.crop)
    size_2x = (2 * size[0], 2 * size[1])
    for e in EMOTIONS:
        m = au_map(lm, e, size)
        rerun = cv2.resize(au_map(faces.lm_2x, e, size_2x), (size[1], size[0]), interpolation=cv2.INTER_AREA)
        exact = cv2.resize(au_map(lm * 2, e, size_2x), (size[1], size[0]), interpolation=cv2.INTER_AREA)
        assert _rel_l1(rerun, m) < 0.06, EXPRESSIONS[e]
        assert _rel_l1(exact, m) < 0.005, EXPRESSIONS[e]
        assert _iou(ekman_mask(faces.lm_2x, e, size_2x)[::2, ::2], ekman_mask(lm, e, size)) > 0.9


def test_frame_size_scales_landmarks_to_the_map(faces: Faces):
    lm, size = faces.lm, _size(faces.crop)
    for e in (INDEX["fear"], INDEX["disgust"]):
        direct = au_map(lm * (28 / size[1], 28 / size[0]), e, (28, 28))
        via = au_map(lm, e, (28, 28), frame_size=size)
        np.testing.assert_allclose(via, direct, atol=1e-6)


def test_a_rotated_face_gets_the_rotated_map(faces: Faces):
    """Shapes follow the eye line: rotating the landmarks by 25 degrees about the image centre gives
    the map rotated the same way (rel. L1 < 0.01, measured 0.001: only resampling differs)."""
    lm, size = faces.lm, _size(faces.crop)
    centre = (size[1] / 2 - 0.5, size[0] / 2 - 0.5)
    rot = cv2.getRotationMatrix2D(centre, 25.0, 1.0)
    lm_rot = (lm - 0.5) @ rot[:, :2].T + rot[:, 2] + 0.5
    for e in EMOTIONS:
        m = au_map(lm, e, size)
        warped = cv2.warpAffine(m, rot, (size[1], size[0]), flags=cv2.INTER_LINEAR)
        m_rot = au_map(lm_rot, e, size)
        inside = cv2.warpAffine(np.ones_like(m), rot, (size[1], size[0])) > 0.99  # drop warped-in borders
        assert _rel_l1(warped * inside, m_rot * inside) < 0.01, EXPRESSIONS[e]


# ---------------------------------------------------------------- FER2013 crops

def test_fer2013_crops_get_maps_at_48x48(faces: Faces):
    for gray, lm, label in faces.fer:
        m = au_map(lm, label, (48, 48))
        assert m is not None and m.shape == (48, 48) and m.dtype == np.float32
        assert m.min() == 0.0 and m.max() == pytest.approx(1.0)
        # Built directly at 48x48 or at 4x and area-downsampled: the same map (measured rel. L1 <= 0.021).
        big = cv2.resize(au_map(lm * 4, label, (192, 192)), (48, 48), interpolation=cv2.INTER_AREA)
        assert _rel_l1(big, m) < 0.05
        if label == INDEX["happiness"]:
            ys = np.arange(48) + 0.5
            eyes_y = lm[[33, 133, 362, 263], 1].mean()
            assert m[ys > eyes_y].sum() / m.sum() > 0.9


# ---------------------------------------------------------------- no map

def test_no_map_cases(faces: Faces):
    lm, size = faces.lm, _size(faces.crop)
    assert au_map(lm, NEUTRAL, size) is None and ekman_mask(lm, "neutral", size) is None
    assert au_map(None, "happiness", size) is None and ekman_mask(None, "happiness", size) is None
    for bad in (np.nan, np.inf, -np.inf):
        broken = lm.copy()
        broken[100, 1] = bad
        assert au_map(broken, "happiness", size) is None
        assert ekman_mask(broken, "happiness", size) is None
    assert au_map(np.full_like(lm, np.nan), "surprise", size) is None
    assert au_map(lm + 10 * max(size), "happiness", size) is None, "all shapes outside the image"
    assert au_map(np.zeros_like(lm), "happiness", size) is None, "degenerate face (eyes coincide)"
    for absurd in (lm * 1e200, lm + 1e300, lm - 1e300):  # finite but absurd: no overflow, no map
        assert au_map(absurd, "fear", size) is None
    # A face half outside still has a map.
    assert au_map(lm - (size[1] / 2, 0), "happiness", size) is not None


def test_bad_inputs_raise_naming_the_problem(faces: Faces):
    lm, size = faces.lm, _size(faces.crop)
    with pytest.raises(ValueError, match="landmarks"):
        au_map(lm[:68], "happiness", size)
    with pytest.raises(ValueError, match="size"):
        au_map(lm, "happiness", (0, 48))
    with pytest.raises(ValueError, match="sadness"):
        au_map(lm, "contempt", size)
    with pytest.raises(ValueError, match="expression"):
        au_maps(lm[None], np.array([7]), size)
    with pytest.raises(ValueError, match="expressions"):
        au_maps(lm[None], np.array([1.0]), size)


# ---------------------------------------------------------------- batch, reference

def test_batch_matches_single_maps_and_flags_failures(faces: Faces):
    lms = np.stack([lm for _, lm, _ in faces.fer] + [faces.lm * 48 / faces.crop.shape[0]] * 3)
    exprs = np.array([label for _, _, label in faces.fer] + [NEUTRAL, 2, 3])
    lms[-1] = np.nan  # a failed detection
    maps, valid = au_maps(lms, exprs, (48, 48))
    assert maps.shape == (len(lms), 48, 48) and maps.dtype == np.float32 and valid.dtype == bool
    assert valid.tolist() == [True] * 6 + [False, True, False]
    assert not maps[~valid].any(), "invalid rows are zeros"
    for i in range(len(lms)):
        single = au_map(lms[i], int(exprs[i]), (48, 48))
        if valid[i]:
            np.testing.assert_allclose(maps[i], single, atol=1e-7)
        else:
            assert single is None
    empty_maps, empty_valid = au_maps(np.zeros((0, 478, 2)), np.zeros(0, dtype=int), (48, 48))
    assert empty_maps.shape == (0, 48, 48) and empty_valid.shape == (0,)


def test_numba_equals_the_numpy_reference(faces: Faces):
    cases = [(faces.lm, _size(faces.crop))] + [(lm, (48, 48)) for _, lm, _ in faces.fer]
    for lm, size in cases:
        for e in EMOTIONS:
            ref_map, ref_mask = reference_render(lm, e, size)
            np.testing.assert_allclose(au_map(lm, e, size), ref_map, atol=1e-5)
            np.testing.assert_array_equal(ekman_mask(lm, e, size), ref_mask)
    assert reference_render(faces.lm, NEUTRAL, (48, 48)) == (None, None)
