"""Piecewise-affine warp of per-face maps onto one standard face layout (the study's standardisation).

Why: averaging heatmaps of different faces in crop coordinates blurs them by every face's own
position and shape; the human-likeness study (arXiv 2401.11835) warped each heatmap onto a common
face with landmarks and a triangulation first. Here:
- the standard layout is the mean MediaPipe mesh (468 points, irises left out) of the faces studied,
  in crop-fraction coordinates scaled to a `size` x `size` square;
- eight anchors on a square frame one half crop outside the crop (its corners and edge midpoints,
  at the same relative place for every face) are added, so the whole crop is covered, background
  included, and no face's mesh pokes out of the triangulation;
- the mean layout is triangulated once (Delaunay, `cv2.Subdiv2D`); every pixel of the standard
  square gets its triangle and barycentric coordinates once;
- a face's map is then sampled, for every standard pixel, at the same barycentric combination of the
  face's own triangle corners: exactly the triangle-by-triangle affine warp, done as one `cv2.remap`.
`coverage` says which standard pixels sampled inside the face's crop (the rest are 0 and are left out
of means through it).
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

log = logging.getLogger(__name__)

MESH_POINTS = 468


def _anchors(width: float, height: float) -> np.ndarray:
    xs = np.array([-0.5, 0.5, 1.5]) * width
    ys = np.array([-0.5, 0.5, 1.5]) * height
    return np.array([(x, y) for y in ys for x in xs if not (x == 0.5 * width and y == 0.5 * height)], np.float64)


def delaunay(points: np.ndarray) -> np.ndarray:
    """(T, 3) vertex indices of the Delaunay triangulation of (P, 2) points (OpenCV's Subdiv2D)."""
    lo = points.min(0) - 10.0
    hi = points.max(0) + 10.0
    sub = cv2.Subdiv2D((int(np.floor(lo[0])), int(np.floor(lo[1])), int(np.ceil(hi[0] - lo[0])) + 1,
                        int(np.ceil(hi[1] - lo[1])) + 1))
    for p in points:
        sub.insert((float(p[0]), float(p[1])))
    tris = np.asarray(sub.getTriangleList(), np.float64).reshape(-1, 3, 2)
    out = []
    for tri in tris:
        d = np.linalg.norm(points[None, :, :] - tri[:, None, :], axis=2)  # (3, P)
        idx = d.argmin(1)
        if d[np.arange(3), idx].max() > 1e-3 or len(set(idx.tolist())) < 3:
            continue  # a triangle on Subdiv2D's outer virtual vertices, or a duplicate point
        out.append(idx)
    return np.asarray(out, np.int64)


class FaceWarp:
    """Warps maps of crops with known landmarks onto the standard layout (see the module doc)."""

    def __init__(self, layout: np.ndarray, size: int = 64) -> None:
        """`layout`: (>= 468, 2) standard landmark positions as fractions of the crop (x/w, y/h)."""
        lay = np.asarray(layout, np.float64)[:MESH_POINTS, :2]
        if lay.shape != (MESH_POINTS, 2) or not np.isfinite(lay).all():
            raise ValueError(f"layout must be (468+, 2) finite crop fractions; got {np.shape(layout)}")
        self.size = int(size)
        self.layout = lay
        self.points = np.concatenate([lay * self.size, _anchors(self.size, self.size)])
        self.triangles = delaunay(self.points)
        self._assign()

    @classmethod
    def from_landmarks(cls, landmarks: np.ndarray, frame: int, size: int = 64) -> FaceWarp:
        """The mean layout of (N, 478, 2) landmarks in a `frame` x `frame` pixel frame (NaN rows skipped)."""
        lms = np.asarray(landmarks, np.float64)[:, :MESH_POINTS, :2]
        ok = np.isfinite(lms).all(axis=(1, 2))
        if not ok.any():
            raise ValueError("no face with landmarks to build the standard layout from")
        return cls(lms[ok].mean(0) / float(frame), size)

    def _assign(self) -> None:
        s = self.size
        ys, xs = np.mgrid[0:s, 0:s]
        px = np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5], 1)  # pixel centres, continuous coordinates
        tri_of = np.full(len(px), -1, np.int64)
        bary = np.zeros((len(px), 3))
        best = np.full(len(px), -np.inf)
        for t, (a, b, c) in enumerate(self.triangles):
            pa, pb, pc = self.points[a], self.points[b], self.points[c]
            m = np.array([[pb[0] - pa[0], pc[0] - pa[0]], [pb[1] - pa[1], pc[1] - pa[1]]])
            det = np.linalg.det(m)
            if abs(det) < 1e-12:
                continue
            uv = np.linalg.solve(m, (px - pa).T).T  # (P, 2)
            w = np.stack([1 - uv.sum(1), uv[:, 0], uv[:, 1]], 1)
            score = w.min(1)  # >= 0 inside; the largest wins on shared edges and fills rounding gaps
            better = score > best
            tri_of[better] = t
            bary[better] = w[better]
            best[better] = score[better]
        self.tri_of = tri_of.reshape(s, s)
        self.bary = bary.reshape(s, s, 3)
        self.inside = (best.reshape(s, s) >= -1e-9)

    def source_coords(self, landmarks: np.ndarray, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """(map_x, map_y) float32 (size, size): where each standard pixel samples a face's crop of
        `frame` x `frame` px whose landmarks (>= 468, 2) are in that crop's pixels."""
        lm = np.asarray(landmarks, np.float64)[:MESH_POINTS, :2]
        if not np.isfinite(lm).all():
            raise ValueError("landmarks contain NaN/inf (no face): this face cannot be warped")
        pts = np.concatenate([lm, _anchors(frame, frame)])
        corners = pts[self.triangles[self.tri_of]]  # (s, s, 3, 2)
        src = (self.bary[..., None] * corners).sum(2)
        # Continuous coordinates -> OpenCV's pixel-index convention.
        return (src[..., 0] - 0.5).astype(np.float32), (src[..., 1] - 0.5).astype(np.float32)

    def warp(self, image: np.ndarray, landmarks: np.ndarray, interpolation: int = cv2.INTER_LINEAR
             ) -> tuple[np.ndarray, np.ndarray]:
        """(warped (size, size[, c]) float32, coverage (size, size) float32 in [0, 1]) of an (H, H[, c])
        map or image whose landmarks are in its own pixels."""
        frame = int(image.shape[0])
        if image.shape[1] != frame:
            raise ValueError(f"the warp needs square crops; got {image.shape}")
        mx, my = self.source_coords(landmarks, frame)
        src = np.asarray(image, np.float32)
        out = cv2.remap(src, mx, my, interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        ones = np.ones((frame, frame), np.float32)
        cov = cv2.remap(ones, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return out, cov

    def standard_landmarks(self) -> np.ndarray:
        """(468, 2) the layout in the standard square's pixels (for `edgefer.au.ekman_mask`)."""
        return self.layout * self.size
