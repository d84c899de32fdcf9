"""The pipeline's event log: every fault and state change, logged, kept, counted and passed on.

A stage that fails on every frame (a broken model, a codec that vanished) must not flood the log,
the window or the callback with thirty identical errors a second. So per reporting stage the first
`IN_FULL` errors are reported in full, then only every 100th, with the running count in the
message; the rest go to the debug log. Warnings and errors are counted in the statistics. The last
`keep` events stay available to whoever drives the pipeline (`Pipeline.events()`).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from edgefer.pipeline.events import EventKind, EventSource, PipelineEvent
from edgefer.pipeline.stats import StatsCollector

log = logging.getLogger(__name__)

#: Per reporting stage, the first this-many errors are reported as events; after that every 100th.
IN_FULL = 5
_LEVELS = {"error": logging.ERROR, "warning": logging.WARNING}


class EventLog:
    """Thread-safe: any stage thread, or the caller of start/stop, may `emit`."""

    def __init__(
        self,
        stats: StatsCollector,
        on_event: Callable[[PipelineEvent], None] | None = None,
        keep: int = 256,
    ) -> None:
        self._stats = stats
        self._on_event = on_event
        self._lock = threading.Lock()
        self._events: deque[PipelineEvent] = deque(maxlen=keep)
        self._error_counts: dict[str, int] = {}

    def emit(self, kind: EventKind, stage: EventSource, message: str) -> None:
        """Log, keep and pass on one event (throttled for repeated errors of one stage)."""
        if kind == "error":
            with self._lock:
                n = self._error_counts.get(stage, 0) + 1
                self._error_counts[stage] = n
            self._stats.count("errors")
            if n > IN_FULL and n % 100:
                log.debug("%s error #%d: %s", stage, n, message)
                return
            if n > IN_FULL:
                message = f"{message} ({n} errors in this stage so far)"
        elif kind == "warning":
            self._stats.count("warnings")
        event = PipelineEvent(kind, stage, message)
        log.log(_LEVELS.get(kind, logging.INFO), "%s: %s", stage, message)
        with self._lock:
            self._events.append(event)
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:  # noqa: BLE001 - a callback must never kill a stage
                log.exception("on_event callback failed")

    def events(self) -> list[PipelineEvent]:
        """The most recent events, oldest first."""
        with self._lock:
            return list(self._events)
