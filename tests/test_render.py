"""The Numba renderer against the OpenCV reference, and the annotation of whole frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgefer import render
from edgefer.classes import EXPRESSIONS
from edgefer.types import Box, Face, FacePrediction, Frame, FrameResult


def similarity(angle_deg: float, scale: float, centre: tuple[float, float], crop: tuple[int, int]) -> np.ndarray:
    """crop_to_frame: crop centre -> `centre`, rotated by angle, scaled."""
    a = np.deg2rad(angle_deg)
    r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) * scale
    hc, wc = crop
    t = np.asarray(centre) - r @ np.array([(wc - 1) / 2, (hc - 1) / 2])
    return np.hstack([r, t[:, None]])


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    rng = np.random.default_rng(1)
    base = cv2.GaussianBlur(rng.integers(0, 256, (360, 640, 3), dtype=np.uint8), (0, 0), 3)
    return np.ascontiguousarray(base)


CASES = [
    # angle, scale, centre, crop size (h, w), map size (h, w), colormap, opacity
    (0.0, 3.0, (320, 180), (48, 48), (12, 12), "turbo", 0.45),
    (17.0, 2.4, (200, 150), (48, 48), (7, 7), "jet", 0.5),
    (-35.0, 4.1, (420, 200), (112, 112), (14, 14), "turbo", 0.7),
    (90.0, 1.3, (620, 20), (64, 48), (16, 12), "turbo", 0.3),  # clipped by the frame corner
    (5.0, 0.8, (30, 340), (48, 48), (48, 48), "jet", 1.0),  # map already at crop size
]


@pytest.mark.parametrize("angle, scale, centre, crop, msize, cmap, alpha", CASES)
def test_numba_overlay_matches_opencv_within_two_levels(frame, angle, scale, centre, crop, msize, cmap, alpha):
    heat = np.random.default_rng(int(abs(angle)) + 3).random(msize).astype(np.float32) * 5 - 1
    m = similarity(angle, scale, centre, crop)
    ours = frame.copy()
    ref = frame.copy()
    touched = render.overlay_heatmap(ours, heat, m, crop, alpha, cmap)
    mask = render.overlay_heatmap_opencv(ref, heat, m, crop, alpha, cmap)
    assert touched > 0 and mask.sum() > 0
    region = render.footprint_mask(m, crop, frame.shape)
    # Same region: only pixels exactly on the crop's border may be decided differently
    # (float rounding of the inverse mapping); they are a tiny fraction of the region.
    disagree = region ^ mask
    assert disagree.sum() <= max(2, 0.0005 * mask.sum()), disagree.sum()
    both = region & mask
    diff = np.abs(ours.astype(int) - ref.astype(int)).max(axis=2)[both]
    # Within 2 grey levels, except where the map value sits on a colour-index rounding tie
    # (x.5 after scaling to 0..255: OpenCV's float32 rounds one way, the exact value the other),
    # which picks the neighbouring LUT colour: at most 1 pixel in 10^4, off by one LUT step.
    assert (diff > 2).mean() <= 1e-4, (diff > 2).sum()
    lut_step = np.abs(np.diff(render.colormap_lut(cmap).astype(int), axis=0)).max()
    assert diff.max() <= int(np.ceil(alpha * lut_step)) + 1
    # and nothing outside the region moved
    assert np.array_equal(ours[~region], frame[~region])


def test_overlay_really_changes_the_face_and_follows_the_map(frame):
    # A map hot on the left, cold on the right: the left half of the face turns red-ish (TURBO's top end).
    heat = np.zeros((8, 8), np.float32)
    heat[:, :4] = 1.0
    crop = (48, 48)
    m = similarity(0, 3.0, (320, 180), crop)
    out = frame.copy()
    render.overlay_heatmap(out, heat, m, crop, 1.0, "turbo")
    lut = render.colormap_lut("turbo")
    assert np.abs(out[180, 260].astype(int) - lut[255].astype(int)).max() <= 1  # left: hottest colour
    assert np.abs(out[180, 380].astype(int) - lut[0].astype(int)).max() <= 1  # right: coldest colour


def test_resize_bilinear_matches_cv2_resize():
    src = np.random.default_rng(2).random((7, 9)).astype(np.float32)
    for h, w in [(48, 48), (112, 96), (7, 9), (20, 30)]:
        ours = render.resize_bilinear(src, h, w)
        ref = cv2.resize(src, (w, h), interpolation=cv2.INTER_LINEAR)
        assert np.abs(ours - ref).max() < 1e-5


def test_colormap_lut_is_opencvs():
    ramp = np.arange(256, dtype=np.uint8).reshape(16, 16)
    for name, code in render.COLORMAPS.items():
        lut = render.colormap_lut(name)
        assert lut.shape == (256, 3) and lut.dtype == np.uint8
        assert np.array_equal(lut[ramp], cv2.applyColorMap(ramp, code))
    with pytest.raises(ValueError, match="unknown colormap"):
        render.colormap_lut("viridis-ish")


def test_normalize_map_edges():
    assert np.array_equal(render.normalize_map(np.full((3, 3), 7.0)), np.zeros((3, 3), np.float32))
    n = render.normalize_map(np.array([[1.0, 3.0], [2.0, np.nan]]))
    assert n.min() == 0.0 and n.max() == 1.0 and np.isfinite(n).all()
    with pytest.raises(ValueError, match="2-D"):
        render.normalize_map(np.zeros((2, 2, 2)))


def test_overlay_argument_errors(frame):
    with pytest.raises(ValueError, match="BGR uint8"):
        render.overlay_heatmap(frame.astype(np.float32), np.zeros((4, 4)), np.eye(2, 3), (4, 4))
    with pytest.raises(ValueError, match="2x3"):
        render.overlay_heatmap(frame.copy(), np.zeros((4, 4)), np.eye(3), (4, 4))
    with pytest.raises(ValueError, match="opacity"):
        render.overlay_heatmap(frame.copy(), np.zeros((4, 4)), np.eye(2, 3), (4, 4), opacity=1.5)
    # a crop entirely outside the frame touches nothing
    far = similarity(0, 1.0, (5000, 5000), (48, 48))
    img = frame.copy()
    assert render.overlay_heatmap(img, np.ones((4, 4)), far, (48, 48)) == 0
    assert np.array_equal(img, frame)


def _prediction(track_id: int, box: Box, crop_to_frame: np.ndarray, probs: np.ndarray) -> FacePrediction:
    face = Face(track_id=track_id, box=box, landmarks=np.zeros((478, 2), np.float32))
    heat = np.random.default_rng(track_id).random((12, 12)).astype(np.float32)
    return FacePrediction(face, probs, probs, heat, heat[::-1].copy(), crop_to_frame.astype(np.float32))


def test_render_frame_annotates_a_copy(frame):
    probs = np.array([0.05, 0.7, 0.05, 0.05, 0.05, 0.05, 0.05], np.float32)
    m = similarity(0, 3.0, (200, 180), (48, 48))
    pred = _prediction(3, Box(128, 108, 144, 144), m, probs)
    raw = frame.copy()
    result = FrameResult(Frame(0, 0.0, raw), [pred])
    out = render.render_frame(result, (48, 48), mode="attention", opacity=0.5, status="12.0 fps")
    assert np.array_equal(raw, frame), "the source frame must stay untouched"
    assert out.shape == frame.shape and out is not raw
    changed = (out != frame).any(axis=2)
    assert changed[108:252, 128:272].mean() > 0.9  # the heatmap covers the face crop
    assert changed[:40, :200].any()  # the FPS readout
    assert not changed[300:, 400:].any()  # far from the face and the text: untouched
    # cam and attention differ, off leaves the face pixels (inside the box, away from the border) alone
    cam = render.render_frame(result, (48, 48), mode="cam", opacity=0.5)
    off = render.render_frame(result, (48, 48), mode="off")
    assert not np.array_equal(cam[120:240, 140:260], out[120:240, 140:260])
    assert np.array_equal(off[140:230, 150:250], frame[140:230, 150:250])


def test_render_frame_without_faces_is_the_frame(frame):
    result = FrameResult(Frame(5, 0.2, frame.copy()), [])
    out = render.render_frame(result, (48, 48))
    assert np.array_equal(out, frame)
    with pytest.raises(ValueError, match="heatmap mode"):
        render.render_frame(result, (48, 48), mode="gradcam")


def test_label_names_every_class():
    assert render.SHORT_NAMES == tuple(n[:3] for n in EXPRESSIONS)
    assert len(set(render.SHORT_NAMES)) == len(EXPRESSIONS)
