"""File facts shared by every part that looks at files: which suffixes are images, which videos,
and the sha256 of a file.

Each table exists once, here: the calibration-crop reader, the benchmarks, the source parser and
the window's file dialog all ask this module, so a suffix added for one is seen by all of them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

#: Still images OpenCV decodes (`cv2.imread`); lower case, with the dot.
IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm"})

#: Video files FFmpeg decodes; an http(s) URL ending in one is a download, not a live stream.
VIDEO_SUFFIXES: tuple[str, ...] = (
    ".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".gif", ".mpg", ".mpeg", ".ts", ".flv", ".wmv",
)


def is_image(path: str | Path) -> bool:
    """True when `path` has an image suffix (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in `chunk`-sized blocks (models are hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
