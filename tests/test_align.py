"""The aligner: similarity fit, round trips, uprighting a rotated face, FER2013 framing."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgefer.align import (
    DEFAULT_INDICES,
    Aligner,
    _to_index_convention,
    apply_affine,
    framing_from_landmarks,
    map_to_frame,
    umeyama,
)
from edgefer.contract import Framing
from edgefer.tracking import FaceTracker
from edgefer.tracking.still import StillLandmarker

#: A plausible framing (eyes at 35% height, mouth at 75%) for tests that need one.
FRAMING = Framing(
    landmark_indices=(33, 263, 1, 61, 291),
    template=((0.30, 0.35), (0.70, 0.35), (0.50, 0.55), (0.36, 0.75), (0.64, 0.75)),
)


def synthetic_landmarks(
    center: tuple[float, float], scale: float, angle_deg: float, aspect: float = 1.0
) -> np.ndarray:
    """478 points whose framing points sit on FRAMING's template for a crop of width/height
    `aspect`, then rotated by `angle_deg`, scaled (crop height -> `scale` px) and moved."""
    marks = np.zeros((478, 2), np.float32)
    rng = np.random.default_rng(0)
    marks[:] = rng.uniform(-0.3, 0.3, (478, 2))
    for i, (x, y) in zip(FRAMING.landmark_indices, FRAMING.template):
        marks[i] = ((x - 0.5) * aspect, y - 0.5)
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (marks @ rot.T * scale + np.array(center)).astype(np.float32)


def test_umeyama_recovers_a_similarity() -> None:
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (9, 2))
    a, s, t = np.deg2rad(25), 1.7, np.array([12.0, -4.0])
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    dst = src @ (s * rot).T + t
    m = umeyama(src, dst)
    np.testing.assert_allclose(m[:, :2], s * rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], t, atol=1e-9)
    with pytest.raises(ValueError, match="degenerate"):
        umeyama(np.ones((5, 2)), src[:5])


def test_crop_round_trip_within_a_pixel() -> None:
    """A dot in the frame lands in the crop where frame_to_crop says, and maps back to where it was."""
    frame = np.full((360, 640, 3), 40, np.uint8)
    marks = synthetic_landmarks((300.0, 170.0), 150.0, angle_deg=20.0, aspect=96 / 112)
    dot = (331.0, 152.0)  # continuous coordinates (pixel 331 covers [331, 332))
    cv2.circle(frame, (331, 152), 2, (255, 255, 255), -1)  # centred on pixel 331 -> 331.5
    crop = Aligner(FRAMING, (112, 96)).crop(frame, marks)
    assert crop.image.shape == (112, 96, 3) and crop.image.dtype == np.uint8
    assert crop.frame_to_crop.dtype == np.float32 and crop.crop_to_frame.dtype == np.float32
    expected = apply_affine(crop.frame_to_crop, np.array([[dot[0] + 0.5, dot[1] + 0.5]]))[0]
    gray = crop.image[:, :, 0].astype(np.float64) - 40
    ys, xs = np.mgrid[0 : gray.shape[0], 0 : gray.shape[1]]
    found = np.array([(xs * gray).sum() / gray.sum(), (ys * gray).sum() / gray.sum()]) + 0.5
    assert np.linalg.norm(found - expected) < 0.25  # a half-pixel convention slip fails this
    # points: frame -> crop -> frame is the identity
    back = apply_affine(crop.crop_to_frame, apply_affine(crop.frame_to_crop, marks))
    np.testing.assert_allclose(back, marks, atol=1e-3)
    # template points land on the template
    in_crop = apply_affine(crop.frame_to_crop, marks[list(FRAMING.landmark_indices)])
    np.testing.assert_allclose(in_crop / [96, 112], np.array(FRAMING.template), atol=1e-4)


@pytest.mark.parametrize("angle", [0.0, 25.0])
def test_a_large_face_is_area_averaged_not_aliased(angle: float) -> None:
    """A face ~8x the crop: fine texture averages to its mean (a bilinear warp alone turns it into
    aliasing noise), and geometry is unchanged (a blob lands where frame_to_crop says)."""
    frame = np.zeros((1080, 1920, 3), np.uint8)
    frame[:, ::2] = 255  # 1-px stripes: pure high frequency, mean 127.5
    marks = synthetic_landmarks((957.3, 541.7), 433.0, angle_deg=angle)
    aligner = Aligner(FRAMING, (56, 56))
    crop = aligner.crop(frame, marks).image.astype(np.float64)
    naive = cv2.warpAffine(frame, _to_index_convention(aligner.transform(marks)), (56, 56), flags=cv2.INTER_LINEAR)
    assert abs(crop.mean() - 127.5) < 3 and crop.std() < 6, (crop.mean(), crop.std())
    assert naive.std() > 4 * crop.std() + 20  # what the antialiasing removes
    # geometry: a bright disk's centroid lands where the affine puts its centre
    frame[:] = 0
    cv2.circle(frame, (1010, 500), 40, (255, 255, 255), -1, lineType=cv2.LINE_AA)
    crop = aligner.crop(frame, marks)
    gray = crop.image[:, :, 0].astype(np.float64)
    ys, xs = np.mgrid[0:56, 0:56]
    found = np.array([(xs * gray).sum() / gray.sum(), (ys * gray).sum() / gray.sum()]) + 0.5
    expected = apply_affine(crop.frame_to_crop, np.array([[1010.5, 500.5]]))[0]
    assert np.linalg.norm(found - expected) < 0.2


@pytest.mark.parametrize("map_size", [(112, 96), (28, 24)])
def test_map_to_frame_puts_a_crop_peak_back(map_size: tuple[int, int]) -> None:
    marks = synthetic_landmarks((300.0, 170.0), 150.0, angle_deg=-15.0)
    crop = Aligner(FRAMING, (112, 96)).crop(np.zeros((360, 640, 3), np.uint8), marks)
    mh, mw = map_size
    heat = np.zeros(map_size, np.float32)
    heat[mh // 3, mw // 4] = 1.0  # peak at map pixel centre (mw//4 + .5, mh//3 + .5)
    frame_map = map_to_frame(heat, crop.crop_to_frame, (360, 640, 3), crop_size=(112, 96))
    assert frame_map.shape == (360, 640) and frame_map.dtype == np.float32
    peak_crop = np.array([(mw // 4 + 0.5) * 96 / mw, (mh // 3 + 0.5) * 112 / mh])
    expected = apply_affine(crop.crop_to_frame, peak_crop[None])[0]
    ys, xs = np.mgrid[0:360, 0:640]
    found = np.array([(xs * frame_map).sum(), (ys * frame_map).sum()]) / frame_map.sum() + 0.5
    assert np.linalg.norm(found - expected) < 0.25
    # far away from the face the map is zero
    assert frame_map[:20, :20].max() == 0 and frame_map[-20:, -20:].max() == 0


def test_crop_batch_matches_single_crops() -> None:
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 255, (360, 640, 3), dtype=np.uint8)
    sets = [synthetic_landmarks((200.0, 180.0), 120.0, 10.0), synthetic_landmarks((450.0, 170.0), 90.0, -5.0)]
    aligner = Aligner(FRAMING, (64, 64))
    batch, crops = aligner.crop_batch(frame, sets)
    assert batch.shape == (2, 64, 64, 3) and batch.dtype == np.uint8
    for i, marks in enumerate(sets):
        single = aligner.crop(frame, marks)
        np.testing.assert_array_equal(batch[i], single.image)
        np.testing.assert_array_equal(crops[i].image, single.image)
        np.testing.assert_allclose(crops[i].crop_to_frame, single.crop_to_frame)
    empty, none = aligner.crop_batch(frame, [])
    assert empty.shape == (0, 64, 64, 3) and none == []


def test_bad_input_is_refused() -> None:
    aligner = Aligner(FRAMING, (48, 48))
    frame = np.zeros((100, 100, 3), np.uint8)
    with pytest.raises(ValueError, match=r"\(478, 2\)"):
        aligner.crop(frame, np.zeros((68, 2), np.float32))
    marks = synthetic_landmarks((50.0, 50.0), 40.0, 0.0)
    marks[33] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        aligner.crop(frame, marks)
    with pytest.raises(ValueError, match="BGR uint8"):
        aligner.crop(frame.astype(np.float32), synthetic_landmarks((50.0, 50.0), 40.0, 0.0))
    with pytest.raises(ValueError, match="height, width"):
        Aligner(FRAMING, (0, 48))
    with pytest.raises(ValueError, match=r"\(h, w\)"):
        map_to_frame(np.zeros((2, 2, 2, 2)), np.eye(2, 3), (10, 10))


def test_rotated_face_is_uprighted(face_model: Path, one_face_video: Path) -> None:
    cap = cv2.VideoCapture(str(one_face_video))
    ok, frame = cap.read()
    cap.release()
    assert ok
    h, w = frame.shape[:2]
    # Rotate by 30 degrees about the centre, on a canvas big enough to keep the face.
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), 30, 1.0)
    rotated = cv2.warpAffine(frame, rot, (w, h), borderMode=cv2.BORDER_REFLECT)
    with FaceTracker(face_model, mode="image", blendshapes=False) as tracker:
        upright = tracker.process(frame)
        tilted = tracker.process(rotated)
    assert len(upright) == 1 and len(tilted) == 1
    tilted_marks = tilted[0].landmarks
    eye_angle = np.degrees(np.arctan2(*(tilted_marks[263] - tilted_marks[33])[::-1]))
    assert abs(eye_angle) > 20  # the input face really is tilted
    aligner = Aligner(FRAMING, (128, 128))
    a = aligner.crop(frame, upright[0].landmarks)
    b = aligner.crop(rotated, tilted_marks)
    eyes = apply_affine(b.frame_to_crop, tilted_marks[[33, 263]])
    assert abs(np.degrees(np.arctan2(*(eyes[1] - eyes[0])[::-1]))) < 3.0
    ga = cv2.cvtColor(a.image, cv2.COLOR_BGR2GRAY).astype(np.float64).ravel()
    gb = cv2.cvtColor(b.image, cv2.COLOR_BGR2GRAY).astype(np.float64).ravel()
    assert np.corrcoef(ga, gb)[0, 1] > 0.9  # the same upright face


def test_fer_mean_template_reproduces_fer_crops(face_model: Path, fer_dir: Path) -> None:
    paths = sorted((fer_dir / "test" / "happy").glob("*.jpg"))[:40]
    images, sets = [], []
    with StillLandmarker(face_model) as still:
        for p in paths:
            img = cv2.imread(str(p))
            marks, _ = still.detect(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
            images.append(img)
            sets.append(np.full((478, 2), np.nan, np.float32) if marks is None else marks)
    stack = np.stack(sets)
    framing = framing_from_landmarks(stack, (48, 48))
    assert framing.landmark_indices == DEFAULT_INDICES
    tpl = np.array(framing.template)
    assert np.all((tpl > 0.05) & (tpl < 1.0))
    assert tpl[0, 0] < tpl[3, 0] and tpl[6, 1] > tpl[0, 1] and tpl[8, 1] > tpl[6, 1]  # eyes, mouth, chin
    # FER2013 crops vary (median face framing is the template, single faces are tilted by up to
    # ~20 degrees), so: the fitted transforms are centred on the identity, crops of faces framed
    # like the mean come out nearly unchanged, and re-cutting makes the framing points agree.
    aligner = Aligner(framing, (48, 48))
    found = [(img, marks) for img, marks in zip(images, sets) if not np.isnan(marks).any()]
    assert len(found) >= 36
    scales, angles, shifts, corrs, aligned = [], [], [], [], []
    for img, marks in found:
        crop = aligner.crop(img, marks)
        m = crop.frame_to_crop.astype(np.float64)
        scales.append(np.sqrt(np.linalg.det(m[:, :2])))
        angles.append(np.degrees(np.arctan2(m[1, 0], m[0, 0])))
        shifts.append(np.linalg.norm(apply_affine(m, np.array([[24.0, 24.0]]))[0] - 24.0))
        corrs.append(np.corrcoef(crop.image[:, :, 0].ravel(), img[:, :, 0].ravel())[0, 1])
        aligned.append(apply_affine(m, marks[list(DEFAULT_INDICES)]))
    scales, angles, corrs = np.array(scales), np.array(angles), np.array(corrs)
    assert 0.85 < np.median(scales) < 1.15 and abs(np.median(angles)) < 5 and np.median(shifts) < 4
    near = (np.abs(angles) < 5) & (np.abs(scales - 1) < 0.08)
    assert near.sum() >= 4 and np.median(corrs[near]) > 0.8
    raw_spread = np.stack([marks[list(DEFAULT_INDICES)] for _, marks in found]).std(axis=0).mean()
    assert np.stack(aligned).std(axis=0).mean() < 0.5 * raw_spread
    with pytest.raises(ValueError, match="no landmark set"):
        framing_from_landmarks(np.full((3, 478, 2), np.nan), (48, 48))
