"""Write a file so that readers never see half of it: write beside it, then rename over it.

Engines, sidecars, ONNX files, checkpoints, reports and caches are all replaced this way, so a
crash, a full disk or Ctrl-C mid-write leaves the previous file intact (the rename is atomic on
POSIX and Windows) and no stray temporary file behind.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a fresh temporary path in `path`'s folder; on a clean exit rename it over `path`.

    On an exception the temporary file is removed and `path` is left as it was. `suffix` lets
    writers that pick the format from the file name (OpenCV, torch) see the right extension.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created with open(..., "x") rather than mkstemp: the file gets the usual umask permissions
    # (mkstemp's are 0600), so shared caches and engines stay readable by other users.
    tmp = path.with_name(f".{path.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}")
    tmp.open("xb").close()
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomically(path: str | Path, data: bytes) -> Path:
    """Replace `path` with `data` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomically(path: str | Path, text: str) -> Path:
    """Replace `path` with UTF-8 `text` atomically; returns the path."""
    return write_bytes_atomically(path, text.encode("utf-8"))
