"""RAF-DB basic: `EmoLabel/list_patition_label.txt` + `Image/aligned` (or `Image/original`) images.

Label file lines: `train_00001.jpg 5` (1-based ids, mapped through `edgefer.classes.RAFDB_BASIC`).
Split = file name prefix (`train_` / `test_`). Aligned crops (`Image/aligned/train_00001_aligned.jpg`,
100x100) are preferred when that folder exists, as they are what RAF-DB results are reported on;
otherwise the original images are listed. An id outside 1..7 is an error naming the file and line.
"""

from __future__ import annotations

from pathlib import Path

from edgefer.classes import RAFDB_BASIC
from train.datasets.base import Entry

LABEL_FILES = ("EmoLabel/list_patition_label.txt", "list_patition_label.txt")


def find_label_file(root: Path) -> Path:
    for rel in LABEL_FILES:
        if (root / rel).is_file():
            return root / rel
    raise FileNotFoundError(f"{root}: no RAF-DB label file (looked for {', '.join(LABEL_FILES)})")


def read_rafdb(root: str | Path, split: str) -> list[Entry]:
    base = Path(root)
    if split not in ("train", "test"):
        raise ValueError(f"RAF-DB split must be 'train' or 'test', not {split!r}")
    labels_file = find_label_file(base)
    aligned = (base / "Image" / "aligned").is_dir()
    entries: list[Entry] = []
    for lineno, line in enumerate(labels_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"{labels_file}:{lineno}: expected 'NAME LABEL', got {line!r}")
        name, raw = parts
        if not name.startswith(f"{split}_"):
            continue
        try:
            label = RAFDB_BASIC[int(raw)]
        except (KeyError, ValueError):
            raise ValueError(
                f"{labels_file}:{lineno}: label {raw!r} of {name} is not a RAF-DB basic id (1..7)"
            ) from None
        stem = Path(name).stem
        rel = f"Image/aligned/{stem}_aligned.jpg" if aligned else f"Image/original/{name}"
        entries.append(Entry(rel, label))
    if not entries:
        raise ValueError(f"{labels_file}: no '{split}_*' entries")
    return sorted(entries, key=lambda e: e.relpath)
