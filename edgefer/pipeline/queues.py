"""The bounded, typed hand-over between two pipeline stages.

Each stage boundary is one `StageQueue[T]` of `Stamped[T]` items: `StageQueue[Frame]` between
capture and track, `StageQueue[TrackedFrame]` between track and classify, `StageQueue[FrameResult]`
after classify and after render. Small bounds keep memory and latency low: a slow stage slows a
file down (`put` blocks) or, for a live source, replaces the frame waiting in front of the tracker
(`offer_newest`). One end marker closes a queue; while the run is aborted, puts give up and
queued items are skipped, so every thread can leave promptly.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

#: How often a blocked put or get looks at the abort flag (seconds).
_POLL_S = 0.1


@dataclass(frozen=True)
class Stamped(Generic[T]):
    """A stage record plus the time its frame was captured (for the end-to-end latency)."""

    item: T
    t_capture: float


class _End:
    """The end-of-stream marker (one instance, never a record)."""


_END = _End()


class StageQueue(Generic[T]):
    """A bounded queue of `Stamped[T]` ended by one marker; `abort` makes every wait give up."""

    def __init__(self, maxsize: int, abort: threading.Event) -> None:
        self._q: queue.Queue[Stamped[T] | _End] = queue.Queue(maxsize=maxsize)
        self._abort = abort
        self._lock = threading.Lock()
        self._ended = False

    @property
    def maxsize(self) -> int:
        return self._q.maxsize

    def put(self, item: Stamped[T]) -> bool:
        """Blocking put that gives up when the run is aborted (returns False then)."""
        while True:
            try:
                self._q.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                if self._abort.is_set():
                    return False

    def offer_newest(self, item: Stamped[T]) -> int:
        """Put without blocking, replacing what the consumer has not taken yet (live sources);
        returns how many stale items were dropped. The end marker is never dropped."""
        dropped = 0
        while True:
            try:
                self._q.put_nowait(item)
                return dropped
            except queue.Full:
                try:
                    old = self._q.get_nowait()
                except queue.Empty:
                    continue
                if isinstance(old, _End):
                    self._q.put(old)
                    return dropped
                dropped += 1

    def close(self) -> None:
        """Deliver the end marker once, even into a full queue (while aborting, queued items are
        dropped to make room). Safe to call from several threads."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
        while True:
            try:
                self._q.put(_END, timeout=_POLL_S)
                return
            except queue.Full:
                if self._abort.is_set():
                    try:
                        self._q.get_nowait()
                    except queue.Empty:
                        pass

    def items(self, between: Callable[[], None] | None = None) -> Iterator[Stamped[T]]:
        """The items until the end marker; while aborting, queued items are skipped.

        With `between`, it is called before every wait and at least every 0.1 s while the queue
        is empty (the sink uses it to act on recording requests even when no frame comes).
        """
        timeout = _POLL_S if between is not None else None
        while True:
            if between is not None:
                between()
            try:
                entry = self._q.get(timeout=timeout)
            except queue.Empty:
                continue
            if isinstance(entry, _End):
                return
            if self._abort.is_set():
                continue
            yield entry
