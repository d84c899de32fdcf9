"""Action units: the codebook, their regions on MediaPipe's mesh, and the spatial AU maps built from them.

Public API (training, evaluation, the runtime and the CLI code against these names):

- `au_map(landmarks, expression, size)` -> (h, w) float32 in [0, 1], or None ("no map");
- `au_maps(landmarks, expressions, size)` -> (maps (N, h, w) float32, valid (N,) bool), the batch form;
- `ekman_mask(landmarks, expression, size)` -> (h, w) bool, or None;
- `expression_aus(expression)` -> tuple of `AU` records (the codebook lookup).

Coordinate frame: `landmarks` are MediaPipe's 478 mesh points (468 accepted) as (x, y) in continuous
pixel coordinates of the image the map is for (MediaPipe's normalised coordinates times (w, h)). The map
has `size` = (h, w) pixels in that same frame: for a 48x48 FER2013 crop with landmarks in 48x48 pixel
coordinates and size (48, 48) you get the map of that crop. If the landmarks are in another frame of
the same view (e.g. the 224x224 image while you want a 28x28 map), pass `frame_size=(224, 224)` and they
are scaled to `size`; for any other relation (a crop, a rotation) transform the landmarks first.

"No map" (None, or valid=False in the batch): neutral (it has no AUs), landmarks that are None or
contain NaN/inf (a failed detection), a degenerate face, all shapes outside the image, or a map without
contrast. See `edgefer.au.raster` for the blob profile and `edgefer.au.regions` for the geometry.
"""

from __future__ import annotations

import numpy as np

from edgefer.au.codebook import CODEBOOK, REFERENCE_CODE_CODEBOOK, expression_aus, resolve_expression
from edgefer.au.geometry import check_size, prepare_landmarks
from edgefer.au.mesh import IBUG68_TO_MESH, to_ibug68
from edgefer.au.regions import AU, AU_REGIONS, Shape, au_by_number

__all__ = [
    "AU",
    "AU_REGIONS",
    "CODEBOOK",
    "IBUG68_TO_MESH",
    "REFERENCE_CODE_CODEBOOK",
    "Shape",
    "au_by_number",
    "au_map",
    "au_maps",
    "ekman_mask",
    "expression_aus",
    "to_ibug68",
]


def _render_one(landmarks, expression, size, frame_size, *, with_mask: bool):
    """Shared front of `au_map` and `ekman_mask`: (map, mask) from the rasteriser, or None for
    neutral and for landmarks that cannot give a map."""
    index = resolve_expression(expression)
    pts = prepare_landmarks(landmarks, size, frame_size)
    if pts is None or not CODEBOOK[index]:
        return None
    from edgefer.au import raster  # Numba is imported (not compiled) on first use

    return raster.render(pts, index, check_size(size), with_mask=with_mask)


def au_map(
    landmarks: np.ndarray | None,
    expression: int | str,
    size: tuple[int, int],
    *,
    frame_size: tuple[int, int] | None = None,
) -> np.ndarray | None:
    """The AU map of a face for an expression: (h, w) float32 min-max normalised to [0, 1], or None.

    Soft blobs over the regions of the expression's AUs, combined by pixel-wise max (method.md
    decision 3). Unknown expressions raise ValueError listing the valid names.
    """
    rendered = _render_one(landmarks, expression, size, frame_size, with_mask=False)
    return None if rendered is None else rendered[0]


def ekman_mask(
    landmarks: np.ndarray | None,
    expression: int | str,
    size: tuple[int, int],
    *,
    frame_size: tuple[int, int] | None = None,
) -> np.ndarray | None:
    """The binary "Ekman mask": (h, w) bool, True inside any ellipse of the expression's AU regions.

    It is the union of the same regions `au_map` blurs (exactly the pixels where the unnormalised map
    is >= 0.5), None whenever `au_map` is None.
    """
    rendered = _render_one(landmarks, expression, size, frame_size, with_mask=True)
    return None if rendered is None else rendered[1]


def au_maps(
    landmarks: np.ndarray,
    expressions: np.ndarray,
    size: tuple[int, int],
    *,
    frame_size: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Batch `au_map`: landmarks (N, 478, 2) (rows with NaN/inf = failed detections), expressions (N,)
    class indices -> maps (N, h, w) float32 (zeros where invalid) and valid (N,) bool.

    One compiled call for the whole batch, so a training step pays no per-sample Python overhead.
    Expression indices outside 0..6 raise ValueError (labels are a caller bug, not a missing face).
    """
    lms = np.asarray(landmarks)
    if lms.ndim != 3 or lms.shape[1] < 468 or lms.shape[2] < 2:
        raise ValueError(f"landmarks must be (N, 478, 2); got shape {lms.shape}")
    exprs = np.asarray(expressions)
    if exprs.shape != (lms.shape[0],) or not np.issubdtype(exprs.dtype, np.integer):
        raise ValueError(
            f"expressions must be (N,) integer class indices matching landmarks (N={lms.shape[0]}); "
            f"got shape {exprs.shape} dtype {exprs.dtype}"
        )
    if exprs.size and (exprs.min() < 0 or exprs.max() >= len(CODEBOOK)):
        bad = exprs[(exprs < 0) | (exprs >= len(CODEBOOK))]
        raise ValueError(f"expression indices must be in 0..{len(CODEBOOK) - 1}; got {bad[:5].tolist()}")
    h, w = check_size(size)
    pts = np.ascontiguousarray(lms[:, :, :2], dtype=np.float64)
    if frame_size is not None:
        fh, fw = check_size(frame_size, "frame_size")
        pts = pts * (w / fw, h / fh)
    from edgefer.au import raster

    return raster.render_batch(pts, exprs.astype(np.int64, copy=False), (h, w))
