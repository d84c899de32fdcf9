"""LIME for face crops (Ribeiro et al. 2016), written here with OpenCV superpixels and NumPy.

Why not the `lime` package: it pulls scikit-image and scikit-learn for what is 40 lines, and its
defaults (quickshift on RGB photos, 1000 samples) do not suit a 56x56 grey crop. What we keep from it:
- superpixels on the crop itself: SLIC (`cv2.ximgproc`, SLICO variant, which needs no compactness
  tuning) with `region_size` = input / 7 px (8 px at 56: about 49 regions, one per attention cell,
  so LIME and the model's map have the same granularity);
- samples: the first is the whole image, every other switches each superpixel on with probability
  0.5 (the package's `randint(0, 2)`); "off" superpixels take the contract's mean grey (0 after
  normalisation, the same baseline as occlusion and deletion);
- weights: exp(-d^2 / 0.25^2) ** 0.5 with d the cosine distance between the sample's on/off vector and
  the all-on vector (the package's image kernel, width 0.25);
- model: ridge regression (alpha = 1, intercept not penalised) of every class's probability on the
  on/off vector, weighted by the kernel, one solve for all seven classes.
The map paints each superpixel with its coefficient (signed: positive = evidence for the class).

Sample budget: `n_samples` forward passes per image (default 500 in `edgefer explain`; the study uses
fewer, see docs/interpretability.md). Determinism: a crop draws from
`numpy.random.default_rng([seed, crc32(crop bytes)])`, so its map depends on the seed and the crop
only, not on the other images of the call, their order, or the machine.
"""

from __future__ import annotations

import logging
import zlib

import cv2
import numpy as np

from edgefer.classes import NUM_CLASSES

log = logging.getLogger(__name__)

KERNEL_WIDTH = 0.25
RIDGE_ALPHA = 1.0


def superpixels(crop: np.ndarray, region_size: int, ruler: float = 10.0, iterations: int = 10) -> np.ndarray:
    """(H, W) int32 labels 0..K-1 of SLICO superpixels of a uint8 gray or RGB crop."""
    if not hasattr(cv2, "ximgproc"):
        raise RuntimeError("LIME needs cv2.ximgproc (opencv-contrib-python, which mediapipe installs)")
    img = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_RGB2LAB)
    slic = cv2.ximgproc.createSuperpixelSLIC(np.ascontiguousarray(img), algorithm=cv2.ximgproc.SLICO,
                                             region_size=int(region_size), ruler=float(ruler))
    slic.iterate(iterations)
    slic.enforceLabelConnectivity(25)
    labels = slic.getLabels().astype(np.int32)
    # Relabel to 0..K-1 (connectivity enforcement can leave holes in the numbering).
    _, inverse = np.unique(labels, return_inverse=True)
    return inverse.reshape(labels.shape).astype(np.int32)


def weighted_ridge(z: np.ndarray, y: np.ndarray, weights: np.ndarray, alpha: float = RIDGE_ALPHA) -> np.ndarray:
    """Coefficients (K, C) of y (S, C) on z (S, K) with an unpenalised intercept and sample weights."""
    w = weights / weights.sum()
    zm = (w[:, None] * z).sum(0)
    ym = (w[:, None] * y).sum(0)
    zc = z - zm
    yc = y - ym
    a = zc.T @ (weights[:, None] * zc) + alpha * np.eye(z.shape[1])
    b = zc.T @ (weights[:, None] * yc)
    return np.linalg.solve(a, b)


def lime_image(model, crop: np.ndarray, n_samples: int, rng: np.random.Generator, region_size: int,
               fill: np.ndarray) -> np.ndarray:
    """(7, H, W) LIME maps of every class for one crop."""
    labels = superpixels(crop, region_size)
    k = int(labels.max()) + 1
    z = rng.integers(0, 2, size=(n_samples, k)).astype(np.float64)
    z[0] = 1.0
    off = z[:, labels] == 0  # (S, H, W)
    batch = np.repeat(crop[None], n_samples, axis=0)
    batch[off] = fill
    probs = model.probs(batch).astype(np.float64)  # (S, 7)
    on = z.sum(1)
    dist = 1.0 - np.sqrt(on / k)  # cosine distance to the all-on vector
    weights = np.sqrt(np.exp(-(dist ** 2) / KERNEL_WIDTH ** 2))
    coef = weighted_ridge(z, probs, weights)  # (K, 7)
    return coef.T[:, labels].astype(np.float32)


def lime_maps(model, crops: np.ndarray, n_samples: int = 500, seed: int = 0, region_size: int | None = None,
              progress: bool = False) -> np.ndarray:
    """(N, 7, H, W) LIME maps (raw ridge coefficients painted on superpixels) of `model`
    (a `train.explain.ExplainModel`) for uint8 crops in its colour."""
    from tqdm import tqdm

    if n_samples < 2:
        raise ValueError(f"LIME needs at least 2 samples, got {n_samples}")
    size = int(crops.shape[1])
    ah = int(model.contract.attention_size[0]) or 7
    region = int(region_size or max(3, round(size / ah)))
    fill = model.baseline()
    out = np.empty((len(crops), NUM_CLASSES, size, size), np.float32)
    for i in tqdm(range(len(crops)), desc="lime", unit="img", disable=not progress, leave=False):
        rng = np.random.default_rng([seed, zlib.crc32(np.ascontiguousarray(crops[i]).tobytes())])
        out[i] = lime_image(model, crops[i], n_samples, rng, region, fill)
    return out
