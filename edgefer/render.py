"""Rendering: the model's attention (or CAM) heatmap warped back onto each face, plus labels.

The heatmap overlay is the hot part (it touches every pixel of every face, every frame), so it is
one fused Numba kernel per face: for each frame pixel inside the face's crop region, map it back
into crop space with the inverse affine (`frame_to_crop`), sample the map bilinearly, look the
value up in a colour LUT (TURBO or JET, taken from OpenCV so the colours are identical) and
alpha-blend it into the frame in place. The OpenCV way does the same in five passes with four
temporary images (resize, warpAffine of the map and of a mask, applyColorMap, addWeighted, masked
copy); `overlay_heatmap_opencv` keeps that version as the reference the tests and
`edgefer bench render` compare against (within 2 grey levels).

Decisions:
- The map is first upsampled to the crop size (bilinear, OpenCV's half-pixel convention), then
  warped: the heatmap lands exactly where the model looked in its input crop.
- Each map is min-max normalised per face (the map's own range -> the full colour range): it
  shows where *this* face's attention is relatively high; absolute values are not comparable
  between faces or models, so they are not shown. A flat map renders as the LUT's lowest colour.
- The overlay covers the crop region (the model's whole field of view), not only the face oval:
  an explanation that hid where the model looked outside the face would not be honest.
- Kernels compile lazily on first use with `cache=True` (compiled once per machine) and release
  the GIL (`nogil=True`), so rendering runs beside tracking and encoding in the pipeline threads.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cache

import cv2
import numpy as np
from numba import njit

from edgefer.classes import EXPRESSIONS
from edgefer.live import DEFAULT_HEATMAP, DEFAULT_OPACITY, HEATMAP_MODES, HeatmapMode
from edgefer.types import FacePrediction, FrameResult

log = logging.getLogger(__name__)

COLORMAPS = {"turbo": cv2.COLORMAP_TURBO, "jet": cv2.COLORMAP_JET}

#: Distinct BGR colours per track id (Okabe-Ito-like palette, readable over video).
PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 159, 230),
    (178, 114, 0),
    (115, 158, 0),
    (66, 228, 240),
    (0, 94, 213),
    (167, 121, 204),
    (233, 180, 86),
    (255, 255, 255),
)
SHORT_NAMES: tuple[str, ...] = tuple(name[:3] for name in EXPRESSIONS)


@cache
def colormap_lut(name: str = "turbo") -> np.ndarray:
    """(256, 3) uint8 BGR lookup table of an OpenCV colour map (read-only)."""
    if name not in COLORMAPS:
        raise ValueError(f"unknown colormap {name!r}; use one of {sorted(COLORMAPS)}")
    ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
    lut = cv2.applyColorMap(ramp, COLORMAPS[name]).reshape(256, 3).copy()
    lut.setflags(write=False)
    return lut


def normalize_map(heat: np.ndarray) -> np.ndarray:
    """Min-max normalise a map to float32 [0, 1]; a flat (or non-finite) map gives zeros."""
    h = np.asarray(heat, dtype=np.float32)
    if h.ndim != 2:
        raise ValueError(f"heatmap must be 2-D (h, w), got shape {h.shape}")
    finite = np.isfinite(h)
    if not finite.all():
        h = np.where(finite, h, np.nanmin(np.where(finite, h, np.inf)) if finite.any() else 0.0).astype(np.float32)
    lo, hi = float(h.min()), float(h.max())
    if not hi - lo > 1e-12:
        return np.zeros_like(h)
    return ((h - lo) / (hi - lo)).astype(np.float32)


# ------------------------------------------------------------------------------------------
# Numba kernels
# ------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _source_tap(f: float, n: int) -> tuple[int, float]:  # pragma: no cover - jit
    """Left source index and right-neighbour weight of coordinate `f` on an axis of `n` pixels,
    clamped at both borders (cv2.resize INTER_LINEAR's replicate behaviour)."""
    i0 = int(np.floor(f))
    w = f - i0
    if i0 < 0:
        return 0, 0.0
    if i0 >= n - 1:
        return n - 1, 0.0
    return i0, w


@njit(cache=True, nogil=True)
def resize_bilinear(src: np.ndarray, out_h: int, out_w: int) -> np.ndarray:  # pragma: no cover - jit
    """Bilinear resize of a float32 map with cv2.resize(INTER_LINEAR)'s half-pixel convention."""
    in_h, in_w = src.shape
    out = np.empty((out_h, out_w), dtype=np.float32)
    sy_scale = in_h / out_h
    sx_scale = in_w / out_w
    for y in range(out_h):
        y0, wy = _source_tap((y + 0.5) * sy_scale - 0.5, in_h)
        y1 = min(y0 + 1, in_h - 1)
        for x in range(out_w):
            x0, wx = _source_tap((x + 0.5) * sx_scale - 0.5, in_w)
            x1 = min(x0 + 1, in_w - 1)
            top = src[y0, x0] * (1.0 - wx) + src[y0, x1] * wx
            bot = src[y1, x0] * (1.0 - wx) + src[y1, x1] * wx
            out[y, x] = top * (1.0 - wy) + bot * wy
    return out


@njit(cache=True, nogil=True)
def _row_span(a: float, b: float, lo_v: float, hi_v: float, lo: float, hi: float):  # pragma: no cover - jit
    """Intersect [lo, hi] with {x : lo_v <= a*x + b <= hi_v}."""
    if abs(a) < 1e-12:
        if b < lo_v or b > hi_v:
            return 1.0, 0.0
        return lo, hi
    x_a = (lo_v - b) / a
    x_b = (hi_v - b) / a
    if x_a > x_b:
        x_a, x_b = x_b, x_a
    return max(lo, x_a), min(hi, x_b)


@njit(cache=True, nogil=True, fastmath=True)
def blend_warped_heatmap(
    image: np.ndarray,
    heat: np.ndarray,
    frame_to_crop: np.ndarray,
    lut: np.ndarray,
    alpha: float,
    x0: int,
    y0: int,
    x1: int,
    y1: int,
) -> int:  # pragma: no cover - jit
    """Blend `heat` (crop-space float32 [0,1], (hc, wc)) into `image` in place; returns pixels touched.

    For each pixel (x, y) of the box [x0, x1) x [y0, y1) whose crop coordinates fall inside
    [0, wc-1] x [0, hc-1], sample `heat` bilinearly, colour it with `lut` and blend with `alpha`.
    The inside test is solved per row as an interval, so pixels outside the (rotated) crop are
    never visited. The blend runs in 8-bit fixed point (alpha in 1/256 steps, LUT premultiplied
    once per call): integer arithmetic on the hot path, within one grey level of float blending.
    """
    hc, wc = heat.shape
    m00 = frame_to_crop[0, 0]
    m01 = frame_to_crop[0, 1]
    m02 = frame_to_crop[0, 2]
    m10 = frame_to_crop[1, 0]
    m11 = frame_to_crop[1, 1]
    m12 = frame_to_crop[1, 2]
    a = int(alpha * 256.0 + 0.5)
    keep = 256 - a
    lut_a = np.empty((256, 3), np.int32)  # lut * a + rounding, premultiplied once
    for i in range(256):
        for c in range(3):
            lut_a[i, c] = lut[i, c] * a + 128
    wmax = wc - 1.0
    hmax = hc - 1.0
    touched = 0
    for y in range(y0, y1):
        bx = m01 * y + m02
        by = m11 * y + m12
        lo, hi = _row_span(m00, bx, 0.0, wmax, float(x0), float(x1 - 1))
        lo, hi = _row_span(m10, by, 0.0, hmax, lo, hi)
        if lo > hi:
            continue
        xs = int(np.ceil(lo - 1e-9))
        xe = int(np.floor(hi + 1e-9))
        for x in range(xs, xe + 1):
            # clamp: guards the ends of the span against rounding
            cx = min(max(m00 * x + bx, 0.0), wmax)
            cy = min(max(m10 * x + by, 0.0), hmax)
            ix = int(cx)
            iy = int(cy)
            fx = cx - ix
            fy = cy - iy
            ix1 = ix + 1 if ix + 1 < wc else ix
            iy1 = iy + 1 if iy + 1 < hc else iy
            top = heat[iy, ix] + (heat[iy, ix1] - heat[iy, ix]) * fx
            bot = heat[iy1, ix] + (heat[iy1, ix1] - heat[iy1, ix]) * fx
            v = top + (bot - top) * fy
            idx = min(max(int(v * 255.0 + 0.5), 0), 255)
            for c in range(3):
                image[y, x, c] = (image[y, x, c] * keep + lut_a[idx, c]) >> 8
            touched += 1
    return touched


# ------------------------------------------------------------------------------------------
# Overlay API
# ------------------------------------------------------------------------------------------
def _as_affine(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    if m.shape != (2, 3):
        raise ValueError(f"affine matrix must be 2x3, got shape {m.shape}")
    return m


def crop_region(
    crop_to_frame: np.ndarray, crop_size: tuple[int, int], frame_shape: Sequence[int]
) -> tuple[int, int, int, int] | None:
    """Integer box (x0, y0, x1, y1) covering the crop's footprint in the frame, clipped; None if outside."""
    hc, wc = crop_size
    m = _as_affine(crop_to_frame)
    corners = np.array([[0, 0, 1], [wc - 1, 0, 1], [0, hc - 1, 1], [wc - 1, hc - 1, 1]], dtype=np.float64)
    pts = corners @ m.T
    x0 = max(int(np.floor(pts[:, 0].min())), 0)
    y0 = max(int(np.floor(pts[:, 1].min())), 0)
    x1 = min(int(np.ceil(pts[:, 0].max())) + 1, int(frame_shape[1]))
    y1 = min(int(np.ceil(pts[:, 1].max())) + 1, int(frame_shape[0]))
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def footprint_mask(crop_to_frame: np.ndarray, crop_size: tuple[int, int], frame_shape: Sequence[int]) -> np.ndarray:
    """Boolean (H, W): the frame pixels the overlay covers (crop coords inside [0, w-1] x [0, h-1]).

    The region `overlay_heatmap` blends, computed plainly with NumPy (for tests and benchmarks).
    """
    inv = cv2.invertAffineTransform(_as_affine(crop_to_frame))
    h, w = int(frame_shape[0]), int(frame_shape[1])
    yy, xx = np.mgrid[0:h, 0:w]
    cx = inv[0, 0] * xx + inv[0, 1] * yy + inv[0, 2]
    cy = inv[1, 0] * xx + inv[1, 1] * yy + inv[1, 2]
    eps = 1e-9
    return (cx >= -eps) & (cy >= -eps) & (cx <= crop_size[1] - 1 + eps) & (cy <= crop_size[0] - 1 + eps)


def overlay_heatmap(
    image: np.ndarray,
    heat: np.ndarray,
    crop_to_frame: np.ndarray,
    crop_size: tuple[int, int],
    opacity: float = DEFAULT_OPACITY,
    colormap: str = "turbo",
    normalize: bool = True,
) -> int:
    """Blend one face's map into `image` (BGR uint8, in place) with the Numba kernel.

    `heat` is the model's map (any size, e.g. the attention layer's 7x7); `crop_to_frame` maps
    crop pixels (crop of `crop_size` = (h, w)) into the frame. Returns the pixels touched.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or not image.flags.c_contiguous:
        raise ValueError(f"image must be a C-contiguous BGR uint8 (H, W, 3) array, got {image.dtype} {image.shape}")
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    m = _as_affine(crop_to_frame)
    region = crop_region(m, crop_size, image.shape)
    if region is None or opacity == 0.0:
        return 0
    h = normalize_map(heat) if normalize else np.ascontiguousarray(heat, dtype=np.float32)
    hc, wc = int(crop_size[0]), int(crop_size[1])
    h_crop = h if h.shape == (hc, wc) else resize_bilinear(np.ascontiguousarray(h), hc, wc)
    inv = cv2.invertAffineTransform(m)
    x0, y0, x1, y1 = region
    return int(blend_warped_heatmap(image, h_crop, inv, colormap_lut(colormap), float(opacity), x0, y0, x1, y1))


def overlay_heatmap_opencv(
    image: np.ndarray,
    heat: np.ndarray,
    crop_to_frame: np.ndarray,
    crop_size: tuple[int, int],
    opacity: float = DEFAULT_OPACITY,
    colormap: str = "turbo",
    normalize: bool = True,
) -> np.ndarray:
    """The same overlay with plain OpenCV calls (the reference); returns the region mask used.

    resize -> warpAffine (map and an all-ones mask) -> applyColorMap -> addWeighted -> masked copy.
    """
    m = _as_affine(crop_to_frame)
    region = crop_region(m, crop_size, image.shape)
    if region is None:
        return np.zeros(image.shape[:2], dtype=bool)
    hc, wc = int(crop_size[0]), int(crop_size[1])
    h = normalize_map(heat) if normalize else np.asarray(heat, dtype=np.float32)
    h_crop = h if h.shape == (hc, wc) else cv2.resize(h, (wc, hc), interpolation=cv2.INTER_LINEAR)
    x0, y0, x1, y1 = region
    mr = m.copy()
    mr[0, 2] -= x0
    mr[1, 2] -= y0
    size = (x1 - x0, y1 - y0)
    warped = cv2.warpAffine(h_crop, mr, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    ones = np.ones((hc, wc), dtype=np.float32)
    inside = cv2.warpAffine(ones, mr, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0.999
    colour = cv2.applyColorMap(cv2.convertScaleAbs(warped, alpha=255.0), COLORMAPS[colormap])
    roi = image[y0:y1, x0:x1]
    blended = cv2.addWeighted(roi, 1.0 - opacity, colour, opacity, 0.0)
    np.copyto(roi, blended, where=inside[..., None])
    mask = np.zeros(image.shape[:2], dtype=bool)
    mask[y0:y1, x0:x1] = inside
    return mask


def warmup() -> None:
    """Compile (or load from cache) the kernels now, so the first frame is not slow."""
    img = np.zeros((8, 8, 3), np.uint8)
    overlay_heatmap(img, np.random.default_rng(0).random((3, 3)).astype(np.float32), np.eye(2, 3), (4, 4))


# ------------------------------------------------------------------------------------------
# labels, boxes, bars
# ------------------------------------------------------------------------------------------
def track_color(track_id: int) -> tuple[int, int, int]:
    return PALETTE[int(track_id) % len(PALETTE)]


def _text(image: np.ndarray, text: str, org: tuple[int, int], scale: float, color, thickness: int = 1) -> None:
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, thickness, cv2.LINE_AA)


def draw_face(image: np.ndarray, pred: FacePrediction, bars: bool = True) -> None:
    """Box, `#id expression 87%` label and the seven probability bars of one face."""
    H, W = image.shape[:2]
    color = track_color(pred.face.track_id)
    b = pred.face.box
    x0, y0 = int(round(b.x)), int(round(b.y))
    x1, y1 = int(round(b.x + b.w)), int(round(b.y + b.h))
    line = max(12, H // 32)
    scale = line / 26.0
    thick = 1 if H < 720 else 2
    cv2.rectangle(image, (x0, y0), (x1, y1), color, thick + 1, cv2.LINE_AA)
    # label on a filled tag in the track's colour, text black or white for contrast
    known = pred.has_estimate  # NaN from the model: the box and id, no expression, no bars
    label = f"#{pred.face.track_id} " + (f"{EXPRESSIONS[pred.label_index]} {pred.confidence:.0%}" if known else "?")
    (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale * 1.1, thick)
    tag_h = th + base + 6
    ty0 = y0 - tag_h if y0 - tag_h >= 0 else min(y1, H - tag_h)
    tx0 = min(max(x0, 0), max(W - tw - 8, 0))
    cv2.rectangle(image, (tx0, ty0), (tx0 + tw + 8, ty0 + tag_h), color, -1)
    ink = (0, 0, 0) if (0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2]) > 140 else (255, 255, 255)
    cv2.putText(image, label, (tx0 + 4, ty0 + th + 3), cv2.FONT_HERSHEY_SIMPLEX, scale * 1.1, ink, thick, cv2.LINE_AA)
    if not bars or not known:
        return
    bar_w = max(40, W // 12)
    label_w = int(line * 1.6)
    panel_w = label_w + bar_w + 6
    panel_h = line * len(EXPRESSIONS) + 6
    px = x1 + 6 if x1 + 6 + panel_w <= W else x0 - 6 - panel_w
    px = min(max(px, 0), max(W - panel_w, 0))
    py = min(max(y0, 0), max(H - panel_h, 0))
    roi = image[py : py + panel_h, px : px + panel_w]
    roi //= 3  # darken the panel background (readable over any video) without a second image
    top = pred.label_index
    for i, (name, p) in enumerate(zip(SHORT_NAMES, pred.probs, strict=True)):
        yy = py + 3 + i * line
        _text(image, name, (px + 2, yy + line - 3), scale * 0.8, (255, 255, 255) if i == top else (200, 200, 200))
        length = int(round(float(p) * bar_w))
        if length > 0:
            fill = color if i == top else (170, 170, 170)
            cv2.rectangle(image, (px + label_w, yy + 2), (px + label_w + length, yy + line - 2), fill, -1)


def draw_status(image: np.ndarray, text: str) -> None:
    """The FPS/status readout in the top-left corner."""
    H, W = image.shape[:2]
    line = max(12, H // 30)
    scale = line / 26.0
    thick = 1 if H < 720 else 2
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    roi = image[0 : min(th + base + 8, H), 0 : min(tw + 12, W)]
    roi //= 4  # dark backdrop: readable over any video
    cv2.putText(image, text, (6, th + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)


def render_frame(
    result: FrameResult,
    crop_size: tuple[int, int] | None,
    *,
    mode: HeatmapMode = DEFAULT_HEATMAP,
    opacity: float = DEFAULT_OPACITY,
    colormap: str = "turbo",
    status: str | None = None,
    bars: bool = True,
) -> np.ndarray:
    """The annotated copy of `result.frame.image` (the source frame itself stays untouched).

    `mode`: "attention", "cam" (falls back to attention for faces without a CAM) or "off".
    """
    if mode not in HEATMAP_MODES:
        raise ValueError(f"heatmap mode must be one of {', '.join(HEATMAP_MODES)}, not {mode!r}")
    out = np.ascontiguousarray(result.frame.image).copy()
    if mode != "off" and crop_size is not None and opacity > 0:
        for pred in result.predictions:
            heat = pred.cam if (mode == "cam" and pred.cam is not None) else pred.attention
            if heat is not None and np.isfinite(heat).all():  # a NaN map (a broken model) is not drawn
                overlay_heatmap(out, heat, pred.crop_to_frame, crop_size, opacity, colormap)
    for pred in result.predictions:
        draw_face(out, pred, bars=bars)
    if status:
        draw_status(out, status)
    return out
