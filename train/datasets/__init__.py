"""Dataset readers: each lists labelled images in the project's class order.

- `folder`: `<root>/<split>/<class>/<image>` (FER2013 images, any labelled folder) — `read_folder`.
- `fer2013_csv`, `rafdb`, `affectnet`: see their modules.

`read_entries(format, root, split)` dispatches by the `data.format` name of the training config.
"""

from __future__ import annotations

from pathlib import Path

from train.datasets.base import Entry, LoadedImages, load_images
from train.datasets.folder import read_folder

__all__ = ["Entry", "LoadedImages", "load_images", "read_entries", "read_folder"]


def read_entries(fmt: str, root: str | Path, split: str) -> list[Entry]:
    """Entries of one split of a dataset in layout `fmt` (`folder`, `rafdb`, `affectnet`)."""
    if fmt == "folder":
        return read_folder(root, split)
    if fmt == "rafdb":
        from train.datasets.rafdb import read_rafdb

        return read_rafdb(root, split)
    if fmt == "affectnet":
        from train.datasets.affectnet import read_affectnet

        return read_affectnet(root, split)
    raise ValueError(f"unknown dataset format {fmt!r}; expected folder, rafdb or affectnet (fer2013_csv is packed directly)")
