"""Geometry shared by an image and its AU map, and photometric jitter of the image alone.

One 2x3 affine per sample maps the stored image (e.g. 48x48) straight to the network input (e.g.
64x64): the resize and the random rotation / scale / shift / flip are composed so the image is
interpolated once. The AU map is built unaugmented at input size and warped with the augmentation
part of that same matrix, so the map stays on the face whatever the draw (decision: maps are built
directly at input size from scaled landmarks, sharper than resizing a 48x48 map).

Matrices use OpenCV's convention (pixel centres at integer coordinates). Landmarks are continuous
coordinates (pixel centres at +0.5), which is why `resize_matrix` carries the half-pixel terms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentParams:
    """Plain numbers (no pydantic) so the dataset pickles cheaply into DataLoader workers."""

    enabled: bool = True
    hflip: float = 0.5
    rotate_deg: float = 10.0
    scale: tuple[float, float] = (0.9, 1.1)
    translate: float = 0.08
    brightness: float = 0.3
    contrast: float = 0.3
    erase: float = 0.25
    #: Probability of each camera degradation (gamma, downscale, blur or sharpen, noise, JPEG).
    camera: float = 0.0


def resize_matrix(src_size: int, dst_size: int) -> np.ndarray:
    """2x3 affine taking pixel centres of a src x src image to those of the dst x dst resize."""
    s = dst_size / src_size
    return np.array([[s, 0.0, 0.5 * s - 0.5], [0.0, s, 0.5 * s - 0.5]], np.float64)


def _to3(m: np.ndarray) -> np.ndarray:
    return np.vstack([m, [0.0, 0.0, 1.0]])


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 affine applying `inner` first, then `outer`."""
    return (_to3(outer) @ _to3(inner))[:2]


def random_affine(rng: np.random.Generator, size: int, p: AugmentParams) -> np.ndarray:
    """A 2x3 affine of a size x size image: rotation, isotropic scale, shift, horizontal flip."""
    c = (size - 1) / 2.0
    angle = math.radians(rng.uniform(-p.rotate_deg, p.rotate_deg))
    scale = rng.uniform(p.scale[0], p.scale[1])
    tx, ty = rng.uniform(-p.translate, p.translate, size=2) * size
    flip = -1.0 if rng.random() < p.hflip else 1.0
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    # x' = R S F (x - c) + c + t, with F the flip about the centre.
    a = np.array([[cos * flip, -sin], [sin * flip, cos]])
    t = np.array([c + tx, c + ty]) - a @ np.array([c, c])
    return np.hstack([a, t[:, None]])


def photometric(image: np.ndarray, rng: np.random.Generator, p: AugmentParams) -> np.ndarray:
    """Brightness/contrast jitter and optional random erasing, on the image only (uint8 in and out)."""
    out = image.astype(np.float32)
    if p.contrast > 0:
        mean = out.mean()
        out = (out - mean) * rng.uniform(1 - p.contrast, 1 + p.contrast) + mean
    if p.brightness > 0:
        out = out * rng.uniform(1 - p.brightness, 1 + p.brightness)
    out = np.clip(out, 0, 255)
    if p.camera > 0:
        out = camera_degrade(out, rng, p.camera)
    if p.erase > 0 and rng.random() < p.erase:
        h, w = out.shape[:2]
        area = rng.uniform(0.02, 0.2) * h * w
        ratio = math.exp(rng.uniform(math.log(0.3), math.log(3.3)))
        eh = min(h, max(1, int(round(math.sqrt(area * ratio)))))
        ew = min(w, max(1, int(round(math.sqrt(area / ratio)))))
        y0 = int(rng.integers(0, h - eh + 1))
        x0 = int(rng.integers(0, w - ew + 1))
        out[y0 : y0 + eh, x0 : x0 + ew] = rng.uniform(0, 255, size=out[y0 : y0 + eh, x0 : x0 + ew].shape)
    return out.astype(np.uint8)


def camera_degrade(image: np.ndarray, rng: np.random.Generator, prob: float) -> np.ndarray:
    """What other cameras do to a face, each step with probability `prob` (float 0-255 in and out).

    Why: FER2013 is soft, low-contrast webcam/web imagery at 48 px; the faces edgefer meets at run
    time are sharper or blurrier, differently exposed, noisier and compressed differently. In camera
    order: exposure (gamma 0.6-1.6), a lower-resolution sensor or a distant face (down to 35-80%
    and back up), focus (Gaussian blur sigma 0.3-1.2) or in-camera sharpening (unsharp mask), sensor
    noise (sigma 1-8 grey levels), and JPEG compression (quality 25-90).
    """
    out = np.clip(image, 0, 255).astype(np.float32)
    h, w = out.shape[:2]
    if rng.random() < prob:
        gamma = math.exp(rng.uniform(math.log(0.6), math.log(1.6)))
        out = 255.0 * np.power(out / 255.0, gamma)
    if rng.random() < prob:
        f = rng.uniform(0.35, 0.8)
        small = cv2.resize(out, (max(8, int(round(w * f))), max(8, int(round(h * f)))), interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < prob:
        sigma = rng.uniform(0.3, 1.2)
        blurred = cv2.GaussianBlur(out, (0, 0), sigma)
        if rng.random() < 0.5:
            out = blurred
        else:  # unsharp mask: out + amount * (out - blur)
            out = out + rng.uniform(0.3, 1.5) * (out - blurred)
    if rng.random() < prob:
        out = out + rng.normal(0.0, rng.uniform(1.0, 8.0), size=out.shape).astype(np.float32)
    out = np.clip(out, 0, 255)
    if rng.random() < prob:
        ok, buf = cv2.imencode(".jpg", out.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 91))])
        decoded = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else None
        if decoded is not None:
            out = decoded.astype(np.float32).reshape(out.shape)
    return out


def warp_image(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Bilinear warp with reflected borders (no black wedges for the network to learn from)."""
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def warp_map(amap: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Bilinear warp of an AU map, zero outside (no AU evidence beyond the image)."""
    return cv2.warpAffine(amap, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
