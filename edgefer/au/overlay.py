"""Drawing AU maps over images for a person to check by eye (`edgefer aumap`).

This is an inspection tool, not the runtime renderer (that one warps the model's attention back onto
video frames with Numba): plain OpenCV calls are fast enough for one image.
"""

from __future__ import annotations

import cv2
import numpy as np

from edgefer.au.geometry import Ellipse

#: BGR colour of the Ekman-mask tint and the region outlines.
MASK_COLOUR = (0, 200, 255)
OUTLINE_COLOUR = (255, 255, 255)


def overlay_map(image: np.ndarray, amap: np.ndarray, alpha: float = 0.6,
                colormap: int = cv2.COLORMAP_JET) -> np.ndarray:
    """Blend a [0, 1] map over a BGR image with the colour map, weighting each pixel's blend by the
    map itself so the face stays visible where the map is low (a flat alpha would tint it all blue)."""
    heat = cv2.applyColorMap(np.clip(amap * 255.0 + 0.5, 0, 255).astype(np.uint8), colormap)
    weight = (alpha * np.clip(amap, 0.0, 1.0))[..., None]
    out = image.astype(np.float32) * (1.0 - weight) + heat.astype(np.float32) * weight
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def overlay_mask(image: np.ndarray, mask: np.ndarray, alpha: float = 0.5,
                 colour: tuple[int, int, int] = MASK_COLOUR) -> np.ndarray:
    """Tint the pixels of a binary mask and draw its contour, to show the Ekman mask."""
    out = image.copy()
    tint = np.empty_like(out)
    tint[:] = colour
    blended = cv2.addWeighted(out, 1.0 - alpha, tint, alpha, 0.0)
    out[mask] = blended[mask]
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, colour, 1, cv2.LINE_AA)
    return out


def draw_outlines(image: np.ndarray, ellipses: list[Ellipse], colour: tuple[int, int, int] = OUTLINE_COLOUR,
                  label: bool = True) -> np.ndarray:
    """Draw each AU ellipse's boundary (sub-pixel, anti-aliased) and its AU number."""
    out = image.copy()
    shift = 4
    k = 1 << shift
    # Pixel centres sit at +0.5 in the map's convention; OpenCV's integer coordinates are centres.
    for e in ellipses:
        centre = (int(round((e.cx - 0.5) * k)), int(round((e.cy - 0.5) * k)))
        axes = (max(1, int(round(e.ax * k))), max(1, int(round(e.ay * k))))
        cv2.ellipse(out, centre, axes, e.angle_deg, 0, 360, colour, 1, cv2.LINE_AA, shift)
        if label and min(out.shape[:2]) >= 128:
            cv2.putText(out, str(e.au), (int(e.cx) + 2, int(e.cy) - 2), cv2.FONT_HERSHEY_SIMPLEX,
                        0.35, colour, 1, cv2.LINE_AA)
    return out


def draw_ibug68(image: np.ndarray, landmarks: np.ndarray, colour: tuple[int, int, int] = (0, 255, 0)) -> np.ndarray:
    """Draw the 68 mesh points that stand for iBUG-68 with their iBUG index: how the table in
    `edgefer.au.mesh` was checked by eye (numbers are legible from about 300 px of face height)."""
    from edgefer.au.mesh import to_ibug68

    out = image.copy()
    for k, (x, y) in enumerate(to_ibug68(landmarks)[:, :2]):
        p = (int(round(x - 0.5)), int(round(y - 0.5)))
        cv2.circle(out, p, 1, colour, -1, cv2.LINE_AA)
        cv2.putText(out, str(k), (p[0] + 2, p[1] - 2), cv2.FONT_HERSHEY_PLAIN, 0.7, colour, 1, cv2.LINE_AA)
    return out
