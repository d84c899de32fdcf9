"""What the two file sinks share: the error they raise and how they prepare a path.

A sink that cannot write raises `SinkError` naming the path and the reason; the pipeline then stops
that sink alone (an "error" event) and the run goes on. A run never writes into the files of a
previous run (`first_free_run`): a restart with the same outputs gets `NAME-2.EXT`, `NAME-3.EXT`, ...
"""

from __future__ import annotations

import glob
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



def run_path(path: Path, run: int) -> Path:
    """The name of `path` for the `run`-th run writing it: run 1 keeps it, run 2 is `NAME-2.EXT`."""
    path = Path(path)
    return path if run <= 1 else path.with_name(f"{path.stem}-{run}{path.suffix}")


def is_special(path: Path) -> bool:
    """An existing path that is neither a regular file nor a folder (device, FIFO, socket)."""
    try:
        return path.exists() and not path.is_file() and not path.is_dir()
    except OSError:
        return False


def _written(path: Path, segmented: bool) -> bool:
    """Whether a run already wrote `path` (or, `segmented`, any of its `NAME_000.EXT` files)."""
    if path.exists():
        return True
    if not segmented:
        return False
    stem, suffix = path.stem, path.suffix
    try:
        return any(
            p.name[len(stem) + 1: len(p.name) - len(suffix)].isdigit()
            for p in path.parent.glob(f"{glob.escape(stem)}_*{glob.escape(suffix)}")
        )
    except OSError:
        return False


def first_free_run(outputs: list[tuple[Path, bool]]) -> int:
    """The first run number at which none of `outputs` (path, segmented) exists yet: 1 when no
    previous run wrote any of them. One number for all outputs of a run, so `rows-2.csv` pairs
    with `rec-2_000.mp4`. Devices and pipes (`/dev/full`) are written as they are."""
    files = [(Path(p), seg) for p, seg in outputs if not is_special(Path(p))]
    run = 1
    while any(_written(run_path(p, run), seg) for p, seg in files):
        run += 1
    return run
