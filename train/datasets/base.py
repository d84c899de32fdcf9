"""What every dataset reader produces, and the one routine that loads listed images into memory.

A reader only lists `Entry(relpath, label)` records (labels already in the project's class order,
through the explicit tables of `edgefer.classes`); `load_images` reads them once into one uint8 array,
because on a 2-core CPU decoding JPEGs every epoch would cost more than the training step itself.

Corrupt or unreadable images are skipped with a warning naming the file and counted (`skipped`), not
fatal: one bad file among 28,709 should not stop a long run, and the count lands in the packed
archive's metadata and the training log so it is never silent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgefer.classes import NUM_CLASSES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    """One labelled image: `relpath` (POSIX, relative to the dataset root) and a project class index."""

    relpath: str
    label: int


@dataclass
class LoadedImages:
    """Images of a list of entries, decoded and resized to `stored_size` (square).

    `images` (N, S, S) uint8 for gray, (N, S, S, 3) RGB for colour; `scales` (N, 2) the (x, y) factor
    from each original file's pixels to the stored ones (1.0 for FER2013), so landmarks computed on
    the original files can be moved into the stored frame. `skipped` lists unreadable relpaths.
    """

    images: np.ndarray
    labels: np.ndarray
    relpaths: list[str]
    scales: np.ndarray
    skipped: list[str] = field(default_factory=list)


def decode_image(path: Path, color: str) -> np.ndarray | None:
    """Gray (H, W) or RGB (H, W, 3) uint8, or None when the file is not a decodable image."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    flag = cv2.IMREAD_GRAYSCALE if color == "gray" else cv2.IMREAD_COLOR
    image = cv2.imdecode(data, flag)
    if image is None or image.size == 0:
        return None
    if color != "gray":
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return image


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resize to size x size: area when shrinking (no aliasing), bilinear when enlarging."""
    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return image
    interp = cv2.INTER_AREA if min(h, w) > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interp)


def load_images(
    root: Path,
    entries: Sequence[Entry],
    stored_size: int,
    color: str,
    progress: bool = True,
    reader: Callable[[Path, str], np.ndarray | None] = decode_image,
) -> LoadedImages:
    """Decode every entry under `root` into memory; unreadable files are skipped and counted."""
    from tqdm import tqdm

    shape = (stored_size, stored_size) if color == "gray" else (stored_size, stored_size, 3)
    images = np.empty((len(entries), *shape), np.uint8)
    labels = np.empty(len(entries), np.int64)
    scales = np.empty((len(entries), 2), np.float32)
    relpaths: list[str] = []
    skipped: list[str] = []
    n = 0
    for entry in tqdm(entries, desc=f"reading {root.name}", unit="img", disable=not progress, leave=False):
        if not 0 <= entry.label < NUM_CLASSES:
            raise ValueError(f"{root / entry.relpath}: label {entry.label} is outside 0..{NUM_CLASSES - 1}")
        image = reader(root / entry.relpath, color)
        if image is None:
            log.warning("%s: not a readable image; skipped", root / entry.relpath)
            skipped.append(entry.relpath)
            continue
        h, w = image.shape[:2]
        images[n] = resize_square(image, stored_size)
        labels[n] = entry.label
        scales[n] = (stored_size / w, stored_size / h)
        relpaths.append(entry.relpath)
        n += 1
    if skipped:
        log.warning("%s: %d of %d images were unreadable and skipped", root, len(skipped), len(entries))
    return LoadedImages(images[:n].copy(), labels[:n].copy(), relpaths, scales[:n].copy(), skipped)
