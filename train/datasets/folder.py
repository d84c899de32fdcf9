"""The `<split>/<class>/<image>` folder layout (FER2013's Kaggle images, or any labelled folder).

Class folder names go through `edgefer.classes.FER2013_FOLDERS` first (the FER2013 spellings), then
the generic `class_index` resolution (project names, aliases, any capitalisation), so `Happy/`,
`happiness/` and `happy/` all land on the same class. An unknown folder name is an error naming the
folder, and so is an empty class folder: silently training without a class is worse than stopping.
"""

from __future__ import annotations

from pathlib import Path

from edgefer.classes import FER2013_FOLDERS, class_index
from train.datasets.base import Entry


def folder_class(name: str, where: Path) -> int:
    """Project class index of a class folder name; ValueError naming the folder when unknown."""
    key = name.strip().lower()
    if key in FER2013_FOLDERS:
        return FER2013_FOLDERS[key]
    try:
        return class_index(key)
    except ValueError as exc:
        raise ValueError(f"{where}: class folder {name!r} is not an expression ({exc})") from None


def read_folder(root: str | Path, split: str) -> list[Entry]:
    """Entries of `root/split/<class>/*`, sorted by relpath; relpaths are relative to `root`.

    Hidden files are ignored; any other regular file counts, so a non-image is reported (and skipped)
    at load time instead of vanishing. Raises NotADirectoryError / ValueError naming the path.
    """
    base = Path(root)
    split_dir = base / split
    if not split_dir.is_dir():
        raise NotADirectoryError(f"split folder {split_dir} does not exist (expected <root>/<split>/<class>/<image>)")
    entries: list[Entry] = []
    class_dirs = sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise ValueError(f"{split_dir} holds no class folders (expected {split_dir}/<class>/<image>)")
    for class_dir in class_dirs:
        label = folder_class(class_dir.name, class_dir)
        files = sorted(p for p in class_dir.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise ValueError(f"class folder {class_dir} is empty; add images or remove the folder")
        entries.extend(Entry(p.relative_to(base).as_posix(), label) for p in files)
    return entries
