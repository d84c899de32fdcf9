"""From a training config to the in-memory train/validation splits, their AU maps and normalisation.

Kept free of torch: it is plain NumPy + OpenCV, also used by evaluation and the tests.
The validation split is carved from the train split (stratified, seeded) unless `data.val_split`
names one; the test split is never read here, so model selection cannot see it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from train.config import TrainConfig, expand_path
from train.packed import PackedSplit, load_archive, pack_entries, stratified_limit, stratified_split

log = logging.getLogger(__name__)


@dataclass
class TrainData:
    train: PackedSplit
    val: PackedSplit
    mean: tuple[float, ...]
    std: tuple[float, ...]


def _landmark_dir(cfg: TrainConfig) -> Path | None:
    return expand_path(cfg.data.landmarks) if cfg.data.landmarks else None


def load_split(cfg: TrainConfig, split: str, limit: int | None = None, progress: bool = True) -> PackedSplit:
    """One split of the configured dataset, packed (and cached) in memory."""
    d = cfg.data
    root = d.root_path()
    cache = expand_path(d.cache_dir) if d.cache_dir else None
    fmt = d.format
    if fmt == "fer2013_csv":
        from train.datasets.fer2013_csv import csv_split_name, materialize_csv

        root = materialize_csv(root, cache if cache is not None else expand_path("cache/packed"))
        split, fmt = csv_split_name(split), "folder"
    from train.datasets import read_entries

    entries = read_entries(fmt, root, split)
    if limit:
        keep = stratified_limit(np.array([e.label for e in entries]), limit, cfg.run.seed)
        entries = [entries[i] for i in keep]
    return pack_entries(
        entries,
        root,
        split,
        d.stored_size,
        d.color,
        _landmark_dir(cfg),
        d.compute_missing_landmarks,
        cache,
        d.name,
        reader_name=d.format,
        progress=progress,
    )


def norm_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean/std of uint8 images on the [0, 1] scale (float64 accumulation)."""
    x = images.reshape(images.shape[0], -1) if images.ndim == 3 else images.reshape(-1, images.shape[-1])
    if images.ndim == 3:
        v = x.astype(np.float64) / 255.0
        return (float(v.mean()),), (float(v.std()),)
    v = x.astype(np.float64) / 255.0
    return tuple(float(m) for m in v.mean(0)), tuple(float(s) for s in v.std(0))


def prepare_data(cfg: TrainConfig, progress: bool = True) -> TrainData:
    d = cfg.data
    if d.archive:
        full = load_archive(expand_path(d.archive))
        if full.stored_size != d.stored_size or full.color != d.color:
            log.warning(
                "archive %s holds %s %dpx images; using them (config says %s %dpx)",
                d.archive, full.color, full.stored_size, d.color, d.stored_size,
            )
        if d.limit:
            full = full.subset(stratified_limit(full.labels, d.limit, cfg.run.seed))
    else:
        full = load_split(cfg, d.train_split, d.limit, progress)
    if d.val_split and not d.archive:
        train, val = full, load_split(cfg, d.val_split, None, progress)
    else:
        tr_idx, va_idx = stratified_split(full.labels, d.val_fraction, cfg.run.seed)
        train, val = full.subset(tr_idx), full.subset(va_idx)
    if d.mean and d.std:
        mean, std = tuple(d.mean), tuple(d.std)
    else:
        mean, std = norm_stats(train.images)
    log.info(
        "train %d images (%d with landmarks), val %d; mean %s std %s",
        len(train), int(train.has_landmarks.sum()), len(val),
        tuple(round(m, 4) for m in mean), tuple(round(s, 4) for s in std),
    )
    return TrainData(train, val, mean, std)


def build_maps(split: PackedSplit, size: int, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """AU maps of every sample at `size` x `size` from its label and landmarks: uint8 (N, S, S), valid (N,).

    Built once per run (Numba, a few seconds for FER2013) and kept as uint8 (1/255 steps, far below
    the blobs' softness) so 28,709 maps at 64 px take 118 MB instead of 470 MB.
    """
    from edgefer.au import au_maps

    n = len(split)
    maps = np.zeros((n, size, size), np.uint8)
    valid = np.zeros(n, bool)
    frame = (split.stored_size, split.stored_size)
    for start in range(0, n, chunk):
        sl = slice(start, min(n, start + chunk))
        m, v = au_maps(split.landmarks[sl], split.labels[sl], (size, size), frame_size=frame)
        maps[sl] = np.clip(np.rint(m * 255.0), 0, 255).astype(np.uint8)
        valid[sl] = v
    return maps, valid
