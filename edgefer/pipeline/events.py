"""Events a running pipeline reports to whoever drives it (the CLI prints them, the UI shows them).

Faults never raise out of a pipeline thread: a camera that disappears, a recording that cannot
be written or a frame that fails to classify becomes a `PipelineEvent`, so the rest of the
pipeline goes on and the user still sees what happened.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

EventKind = Literal["status", "warning", "error", "finished"]
EVENT_KINDS: tuple[EventKind, ...] = ("status", "warning", "error", "finished")
#: The threads of a pipeline, in order (also the rows of the statistics table).
StageName = Literal["capture", "track", "classify", "render", "sink"]
STAGE_NAMES: tuple[StageName, ...] = ("capture", "track", "classify", "render", "sink")
#: Who reports an event: a stage, or one of the sink's outputs, or the pipeline as a whole.
EventSource = Literal["capture", "track", "classify", "render", "sink", "record", "rows", "pipeline"]


class PipelineError(RuntimeError):
    """A problem that prevents the pipeline from starting (the message says what to fix).

    The one fault that raises: missing model, missing source file, bad settings. Everything that
    goes wrong once the pipeline runs is a `PipelineEvent`.
    """


@dataclass(frozen=True)
class PipelineEvent:
    """One fault or state change.

    `kind`: "status" (informational: started, reconnected, recording started), "warning"
    (degraded but going on: reconnecting, damaged file), "error" (a part stopped: recording
    failed, source unreadable), "finished" (the run is over; sent exactly once).
    `stage`: the part that reports it ("capture", "track", "classify", "render", "sink",
    "record", "rows", "pipeline"). `message`: a sentence for a person, naming the file or device.
    """

    kind: EventKind
    stage: EventSource
    message: str
    time: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"event kind must be one of {EVENT_KINDS}, not {self.kind!r}")

    def __str__(self) -> str:
        return f"[{self.kind}] {self.stage}: {self.message}"
