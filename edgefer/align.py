"""Face crops in the model's declared framing, cut by a similarity transform fitted to landmarks.

The classifier was trained on crops framed a certain way (FER2013: the dataset's own 48x48 crops).
The model contract records that framing as a `Framing`: a few MediaPipe mesh indices and where they
sit in the crop (fractions of width/height; for FER2013 the mean layout over the training images,
computed by `framing_from_landmarks`). At runtime `Aligner` fits the least-squares similarity
(rotation + uniform scale + translation, Umeyama's closed form, all points, no RANSAC: the points are
landmarks, not noisy matches) from a face's landmarks to that template and warps the frame, so a
tilted or distant face arrives at the model framed as in training.

Coordinate convention: landmarks and every matrix here use MediaPipe's continuous pixel
coordinates (x * width: 0 is the left EDGE of the first pixel, pixel i covers [i, i + 1)). OpenCV's
warps index pixel CENTRES; the half-pixel shift is applied inside `warp`/`map_to_frame`, which
matters at 48x48 where half a pixel is 1% of the face. Use `map_to_frame` (not a bare
`cv2.warpAffine(…, crop_to_frame, …)`) to put a crop-space map back into the frame.

Antialiasing: a face larger than the crop (a 400 px face cut to 56 px is a 7x shrink) is first
area-averaged down to the crop's scale, then warped. A bilinear warp alone samples 2x2 pixels out of
every 7x7 and turns skin texture, hair and edges into aliasing noise that no training image had:
FER2013's faces are soft 48 px crops, and a camera seeing the face from further away would have
averaged those pixels too. The area step only touches the face's region of the frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from edgefer.contract import Framing

#: Default framing points (MediaPipe 478-mesh): outer/inner eye corners of both eyes (33, 133, 362,
#: 263), nose bridge (168) and tip (1), mouth corners (61, 291), chin (152). Eyes and nose are rigid;
#: mouth corners and chin give the fit a long vertical baseline so pitch and scale are not decided
#: by the short eye-nose distance alone. Least squares over all nine averages out expression motion
#: (a smile moves the mouth corners by a few percent of the face at most).
DEFAULT_INDICES: tuple[int, ...] = (33, 133, 362, 263, 168, 1, 61, 291, 152)

#: Crop pixels per frame pixel below which the frame is area-averaged before the warp (module doc).
#: Down to a 1.25x shrink, bilinear sampling still sees every frame pixel.
ANTIALIAS_BELOW = 0.8


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (no reflection) mapping points `src` (N, 2) onto `dst` (N, 2): 2x3."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"similarity fit needs two (N>=2, 2) point sets, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    var_s = (s0**2).sum() / len(src)
    if var_s < 1e-12:
        raise ValueError("similarity fit: the landmarks are all at one point (degenerate face)")
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    rot = u @ np.diag(d) @ vt
    scale = (sig * d).sum() / var_s
    out = np.zeros((2, 3))
    out[:, :2] = scale * rot
    out[:, 2] = mu_d - scale * rot @ mu_s
    return out


def invert_affine(m: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(m, np.float64))


def _to_index_convention(m: np.ndarray) -> np.ndarray:
    """Continuous-coordinate affine -> the same map between OpenCV pixel-centre indices."""
    m = np.asarray(m, np.float64).copy()
    m[:, 2] += m[:, :2] @ np.array([0.5, 0.5]) - 0.5
    return m


def apply_affine(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to (N, 2) points."""
    pts = np.asarray(points, np.float64)
    return pts @ np.asarray(m, np.float64)[:, :2].T + np.asarray(m, np.float64)[:, 2]


@dataclass
class AlignedCrop:
    """A face crop and the affines between it and the frame (continuous pixel coordinates)."""

    image: np.ndarray  # (h, w, 3) uint8 BGR
    frame_to_crop: np.ndarray  # 2x3 float32
    crop_to_frame: np.ndarray  # 2x3 float32


