"""A dataset split packed into one `.npz` archive: images, labels, relpaths, landmarks.

Why: reading 28,709 JPEGs and 28,709 landmark entries costs tens of seconds; the archive loads in
about a second, and it is the one file to copy to a GPU machine (no image folder, no landmark cache
and no MediaPipe needed there: `data.archive=...`).

The archive name carries a key over everything it was built from (reader, root, split, stored size,
colour, the listed entries and the landmark cache's shard files), so a changed folder or a landmark
cache that has grown since is picked up by re-packing instead of training on stale landmarks.

Landmarks are in the stored image's pixel frame (continuous coordinates, MediaPipe's x * width);
rows of NaN mean "no landmarks" (no face found, or never computed), and such samples train with
cross-entropy only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgefer.atomic_write import atomic_path
from edgefer.classes import EXPRESSIONS, NUM_CLASSES
from train.datasets.base import Entry, load_images

log = logging.getLogger(__name__)

ARCHIVE_FORMAT = 1
NUM_LANDMARKS = 478


@dataclass
class PackedSplit:
    """One split in memory. `landmarks` (N, 478, 2) float32 in stored pixels, NaN rows = none."""

    images: np.ndarray
    labels: np.ndarray
    relpaths: np.ndarray
    landmarks: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def stored_size(self) -> int:
        return int(self.images.shape[1])

    @property
    def color(self) -> str:
        return "gray" if self.images.ndim == 3 else "rgb"

    @property
    def has_landmarks(self) -> np.ndarray:
        return np.isfinite(self.landmarks).all(axis=(1, 2))

    def subset(self, index: np.ndarray) -> PackedSplit:
        return PackedSplit(
            self.images[index], self.labels[index], self.relpaths[index], self.landmarks[index], dict(self.meta)
        )

    def validate(self, source: str) -> None:
        """Shapes and labels consistent; ValueError naming `source` otherwise."""
        n = len(self.labels)
        problems = []
        if self.images.dtype != np.uint8 or self.images.ndim not in (3, 4) or self.images.shape[0] != n:
            problems.append(f"images {self.images.shape} {self.images.dtype}")
        if self.landmarks.shape != (n, NUM_LANDMARKS, 2):
            problems.append(f"landmarks {self.landmarks.shape}")
        if self.relpaths.shape != (n,):
            problems.append(f"relpaths {self.relpaths.shape}")
        if n and (self.labels.min() < 0 or self.labels.max() >= NUM_CLASSES):
            problems.append(f"labels outside 0..{NUM_CLASSES - 1}")
        if problems:
            raise ValueError(f"{source}: inconsistent packed split ({'; '.join(problems)})")


def save_archive(split: PackedSplit, path: Path) -> None:
    """Write atomically (temp file + rename), so a killed run never leaves a half archive."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            images=split.images,
            labels=split.labels.astype(np.int64),
            relpaths=split.relpaths.astype(str),
            landmarks=split.landmarks.astype(np.float32),
            meta=np.array(json.dumps(split.meta)),
        )


def load_archive(path: str | Path) -> PackedSplit:
    """Read an archive written by `save_archive`; errors name the file."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"packed archive {p} does not exist")
    try:
        with np.load(p, allow_pickle=False) as data:
            split = PackedSplit(
                images=data["images"],
                labels=data["labels"].astype(np.int64),
                relpaths=data["relpaths"],
                landmarks=data["landmarks"].astype(np.float32),
                meta=json.loads(str(data["meta"])),
            )
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"packed archive {p} is unreadable or incomplete ({exc})") from exc
    if split.meta.get("format") != ARCHIVE_FORMAT:
        raise ValueError(f"packed archive {p} has format {split.meta.get('format')!r}, expected {ARCHIVE_FORMAT}")
    split.validate(str(p))
    return split


def landmark_signature(cache_dir: Path | None) -> str:
    """Names and sizes of the cache's shards: changes whenever landmarks are added."""
    if cache_dir is None or not cache_dir.is_dir():
        return "none"
    shards = sorted((p.name, p.stat().st_size) for p in cache_dir.glob("shard-*.npz"))
    return hashlib.sha256(json.dumps(shards).encode()).hexdigest()[:16]


def archive_key(parts: dict[str, Any], entries: Sequence[Entry]) -> str:
    h = hashlib.sha256(json.dumps(parts, sort_keys=True).encode())
    for e in entries:
        h.update(f"{e.relpath}\t{e.label}\n".encode())
    return h.hexdigest()[:16]


