"""Helpers for tests that drive a real edgefer process."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Poll `predicate` every 50 ms until it is true; fail naming `what` after `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def watch_stderr(proc: subprocess.Popen, marker: str) -> tuple[list[str], threading.Event]:
    """Collect a child's stderr lines on a daemon thread (so its pipe never fills); the event is set
    once a line contains `marker` (e.g. the line announcing a server's port)."""
    lines: list[str] = []
    found = threading.Event()

    def _read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if marker in line:
                found.set()

    threading.Thread(target=_read, daemon=True).start()
    return lines, found


@contextmanager
def reaped(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """Yield `proc`; kill it on the way out if it is still running.

    `Popen`'s own context manager waits for the child instead, so a test that fails before it
    stops the process would hang; this one makes sure no child outlives its test.
    """
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
