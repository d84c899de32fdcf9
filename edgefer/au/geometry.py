"""The AU ellipses of one face, in plain NumPy: readable, and the reference the Numba kernel is checked
against (the kernel in `edgefer.au.raster` computes the same ellipses from packed copies of the table).

Coordinates: landmarks are continuous pixel coordinates of the image the map is built for, the image
spanning [0, w] x [0, h] (MediaPipe's normalised coordinates times (w, h)). Pixel (row i, column j) is
sampled at its centre (j + 0.5, i + 0.5), the convention of cv2.resize, so scaling the landmarks by s
gives the map of the image resized by s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgefer.au.codebook import CODEBOOK, resolve_expression
from edgefer.au.mesh import LEFT_EYE_CORNERS, NUM_FACE_POINTS, RIGHT_EYE_CORNERS
from edgefer.au.regions import Shape, au_by_number

#: A face whose eye centres are closer than this (pixels) has no usable frame.
MIN_IOD_PX = 1e-3


@dataclass(frozen=True)
class FaceFrame:
    """The face's own axes: `x` along the eye line (image-left eye -> image-right eye), `y`
    perpendicular to it (down the face on an upright, unmirrored image), and its scale `iod`."""

    x: np.ndarray
    y: np.ndarray
    iod: float


@dataclass(frozen=True)
class Ellipse:
    """One AU ellipse in image pixels: centre, semi-axes along the face's x and y, and that x axis as
    (cos, sin) of its angle to the image x axis."""

    au: int
    cx: float
    cy: float
    ax: float
    ay: float
    cos: float
    sin: float

    @property
    def angle_deg(self) -> float:
        return float(np.degrees(np.arctan2(self.sin, self.cos)))


def prepare_landmarks(
    landmarks: np.ndarray | None,
    size: tuple[int, int],
    frame_size: tuple[int, int] | None = None,
) -> np.ndarray | None:
    """Landmarks as float64 (n, 2) in the pixel frame of `size`, or None when they are unusable.

    None for None, NaN or inf values (a failed detection). `frame_size` (h, w) is the frame the
    landmarks are in; when given and different from `size` they are scaled to `size`. A wrong shape
    is a caller bug and raises ValueError naming it.
    """
    if landmarks is None:
        return None
    arr = np.asarray(landmarks)
    if arr.ndim != 2 or arr.shape[0] < NUM_FACE_POINTS or arr.shape[1] < 2:
        raise ValueError(
            f"landmarks must be a (478, 2) array of mesh points (468 accepted; extra columns such as z "
            f"are ignored); got shape {arr.shape}"
        )
    h, w = check_size(size)
    pts = np.array(arr[:, :2], dtype=np.float64)
    if not np.isfinite(pts).all():
        return None
    if frame_size is not None:
        fh, fw = check_size(frame_size, "frame_size")
        pts *= (w / fw, h / fh)
    return pts


def check_size(size: tuple[int, int], name: str = "size") -> tuple[int, int]:
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (height, width); got {size!r}") from None
    if h <= 0 or w <= 0:
        raise ValueError(f"{name} must be positive (height, width); got {size!r}")
    return h, w


def face_frame(pts: np.ndarray) -> FaceFrame | None:
    """The face frame from the eye corners, or None when the eyes coincide (degenerate landmarks)."""
    left = pts[list(LEFT_EYE_CORNERS)].mean(axis=0)
    right = pts[list(RIGHT_EYE_CORNERS)].mean(axis=0)
    d = right - left
    iod = float(np.hypot(d[0], d[1]))
    if not iod > MIN_IOD_PX:
        return None
    x = d / iod
    return FaceFrame(x=x, y=np.array([-x[1], x[0]]), iod=iod)


def _semi_axis(pts: np.ndarray, frame: FaceFrame, shape: Shape, axis: int) -> float:
    base = shape.semi_axes[axis] * frame.iod
    span = shape.span_x if axis == 0 else shape.span_y
    if span is None:
        return base
    direction = frame.x if axis == 0 else frame.y
    a = pts[list(span[0])].mean(axis=0)
    b = pts[list(span[1])].mean(axis=0)
    extent = shape.span_scale * abs(float((b - a) @ direction)) + shape.pad[axis] * frame.iod
    return max(base, extent)


def au_ellipses(pts: np.ndarray, expression: int | str) -> list[Ellipse]:
    """Every ellipse of every AU of `expression` for landmarks `pts` (already prepared); [] for
    neutral or a degenerate face."""
    numbers = CODEBOOK[resolve_expression(expression)]
    frame = face_frame(pts)
    if frame is None or not numbers:
        return []
    out = []
    for number in numbers:
        for shape in au_by_number(number).shapes:
            c = pts[list(shape.centre)].mean(axis=0)
            out.append(
                Ellipse(
                    au=number,
                    cx=float(c[0]),
                    cy=float(c[1]),
                    ax=_semi_axis(pts, frame, shape, 0),
                    ay=_semi_axis(pts, frame, shape, 1),
                    cos=float(frame.x[0]),
                    sin=float(frame.x[1]),
                )
            )
    return out
