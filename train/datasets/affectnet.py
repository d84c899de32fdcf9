"""AffectNet: `<split>_set/images/<n>.jpg` with `<split>_set/annotations/<n>_exp.npy` labels.

Labels go through `edgefer.classes.AFFECTNET`; 7 contempt, 8 none, 9 uncertain and 10 no-face
(`AFFECTNET_DROPPED`) are dropped, as in the paper (7 classes). Any other value is an error naming
the annotation file. Split `train` -> `train_set`, `val` or `test` -> `val_set` (AffectNet's
validation set is the usual test set; the paper did the same).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edgefer.classes import AFFECTNET, AFFECTNET_DROPPED
from train.datasets.base import Entry

log = logging.getLogger(__name__)

SPLITS = {"train": "train_set", "val": "val_set", "test": "val_set", "train_set": "train_set", "val_set": "val_set"}


def read_label(path: Path) -> int:
    """The expression id stored in an `_exp.npy` (a 0-d string or integer array)."""
    try:
        value = np.load(path, allow_pickle=False)
        return int(np.asarray(value).reshape(-1)[0])
    except (OSError, ValueError, IndexError, TypeError) as exc:
        raise ValueError(f"{path}: not a readable AffectNet expression annotation ({exc})") from None


def read_affectnet(root: str | Path, split: str) -> list[Entry]:
    base = Path(root)
    if split not in SPLITS:
        raise ValueError(f"AffectNet split must be one of {', '.join(SPLITS)}, not {split!r}")
    folder = base / SPLITS[split]
    images, annotations = folder / "images", folder / "annotations"
    for p in (images, annotations):
        if not p.is_dir():
            raise NotADirectoryError(f"AffectNet folder {p} does not exist")
    entries: list[Entry] = []
    dropped = 0
    for ann in sorted(annotations.glob("*_exp.npy")):
        stem = ann.name[: -len("_exp.npy")]
        raw = read_label(ann)
        if raw in AFFECTNET_DROPPED:
            dropped += 1
            continue
        if raw not in AFFECTNET:
            raise ValueError(f"{ann}: expression id {raw} is outside AffectNet's 0..10")
        image = images / f"{stem}.jpg"
        if not image.is_file():
            candidates = sorted(images.glob(f"{stem}.*"))
            image = candidates[0] if candidates else image
        entries.append(Entry(image.relative_to(base).as_posix(), AFFECTNET[raw]))
    if dropped:
        log.info("%s: dropped %d images labelled contempt/none/uncertain/no-face", folder, dropped)
    if not entries:
        raise ValueError(f"{annotations}: no usable *_exp.npy annotations")
    return entries