def lookup_landmarks(
    relpaths: Sequence[str],
    scales: np.ndarray,
    cache_dir: Path | None,
    data_root: Path,
    compute_missing: bool,
    progress: bool = True,
) -> tuple[np.ndarray, dict[str, int]]:
    """(N, 478, 2) landmarks in stored pixels (NaN = none) and counts (found / no_face / missing).

    Relpaths the cache has never seen are computed with MediaPipe when `compute_missing`, otherwise
    they count as `missing` and train without an AU map (with a warning, since that silently weakens
    the alignment term).
    """
    out = np.full((len(relpaths), NUM_LANDMARKS, 2), np.nan, np.float32)
    counts = {"found": 0, "no_face": 0, "missing": 0}
    if cache_dir is None:
        counts["missing"] = len(relpaths)
        return out, counts
    from edgefer.landmarks_cache import LandmarkCache, compute_landmarks

    cache = LandmarkCache.open(cache_dir)
    todo = [p for p in relpaths if p not in cache]
    if todo and compute_missing:
        log.info("computing landmarks of %d images missing from %s", len(todo), cache_dir)
        compute_landmarks(data_root, cache_dir, relpaths=todo, progress=progress)
        cache = LandmarkCache.open(cache_dir)
    for i, rel in enumerate(relpaths):
        if rel not in cache:
            counts["missing"] += 1
            continue
        marks = cache.get(rel)
        if marks is None:
            counts["no_face"] += 1
            continue
        out[i] = marks[:, :2] * scales[i]
        counts["found"] += 1
    if counts["missing"]:
        log.warning(
            "%d of %d images have no entry in the landmark cache %s: they train without AU maps "
            "(run `edgefer landmarks` or set data.compute_missing_landmarks=true)",
            counts["missing"], len(relpaths), cache_dir,
        )
    return out, counts


def pack_entries(
    entries: Sequence[Entry],
    data_root: Path,
    split_name: str,
    stored_size: int,
    color: str,
    landmark_dir: Path | None,
    compute_missing: bool,
    cache_dir: Path | None,
    dataset_name: str,
    reader_name: str = "folder",
    progress: bool = True,
) -> PackedSplit:
    """Load listed images and their landmarks, reusing (or writing) the keyed archive in `cache_dir`."""
    if not entries:
        raise ValueError(f"{data_root}: split {split_name!r} lists no images")
    parts = {
        "format": ARCHIVE_FORMAT,
        "reader": reader_name,
        "root": str(data_root.resolve()),
        "split": split_name,
        "stored_size": stored_size,
        "color": color,
        "landmarks": str(landmark_dir.resolve()) if landmark_dir else None,
        "landmark_signature": landmark_signature(landmark_dir),
    }
    key = archive_key(parts, entries)
    path = cache_dir / f"{dataset_name}-{split_name}-{key}.npz" if cache_dir else None
    if path is not None and path.is_file():
        try:
            split = load_archive(path)
            log.info("loaded %s (%d images)", path, len(split))
            return split
        except ValueError as exc:
            log.warning("%s; re-packing", exc)
    loaded = load_images(data_root, entries, stored_size, color, progress=progress)
    landmarks, counts = lookup_landmarks(
        loaded.relpaths, loaded.scales, landmark_dir, data_root, compute_missing, progress
    )
    meta = dict(parts)
    meta.update(
        key=key,
        dataset=dataset_name,
        skipped_unreadable=loaded.skipped,
        landmark_counts=counts,
        classes=list(EXPRESSIONS),
    )
    split = PackedSplit(loaded.images, loaded.labels, np.array(loaded.relpaths, dtype=str), landmarks, meta)
    split.validate(str(data_root / split_name))
    # An archive is only worth keeping once the landmark cache covered the split (else it is rebuilt
    # anyway when the cache grows); write it regardless: it is cheap and makes reruns instant.
    if path is not None:
        save_archive(split, path)
        log.info("packed %d images of %s/%s into %s (landmarks: %s)", len(split), data_root, split_name, path, counts)
    return split


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train_index, val_index): `fraction` of each class (at least one when a class has >= 2), seeded."""
    rng = np.random.default_rng(seed)
    train_idx: list[np.ndarray] = []
    val_idx: list[np.ndarray] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        k = int(round(fraction * len(idx)))
        if fraction > 0 and k == 0 and len(idx) >= 2:
            k = 1
        val_idx.append(idx[:k])
        train_idx.append(idx[k:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(val_idx))


def stratified_limit(labels: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Indices of a class-stratified subset of about `limit` samples (each class proportionally, >= 1)."""
    if limit >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed + 7919)
    chosen: list[np.ndarray] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = max(1, int(round(limit * len(idx) / len(labels))))
        chosen.append(rng.choice(idx, size=min(k, len(idx)), replace=False))
    return np.sort(np.concatenate(chosen))
