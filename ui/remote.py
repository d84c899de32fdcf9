"""`edgefer ui --serve/--events`: the window's pipelines feed the same remote outputs as `edgefer run`.

The window starts a new `Pipeline` for every Start; the server and the MQTT connection outlive
them (bound once, when the window opens, so the address a browser or a broker sees stays the same).
`remote_factory` wraps the controller's pipeline factory: every pipeline it builds hands its
results to the session as well (on the sink thread, as in `edgefer run`: O(1) for the stream) and
is attached to it, so the page and `/metrics` show the run in progress.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from edgefer.pipeline.events import PipelineEvent
from edgefer.types import FrameResult
from ui.controller import PipelineFactory, RunRequest, default_pipeline_factory

if TYPE_CHECKING:
    from edgefer.pipeline.runner import Pipeline
    from edgefer.remote.session import RemoteSession


def remote_factory(session: RemoteSession, inner: PipelineFactory = default_pipeline_factory) -> PipelineFactory:
    """A pipeline factory whose pipelines also feed `session` (its server and its publisher)."""

    def factory(request: RunRequest, on_result: Callable[[FrameResult], None],
                on_event: Callable[[PipelineEvent], None]) -> Pipeline:
        def _result(result: FrameResult) -> None:
            on_result(result)
            session.on_result(result)

        pipeline = inner(request, _result, on_event)
        session.attach(pipeline)
        return pipeline

    return factory
