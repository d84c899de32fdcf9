"""The real-time pipeline: sources, stages on threads, smoothing, rendering hand-off, sinks.

Import what you need from the submodules (`edgefer.pipeline.runner.Pipeline`, ...); the names
below are resolved lazily so `import edgefer.pipeline` (done by `edgefer --help`) stays instant.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Pipeline": "edgefer.pipeline.runner",
    "run_pipeline": "edgefer.pipeline.runner",
    "PipelineError": "edgefer.pipeline.events",
    "PipelineEvent": "edgefer.pipeline.events",
    "LiveSettings": "edgefer.pipeline.settings",
    "PipelineSettings": "edgefer.pipeline.settings",
    "Mailbox": "edgefer.pipeline.mailbox",
    "load_pipeline_settings": "edgefer.pipeline.settings",
    "PipelineStats": "edgefer.pipeline.stats",
    "StageStats": "edgefer.pipeline.stats",
    "SourceSpec": "edgefer.pipeline.sources",
    "ProbabilitySmoother": "edgefer.pipeline.smoothing",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'edgefer.pipeline' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
