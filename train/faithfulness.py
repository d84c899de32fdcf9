"""Deletion and insertion curves: does the heatmap show what the model uses? (Petsiuk et al. 2018, RISE)

For each crop and each map (of the class the model predicts on the intact crop):
- deletion: remove the most-attended pixels first, in `steps` equal slices of the crop's pixels,
  replacing them with the baseline grey (the contract mean, 0 after normalisation), and follow the
  predicted class's probability. A faithful map makes it fall fast: low area is good.
- insertion: start from a blurred copy of the crop (Gaussian, sigma = input / 8 px; RISE's choice,
  because a flat grey start is far from any face the model has seen) and reveal the most-attended
  pixels first. A faithful map makes the probability rise fast: high area is good.
Areas are the trapezoid rule over the fraction of pixels [0, 1] (so in [0, 1]).

Ties (a 7x7 map upsampled has flat regions; LIME paints whole superpixels) are broken by seeded
noise far below the maps' resolution. The reference order is `random`: a smooth random map, uniform
noise at the model's attention resolution upsampled bilinearly, so it removes blobs of the same
size as a real map does (a random order over single pixels would be salt noise, a different and
easier perturbation). `edgefer eval --faithfulness` and `edgefer study` report the areas per method.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

log = logging.getLogger(__name__)

DEFAULT_STEPS = 16


def random_maps(n: int, size: int, grid: int, seed: int) -> np.ndarray:
    """(N, size, size) smooth random maps: uniform noise on a grid x grid lattice, upsampled bilinearly."""
    from train.explain import upsample

    rng = np.random.default_rng([seed, 104729])
    return upsample(rng.random((n, grid, grid)).astype(np.float32), size)


def pixel_order(maps: np.ndarray, seed: int) -> np.ndarray:
    """(N, H*W) pixel indices, most attended first; ties broken by seeded noise."""
    rng = np.random.default_rng([seed, 7])
    flat = maps.reshape(len(maps), -1).astype(np.float64)
    span = np.ptp(flat, axis=1, keepdims=True)
    jitter = rng.random(flat.shape) * 1e-6 * np.where(span > 0, span, 1.0)
    return np.argsort(-(flat + jitter), axis=1, kind="stable")


def blurred(crops: np.ndarray) -> np.ndarray:
    size = crops.shape[1]
    sigma = size / 8.0
    return np.stack([cv2.GaussianBlur(c, (0, 0), sigma) for c in crops])


@dataclass
class Curves:
    """deletion / insertion: (N, steps + 1) probability of the predicted class; fractions (steps + 1,)."""

    deletion: np.ndarray
    insertion: np.ndarray
    fractions: np.ndarray

    @property
    def deletion_auc(self) -> np.ndarray:
        return _auc(self.deletion, self.fractions)

    @property
    def insertion_auc(self) -> np.ndarray:
        return _auc(self.insertion, self.fractions)


def _auc(curves: np.ndarray, x: np.ndarray) -> np.ndarray:
    dx = np.diff(x)
    return ((curves[:, 1:] + curves[:, :-1]) * 0.5 * dx).sum(1)


def curves(model, crops: np.ndarray, maps: np.ndarray, classes: np.ndarray, steps: int = DEFAULT_STEPS,
           seed: int = 0) -> Curves:
    """Deletion and insertion curves of `maps` (N, H, W) for `classes` (N,) on `model`
    (a `train.explain.ExplainModel`); one batched forward per crop and curve."""
    crops = model.check_crops(crops)
    n, size = len(crops), crops.shape[1]
    if maps.shape != (n, size, size):
        raise ValueError(f"maps must be (N, {size}, {size}) at the crop's resolution; got {maps.shape}")
    npix = size * size
    order = pixel_order(maps, seed)
    counts = np.round(np.linspace(0, npix, steps + 1)).astype(np.int64)
    rank = np.empty_like(order)
    rows = np.arange(n)[:, None]
    rank[rows, order] = np.arange(npix)[None]
    # chosen[k, p]: pixel p is among the first counts[k] of the order.
    fill = model.baseline()
    start = blurred(crops)
    dele = np.empty((n, steps + 1))
    ins = np.empty((n, steps + 1))
    for i in range(n):
        chosen = (rank[i][None] < counts[:, None]).reshape(steps + 1, size, size)
        img = np.repeat(crops[i][None], steps + 1, axis=0)
        img[chosen] = fill
        rev = np.repeat(start[i][None], steps + 1, axis=0)
        rev[chosen] = np.repeat(crops[i][None], steps + 1, axis=0)[chosen]
        p = model.probs(np.concatenate([img, rev]))[:, int(classes[i])]
        dele[i] = p[: steps + 1]
        ins[i] = p[steps + 1:]
    return Curves(dele, ins, counts / npix)


def summarize(c: Curves) -> dict[str, Any]:
    """Mean areas and mean curves (for figures) of one method on one model."""
    return {
        "deletion_auc": float(c.deletion_auc.mean()),
        "insertion_auc": float(c.insertion_auc.mean()),
        "deletion_auc_sem": float(c.deletion_auc.std(ddof=1) / np.sqrt(len(c.deletion))) if len(c.deletion) > 1 else 0.0,
        "insertion_auc_sem": float(c.insertion_auc.std(ddof=1) / np.sqrt(len(c.insertion))) if len(c.insertion) > 1 else 0.0,
        "deletion_curve": [float(v) for v in c.deletion.mean(0)],
        "insertion_curve": [float(v) for v in c.insertion.mean(0)],
        "n": int(len(c.deletion)),
    }


def faithfulness_report(model, crops: np.ndarray, methods: tuple[str, ...], steps: int = DEFAULT_STEPS,
                        seed: int = 0, lime_samples: int = 200, progress: bool = True,
                        maps_by_method: dict[str, np.ndarray] | None = None) -> dict[str, object]:
    """Areas per method (plus `random`) for the predicted class of every crop.

    `maps_by_method` may hold precomputed (N, C, H, W) maps (the study reuses its maps); missing
    methods are computed here with `train.explain.class_maps`.
    """
    from tqdm import tqdm

    from train.explain import class_maps, pick

    pred = model.probs(crops).argmax(1)
    grid = int(model.contract.attention_size[0]) or 7
    out: dict[str, object] = {}
    todo = [*methods, "random"]
    for method in tqdm(todo, desc="faithfulness", unit="method", disable=not progress, leave=False):
        if method == "random":
            heat = random_maps(len(crops), crops.shape[1], grid, seed)
        else:
            full = (maps_by_method or {}).get(method)
            if full is None:
                full = class_maps(model, crops, method, lime_samples=lime_samples, seed=seed,
                                  classes=pred if method in ("gradcam", "gradcam++", "layercam") else None)
                heat = full[:, 0] if full.shape[1] == 1 else pick(full, pred)
            else:
                heat = pick(full, pred)
        out[method] = summarize(curves(model, crops, heat, pred, steps, seed))
    out["steps"] = steps
    out["target"] = "predicted class on the intact crop"
    out["definitions"] = (
        "deletion: baseline grey (contract mean) replaces the most-attended pixels first, area under the "
        "predicted class's probability (lower = more faithful); insertion: from a blurred crop (sigma = input/8), "
        "most-attended pixels revealed first (higher = more faithful); random: a smooth random map at the "
        "attention resolution"
    )
    return out