class Aligner:
    """Cuts crops of `size` (h, w) framed as `framing` says (see the module docstring)."""

    def __init__(self, framing: Framing, size: tuple[int, int], border: int = cv2.BORDER_REPLICATE):
        if len(size) != 2 or min(size) <= 0:
            raise ValueError(f"crop size must be (height, width) > 0, got {size!r}")
        self.framing = framing
        self.size = (int(size[0]), int(size[1]))
        self.indices = np.asarray(framing.landmark_indices, dtype=np.int64)
        h, w = self.size
        self.template_px = np.asarray(framing.template, np.float64) * np.array([w, h], np.float64)
        # Replicate (not black) outside the frame: a face at the image edge then looks like a face
        # with a smeared background, closer to training data than a face cut by a black wall.
        self.border = border

    def transform(self, landmarks: np.ndarray) -> np.ndarray:
        """frame_to_crop (2x3 float64) for one face's (478, 2) landmarks."""
        marks = np.asarray(landmarks)
        if marks.ndim != 2 or marks.shape[1] != 2 or marks.shape[0] <= int(self.indices.max()):
            raise ValueError(
                f"landmarks must be (478, 2) pixel coordinates, got shape {marks.shape} "
                f"(framing needs index {int(self.indices.max())})"
            )
        pts = marks[self.indices].astype(np.float64)
        if not np.all(np.isfinite(pts)):
            raise ValueError("landmarks contain NaN/inf at the framing indices (no face found?)")
        return umeyama(pts, self.template_px)

    def warp(self, frame_bgr: np.ndarray, frame_to_crop: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        h, w = self.size
        src, m = area_reduced(frame_bgr, np.asarray(frame_to_crop, np.float64), (h, w))
        return cv2.warpAffine(
            src,
            _to_index_convention(m),
            (w, h),
            dst=out,
            flags=cv2.INTER_LINEAR,
            borderMode=self.border,
        )

    @staticmethod
    def _check_frame(frame_bgr: np.ndarray) -> None:
        if not isinstance(frame_bgr, np.ndarray) or frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3 or frame_bgr.dtype != np.uint8:
            got = (frame_bgr.shape, frame_bgr.dtype) if isinstance(frame_bgr, np.ndarray) else type(frame_bgr).__name__
            raise ValueError(f"aligner needs a BGR uint8 (H, W, 3) frame, got {got}")

    def crop(self, frame_bgr: np.ndarray, landmarks: np.ndarray) -> AlignedCrop:
        self._check_frame(frame_bgr)
        m = self.transform(landmarks)
        image = self.warp(frame_bgr, m)
        return AlignedCrop(image, m.astype(np.float32), invert_affine(m).astype(np.float32))

    def crop_batch(
        self, frame_bgr: np.ndarray, landmarks_list: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, list[AlignedCrop]]:
        """All faces of a frame in one (N, h, w, 3) uint8 array (one classifier call) plus their
        AlignedCrops, whose `image` is a view into that array (no copies)."""
        h, w = self.size
        batch = np.empty((len(landmarks_list), h, w, 3), np.uint8)
        crops: list[AlignedCrop] = []
        self._check_frame(frame_bgr)
        for i, marks in enumerate(landmarks_list):
            m = self.transform(marks)
            self.warp(frame_bgr, m, out=batch[i])
            crops.append(AlignedCrop(batch[i], m.astype(np.float32), invert_affine(m).astype(np.float32)))
        return batch, crops


def area_reduced(
    frame: np.ndarray, frame_to_crop: np.ndarray, crop_size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """(source image, source_to_crop affine) for warping `frame` into a crop of `crop_size` (h, w).

    When the crop is smaller than the face (scale < ANTIALIAS_BELOW), the source is the face's region
    of the frame (the crop's footprint plus a 2 px margin, clipped to the frame) resized with
    INTER_AREA to the crop's scale, and the affine is rewritten for it; otherwise the frame itself.
    Continuous coordinates throughout: `cv2.resize` maps p_small = (p_frame - origin) * (fx, fy).
    """
    scale = math.sqrt(abs(float(np.linalg.det(frame_to_crop[:, :2]))))
    if scale >= ANTIALIAS_BELOW or scale <= 0:
        return frame, frame_to_crop
    h, w = crop_size
    corners = apply_affine(invert_affine(frame_to_crop), np.array([[0.0, 0.0], [w, 0.0], [0.0, h], [w, h]]))
    fh, fw = frame.shape[:2]
    x0 = max(0, int(math.floor(corners[:, 0].min())) - 2)
    y0 = max(0, int(math.floor(corners[:, 1].min())) - 2)
    x1 = min(fw, int(math.ceil(corners[:, 0].max())) + 2)
    y1 = min(fh, int(math.ceil(corners[:, 1].max())) + 2)
    if x1 - x0 < 2 or y1 - y0 < 2:  # the crop lies outside the frame: nothing to average
        return frame, frame_to_crop
    roi = frame[y0:y1, x0:x1]
    sw = max(1, int(round((x1 - x0) * scale)))
    sh = max(1, int(round((y1 - y0) * scale)))
    small = cv2.resize(roi, (sw, sh), interpolation=cv2.INTER_AREA)
    fx, fy = sw / (x1 - x0), sh / (y1 - y0)
    m = np.empty((2, 3), np.float64)
    m[:, 0] = frame_to_crop[:, 0] / fx
    m[:, 1] = frame_to_crop[:, 1] / fy
    m[:, 2] = frame_to_crop[:, :2] @ np.array([x0, y0], np.float64) + frame_to_crop[:, 2]
    return small, m


def map_to_frame(
    map_hw: np.ndarray,
    crop_to_frame: np.ndarray,
    frame_shape: tuple[int, ...],
    crop_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Warp a crop-space map (e.g. the attention map) into frame space: float32 (H, W[, C]), 0 outside.

    `crop_size` (h, w) is the crop the matrix was made for; when the map has another resolution
    (an attention map is coarser than the crop) it is taken to cover the same crop area.
    """
    src = np.asarray(map_hw, np.float32)
    if src.ndim not in (2, 3) or min(src.shape[:2]) == 0:
        raise ValueError(f"map must be (h, w) or (h, w, C), got shape {src.shape}")
    m = np.asarray(crop_to_frame, np.float64)
    if m.shape != (2, 3):
        raise ValueError(f"crop_to_frame must be a 2x3 affine, got shape {m.shape}")
    mh, mw = src.shape[:2]
    ch, cw = crop_size if crop_size is not None else (mh, mw)
    # map pixels -> crop pixels (continuous), then crop -> frame.
    scale = np.array([[cw / mw, 0.0, 0.0], [0.0, ch / mh, 0.0]])
    full = m.copy()
    full[:, :2] = m[:, :2] @ scale[:, :2]
    fh, fw = frame_shape[:2]
    return cv2.warpAffine(
        src,
        _to_index_convention(full),
        (int(fw), int(fh)),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def framing_from_landmarks(
    landmark_sets: np.ndarray,
    crop_size: tuple[int, int],
    indices: Sequence[int] = DEFAULT_INDICES,
) -> Framing:
    """The mean layout of `indices` over (N, 478, 2) landmark sets of crops of `crop_size` (h, w).

    Used by the trainer to record how its training crops are framed (for FER2013: the mean over
    the landmark cache). Sets with NaN/inf at those indices (no face) are ignored.
    """
    sets = np.asarray(landmark_sets, np.float64)
    if sets.ndim != 3 or sets.shape[2] != 2:
        raise ValueError(f"landmark sets must be (N, 478, 2), got shape {sets.shape}")
    idx = np.asarray(tuple(indices), np.int64)
    if len(idx) < 2 or idx.min() < 0 or idx.max() >= sets.shape[1]:
        raise ValueError(f"framing indices {tuple(indices)} must be >= 2 valid mesh indices")
    pts = sets[:, idx, :]
    ok = np.all(np.isfinite(pts), axis=(1, 2))
    if not ok.any():
        raise ValueError("no landmark set with finite points to build a framing from")
    h, w = crop_size
    mean = pts[ok].mean(axis=0) / np.array([w, h], np.float64)
    return Framing(
        landmark_indices=tuple(int(i) for i in idx),
        template=tuple((float(x), float(y)) for x, y in mean),
    )
