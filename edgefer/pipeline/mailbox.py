"""A one-slot mailbox that keeps only the newest item: how a display takes frames from a pipeline.

Both displays use it: the OpenCV window of `run_pipeline` and the PyQt6 window's controller. The
pipeline's sink thread puts every result; the display thread takes whatever is newest when it is
ready to paint. A slow display therefore skips frames instead of queueing them, so memory stays
bounded and what is shown is never stale. `put` says whether the slot was empty, so a notifier
(the Qt signal) fires at most once per take and its queue cannot grow either.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class Mailbox(Generic[T]):
    """A thread-safe slot holding the newest item; counts what it received and overwrote."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._item: T | None = None
        self.received = 0
        self.overwritten = 0

    def put(self, item: T) -> bool:
        """Store `item`; True when the slot was empty (the reader must be notified)."""
        with self._lock:
            was_empty = self._item is None
            if not was_empty:
                self.overwritten += 1
            self._item = item
            self.received += 1
            return was_empty

    def take(self) -> T | None:
        """The newest item, emptying the slot (None when nothing new arrived)."""
        with self._lock:
            item, self._item = self._item, None
            return item
