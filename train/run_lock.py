"""Guards a run folder against two trainers, and makes SIGTERM save like Ctrl-C.

Two `edgefer train` processes writing `last.pt`/`best.pt` into one folder silently mix two runs
(it happened here: a background run ignored SIGINT, as background jobs of non-interactive shells
do, and kept writing next to its `--resume`d successor). So a run folder is locked for the life of
the process (an `flock` on `RUN_DIR/.lock`, released by the kernel even after a crash), and SIGTERM
— what `kill`, systemd and job schedulers send — raises KeyboardInterrupt, which the trainer turns
into a saved `last.pt` before exiting.
"""

from __future__ import annotations

import fcntl
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


class RunFolderBusy(RuntimeError):
    """Another process is training in the same run folder."""


@contextmanager
def locked_run_dir(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on `run_dir` for the duration; raise RunFolderBusy if taken."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lock_path = run_dir / ".lock"
    handle: IO[str] = open(lock_path, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            raise RunFolderBusy(
                f"{run_dir} is in use by another edgefer train (pid {owner}); stop it first "
                "(kill -TERM PID saves last.pt) or train into another --out folder"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def save_on_sigterm() -> None:
    """Make SIGTERM behave like Ctrl-C (the trainer saves last.pt, then the process exits)."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
