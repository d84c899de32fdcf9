"""What the two file sinks share: the error they raise and how they prepare a path.

A sink that cannot write raises `SinkError` naming the path and the reason; the pipeline then stops
that sink alone (an "error" event) and the run goes on.
"""

from __future__ import annotations

from pathlib import Path


class SinkError(RuntimeError):
    """A sink that cannot write; the message names the path and the reason."""


def prepare_path(path: Path, what: str) -> Path:
    """Create the parent folder; SinkError naming the path when that is impossible."""
    path = Path(path)
    if path.is_dir():
        raise SinkError(f"{what} {path}: is a folder, expected a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SinkError(f"{what} {path}: cannot create folder {path.parent} ({exc.strerror or exc})") from exc
    return path

