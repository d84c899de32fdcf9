"""Real face crops from image folders: for calibration (INT8), parity checks and benchmarks.

Folders are either `<class>/<image>` or `<split>/<class>/<image>` (FER2013's layout); class
folder names are resolved through `edgefer.classes.class_index`, so FER2013's `angry`/`happy`
spellings work. The images are taken as already framed like the model's training crops (true for
FER2013, whose 48x48 faces define the framing of models trained on it) and only resized to the
contract's input size: no face detection happens here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgefer.classes import class_index
from edgefer.media import IMAGE_SUFFIXES

log = logging.getLogger(__name__)



@dataclass
class LabelledImages:
    """Image paths with their project class index (same length, same order)."""

    paths: list[Path]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _class_dirs(folder: Path) -> dict[Path, int] | None:
    """{subfolder: class} when every subfolder is a class name, else None."""
    subs = sorted(p for p in folder.iterdir() if p.is_dir())
    if not subs:
        return None
    out: dict[Path, int] = {}
    for sub in subs:
        try:
            out[sub] = class_index(sub.name)
        except ValueError:
            return None
    return out


def _spread(items: list[Path], limit: int | None, seed: int) -> list[Path]:
    if limit is None or len(items) <= limit:
        return items
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(items), size=limit, replace=False))
    return [items[i] for i in keep]


def list_labelled_images(root: str | Path, per_class: int | None = None, seed: int = 0) -> LabelledImages:
    """Labelled images under `root` (`<class>/<img>` or `<split>/<class>/<img>`).

    `per_class` keeps a seeded random subset of each class folder (None: all). Raises ValueError
    naming the folder when neither layout matches or no image is found.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: image folder not found")
    classes = _class_dirs(root)
    groups: list[dict[Path, int]] = []
    if classes is not None:
        groups.append(classes)
    else:
        for split in sorted(p for p in root.iterdir() if p.is_dir()):
            sub = _class_dirs(split)
            if sub is None:
                raise ValueError(
                    f"{root}: expected <class>/<image> or <split>/<class>/<image>; "
                    f"{split} holds folders that are not expression names"
                )
            groups.append(sub)
    paths: list[Path] = []
    labels: list[int] = []
    for group in groups:
        for folder, label in group.items():
            chosen = _spread(_images_in(folder), per_class, seed + label)
            paths += chosen
            labels += [label] * len(chosen)
    if not paths:
        raise ValueError(f"{root}: no labelled images found (expected <class>/<image> folders)")
    return LabelledImages(paths=paths, labels=np.asarray(labels, dtype=np.int64))


def list_images(root: str | Path, limit: int | None = None, seed: int = 0) -> list[Path]:
    """All images under `root` (any depth, sorted), optionally a seeded random subset."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: image folder not found")
    found = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise ValueError(f"{root}: no images found")
    return _spread(found, limit, seed)


def load_crop(path: Path, input_size: tuple[int, int]) -> np.ndarray:
    """One image as a uint8 BGR crop at `input_size` (height, width)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: not a readable image")
    h, w = input_size
    if image.shape[:2] != (h, w):
        shrink = image.shape[0] > h or image.shape[1] > w
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return image


def load_crops(paths: list[Path], input_size: tuple[int, int]) -> np.ndarray:
    """Images as one (N, H, W, 3) uint8 BGR batch at `input_size`."""
    h, w = input_size
    out = np.empty((len(paths), h, w, 3), dtype=np.uint8)
    for i, p in enumerate(paths):
        out[i] = load_crop(p, input_size)
    return out
