"""A straightforward NumPy rasterisation of the same AU maps, to check the Numba kernel against and to
measure it against (`edgefer bench aumap`).

It shares nothing with the kernel but the constants: the ellipses come from the readable geometry in
`edgefer.au.geometry` (the AU table walked in Python, not the packed arrays), and every ellipse is
evaluated over the whole pixel grid with array expressions. Same profile, same compositing, same
"no map" rules, so the two agree to float32 rounding.
"""

from __future__ import annotations

import numpy as np

from edgefer.au.codebook import CODEBOOK, resolve_expression
from edgefer.au.geometry import au_ellipses, check_size, face_frame, prepare_landmarks
from edgefer.au.raster import EDGE, MIN_CONTRAST


def reference_render(
    landmarks: np.ndarray | None, expression: int | str, size: tuple[int, int]
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(AU map, Ekman mask) of one face, or (None, None) where `au_map` gives None."""
    index = resolve_expression(expression)
    h, w = check_size(size)
    pts = prepare_landmarks(landmarks, (h, w))
    if pts is None or not CODEBOOK[index]:
        return None, None
    frame = face_frame(pts)
    if frame is None:
        return None, None
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    t_min = np.full((h, w), np.inf)
    mask = np.zeros((h, w), dtype=bool)
    for e in au_ellipses(pts, index):
        edge = min(EDGE * frame.iod, e.ax, e.ay)
        px, py = xs - e.cx, ys - e.cy
        u = px * e.cos + py * e.sin
        v = py * e.cos - px * e.sin
        q2 = (u / e.ax) ** 2 + (v / e.ay) ** 2
        q = np.sqrt(q2)
        grad = np.hypot(u / e.ax**2, v / e.ay**2)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(q < 1e-12, -min(e.ax, e.ay), (q - 1.0) * q / grad)
        d = np.where(q > 1.0, np.maximum(d, (q - 1.0) * min(e.ax, e.ay)), d)
        np.minimum(t_min, d / edge, out=t_min)
        mask |= q2 <= 1.0
    if not mask.any():
        return None, None
    x = np.clip(0.5 * (1.0 - t_min), 0.0, 1.0)
    blob = x * x * (3.0 - 2.0 * x)
    lo, hi = float(blob.min()), float(blob.max())
    if hi - lo < MIN_CONTRAST:
        return None, None
    return ((blob - lo) / (hi - lo)).astype(np.float32), mask


def reference_au_map(landmarks: np.ndarray | None, expression: int | str, size: tuple[int, int]
                     ) -> np.ndarray | None:
    """The NumPy twin of `edgefer.au.au_map` (landmarks in the pixel frame of `size`)."""
    return reference_render(landmarks, expression, size)[0]
