"""The original FER2013 CSV (`emotion,pixels,Usage`), turned into the folder layout once.

Why a folder: landmarks are computed from image files (`edgefer landmarks`, `compute_landmarks`)
and evaluation reads folders, so the CSV is written out once as PNGs under the cache
(`<cache>/fer2013_csv-<key>/<split>/<class>/<row>.png`, lossless) and everything downstream is the
folder pipeline. Splits: `Training` -> `train`, `PublicTest` -> `val`, `PrivateTest` -> `test`.
Labels go through `edgefer.classes.FER2013_CSV`; anything else is an error naming the file and line.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from edgefer.classes import EXPRESSIONS, FER2013_CSV

log = logging.getLogger(__name__)

USAGE_TO_SPLIT = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
SIDE = 48


def _key(csv_path: Path) -> str:
    st = csv_path.stat()
    return hashlib.sha256(f"{csv_path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]


def materialize_csv(csv_path: str | Path, out_root: str | Path) -> Path:
    """Write every row as `<split>/<class>/<row:05d>.png` under a keyed folder; returns that folder.

    Done once (the folder is reused while the CSV is unchanged), written to a temp folder renamed into
    place, so an interrupted conversion never leaves a half dataset behind.
    """
    src = Path(csv_path)
    if not src.is_file():
        raise FileNotFoundError(f"FER2013 CSV {src} does not exist")
    dest = Path(out_root) / f"fer2013_csv-{_key(src)}"
    if (dest / ".complete").is_file():
        return dest
    tmp = dest.with_name(dest.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    rows = 0
    with src.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"emotion", "pixels", "Usage"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{src}: missing column(s) {sorted(missing)}; expected emotion,pixels,Usage")
        for i, row in enumerate(reader):
            line = i + 2  # header is line 1
            try:
                label = FER2013_CSV[int(row["emotion"])]
            except (KeyError, ValueError):
                raise ValueError(f"{src}:{line}: emotion {row['emotion']!r} is not a FER2013 label (0..6)") from None
            split = USAGE_TO_SPLIT.get(row["Usage"].strip())
            if split is None:
                raise ValueError(f"{src}:{line}: Usage {row['Usage']!r} is not one of {', '.join(USAGE_TO_SPLIT)}")
            try:
                pixels = np.array(row["pixels"].split(), dtype=np.int64)
            except ValueError:
                raise ValueError(f"{src}:{line}: pixels are not integers") from None
            if pixels.size != SIDE * SIDE or pixels.min(initial=0) < 0 or pixels.max(initial=0) > 255:
                raise ValueError(f"{src}:{line}: expected {SIDE * SIDE} pixel values in 0..255, got {pixels.size}")
            folder = tmp / split / EXPRESSIONS[label]
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"{i:05d}.png"), pixels.reshape(SIDE, SIDE).astype(np.uint8))
            rows += 1
    if rows == 0:
        raise ValueError(f"{src}: no rows")
    (tmp / ".complete").write_text(f"{rows}\n")
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    log.info("wrote %d FER2013 CSV rows as images under %s", rows, dest)
    return dest


def csv_split_name(split: str) -> str:
    """Accept `train|val|test` or the CSV's own `Training|PublicTest|PrivateTest`."""
    return USAGE_TO_SPLIT.get(split, split)
