"""Helpers for tests that drive a real edgefer process."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager


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
