"""The bounded, typed hand-over between two pipeline stages.

Each stage boundary is one `StageQueue[T]` of `Stamped[T]` items: `StageQueue[Frame]` between
capture and track, `StageQueue[TrackedFrame]` between track and classify, `StageQueue[FrameResult]`
after classify and after render. Small bounds keep memory and latency low: a slow stage slows a
file down (`put` blocks) or, for a live source, replaces the frame waiting in front of the tracker
(`offer_newest`). Its producer closes a queue once, which never blocks; while the run is aborted,
puts give up and queued items are skipped, so every thread can leave promptly.
"""

from __future__ import annotations

import threading
from collections import deque
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


class StageQueue(Generic[T]):
    """A bounded queue of `Stamped[T]`, closed once by its producer; `abort` makes every wait give up.

    The end of the stream is a flag, not an item: it needs no free slot, so `close` never waits
    for a consumer to make room. (It used to put an end marker into the bounded queue, and so
    waited, polling, for room that only the consumer could make: a consumer that was slow to be
    scheduled, gone, or racing a producer that refilled the freed slot first left `close` spinning,
    and a second `close` or a blocked `offer_newest` behind it.) One condition guards the items
    and the flag, so a consumer is woken exactly when there is something to take or the end.
    """

    def __init__(self, maxsize: int, abort: threading.Event) -> None:
        if maxsize < 1:
            raise ValueError(f"queue size must be at least 1, got {maxsize}")
        self._maxsize = maxsize
        self._items: deque[Stamped[T]] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._abort = abort
        self._closed = False

    @property
    def maxsize(self) -> int:
        return self._maxsize

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, item: Stamped[T]) -> bool:
        """Blocking put; False (not queued) once the run is aborted or the queue is closed."""
        with self._cond:
            while len(self._items) >= self._maxsize:
                if self._abort.is_set() or self._closed:
                    return False
                self._cond.wait(_POLL_S)  # the abort flag is an Event of its own: look at it regularly
            if self._closed:
                return False
            self._items.append(item)
            self._cond.notify_all()
            return True

    def offer_newest(self, item: Stamped[T], max_age_s: float | None = None) -> int:
        """Put without blocking (live sources): when the queue is full the oldest item makes room,
        and with `max_age_s` every queued item captured more than that before `item` is dropped
        too (stale). Returns how many were dropped. After `close` nothing is queued any more."""
        with self._cond:
            if self._closed:
                return 0
            dropped = 0
            if max_age_s is not None:
                while self._items and item.t_capture - self._items[0].t_capture > max_age_s:
                    self._items.popleft()
                    dropped += 1
            while len(self._items) >= self._maxsize:
                self._items.popleft()
                dropped += 1
            self._items.append(item)
            self._cond.notify_all()
            return dropped

    def close(self) -> None:
        """End the stream: what is queued is still delivered, then `items` ends (while aborting,
        what is queued is dropped). Returns at once; idempotent; safe from several threads."""
        with self._cond:
            self._closed = True
            if self._abort.is_set():
                self._items.clear()
            self._cond.notify_all()

    def items(self, between: Callable[[], None] | None = None) -> Iterator[Stamped[T]]:
        """The items until the queue is closed and empty; while aborting, queued items are skipped.

        With `between`, it is called before every wait and at least every 0.1 s while the queue
        is empty (the sink uses it to act on recording requests even when no frame comes).
        """
        while True:
            if between is not None:
                between()
            with self._cond:
                if not self._items and not self._closed:
                    self._cond.wait(_POLL_S)
                if not self._items:
                    if self._closed:
                        return
                    continue
                entry = self._items.popleft()
                self._cond.notify_all()
            if self._abort.is_set():
                continue
            yield entry
