"""`RemoteSession`: the remote outputs of one run, built from its settings and fed by its callbacks.

`edgefer run` (and any other driver of a `Pipeline`) does four things: `start()` before the run
(binds the server, starts the publisher: a port that is taken is a `ServeError`, exit 2, before
anything loads), `attach(pipeline)` so the status and the metrics can read its statistics,
`on_result` for every frame (sink thread; O(1) for the stream, a few dicts for the events), and
`close()` at the end (drains the event queue for up to `events.drain_s`).
"""

from __future__ import annotations

import logging
import math
import os
import secrets
from pathlib import Path
from typing import Any, Protocol

from edgefer.pipeline.events import PipelineEvent
from edgefer.pipeline.settings import PipelineSettings
from edgefer.pipeline.stats import PipelineStats
from edgefer.redact import redact
from edgefer.remote.address import parse_mqtt_url, parse_serve_address
from edgefer.remote.hub import LiveHub
from edgefer.remote.metrics import Extra, render_metrics
from edgefer.remote.mqtt import MqttEvents
from edgefer.remote.server import RemoteServer, ServeError
from edgefer.tracking import BLENDSHAPE_NAMES
from edgefer.types import FrameResult

log = logging.getLogger(__name__)

__all__ = ["RemoteSession", "ServeError", "TOKEN_ENV"]

#: The environment variable a token may come from (kept out of `ps` and of profiles).
TOKEN_ENV = "EDGEFER_SERVE_TOKEN"
#: Faults shown on the page and in `/status`: the most recent warnings and errors.
FAULTS_SHOWN = 10


class PipelineView(Protocol):
    """What the session reads from a running pipeline (`edgefer.pipeline.runner.Pipeline`)."""

    def stats(self) -> PipelineStats: ...
    def events(self) -> list[PipelineEvent]: ...
    @property
    def recording(self) -> Path | None: ...


def _finite(x: float) -> float | None:
    return None if math.isnan(x) or math.isinf(x) else round(float(x), 6)


class RemoteSession:
    """The `--serve` server and the `--events` publisher of one run (either may be off)."""

    def __init__(self, settings: PipelineSettings) -> None:
        self.settings = settings
        self._pipeline: PipelineView | None = None
        self.token_generated = False
        self.hub: LiveHub | None = None
        self.server: RemoteServer | None = None
        self.events: MqttEvents | None = None
        names = tuple(BLENDSHAPE_NAMES) if settings.blendshapes else None  # the rows' columns, as in the CSV
        serve = settings.serve
        if serve.address is not None:
            address = parse_serve_address(serve.address)
            token = serve.token or os.environ.get(TOKEN_ENV) or None
            if token is None and not address.loopback:
                token = secrets.token_urlsafe(24)
                self.token_generated = True
            self.hub = LiveHub(serve.stream_fps, serve.jpeg_quality, serve.max_width, names)
            self.server = RemoteServer(address, self.hub, self.status, self.metrics, token, serve.max_clients)
        ev = settings.events
        if ev.url is not None:
            self.events = MqttEvents(parse_mqtt_url(ev.url), ev.mode, ev.queue_size, ev.qos, ev.end_after_s, names)

    @property
    def active(self) -> bool:
        return self.server is not None or self.events is not None

    @property
    def token(self) -> str | None:
        return self.server.token if self.server is not None else None

    def start(self) -> None:
        """Bind the server (ServeError when it cannot) and start the hub and the publisher."""
        if self.server is not None and self.hub is not None:
            self.server.start()
            self.hub.start()
            log.debug("serving the monitoring page on %s", self.server.url)
        if self.events is not None:
            self.events.start()

    def announce(self) -> list[str]:
        """What `edgefer run` prints once at the start: where to look, and a generated token.

        A generated token is shown here and nowhere else (never logged): whoever started the run
        copies the URL. A token the user gave is not repeated.
        """
        lines = []
        if self.server is not None:
            url = self.server.url
            if self.token_generated and self.token:
                lines.append(f"serving on {url}?token={self.token}  (generated token, shown once; "
                             f"set serve.token or {TOKEN_ENV} to choose one)")
            else:
                lines.append(f"serving on {url}" + ("  (token required)" if self.token else ""))
        if self.events is not None:
            lines.append(f"events to {self.events.target.shown} ({self.events.mode})")
        return lines

    def attach(self, pipeline: PipelineView) -> None:
        self._pipeline = pipeline

    def on_result(self, result: FrameResult) -> None:
        if self.hub is not None:
            self.hub.on_result(result)
        if self.events is not None:
            self.events.on_result(result)

    def close(self) -> None:
        if self.events is not None:
            self.events.close(self.settings.events.drain_s)
        if self.hub is not None:
            self.hub.close()
        if self.server is not None:
            self.server.close()

    def summary(self) -> list[str]:
        """Lines for the end of `edgefer run`: what the stream sent, what the events delivered."""
        lines = []
        if self.hub is not None and self.server is not None:
            n = self.hub.frames_encoded
            each = f" ({1000 * self.hub.encode_seconds / n:.2f} ms each, off the pipeline threads)" if n else ""
            lines.append(f"serve     {n} frame(s) streamed as JPEG{each}, "
                         f"{self.server.refused} connection(s) refused (max {self.settings.serve.max_clients})")
        if self.events is not None:
            lines.append(self.events.summary())
        return lines

    # -- what the endpoints show ------------------------------------------------------------------
    def _stats(self) -> PipelineStats:
        return self._pipeline.stats() if self._pipeline is not None else PipelineStats()

    def status(self) -> dict[str, Any]:
        """`/status` and the page's header: the run's figures and its recent faults (redacted)."""
        st = self._stats()
        e2e = st.end_to_end
        faults = []
        if self._pipeline is not None:
            recent = [e for e in self._pipeline.events() if e.kind in ("warning", "error")][-FAULTS_SHOWN:]
            faults = [{"kind": e.kind, "stage": e.stage, "message": redact(e.message), "time": e.time} for e in recent]
        return {
            "state": st.state, "source": redact(st.source), "model": st.model, "backend": st.backend,
            "fps": round(st.fps, 3), "mean_fps": round(st.mean_fps, 3), "elapsed_s": round(st.elapsed_s, 3),
            "frames_read": st.frames_read, "frames_processed": st.frames_processed,
            "frames_dropped": st.frames_dropped, "read_errors": st.read_errors, "reconnects": st.reconnects,
            "faces": st.faces, "errors": st.errors, "warnings": st.warnings,
            "latency_p50_s": _finite(e2e.p50_ms / 1000) if e2e and e2e.count else None,
            "latency_p95_s": _finite(e2e.p95_ms / 1000) if e2e and e2e.count else None,
            "stages": {s.name: {"p50_s": _finite(s.p50_ms / 1000), "p95_s": _finite(s.p95_ms / 1000)}
                       for s in st.stages if s.count},
            "recording": self._recording(),
            "faults": faults,
            "stream": {"clients": self.hub.watchers if self.hub else 0,
                       "frames_encoded": self.hub.frames_encoded if self.hub else 0},
            "events": self.events.figures() if self.events is not None else None,
        }

    def _recording(self) -> bool:
        return self._pipeline is not None and self._pipeline.recording is not None

    def metrics(self) -> str:
        hub, server = self.hub, self.server
        extra = Extra(
            faces_now=len(hub.latest_rows().rows) if hub else 0,
            recording=self._recording(),
            stream_clients=hub.watchers if hub else 0,
            http_connections=server.connections if server else 0,
            http_refused=server.refused if server else 0,
            frames_encoded=hub.frames_encoded if hub else 0,
            encode_seconds=hub.encode_seconds if hub else 0.0,
            events=self.events.figures() if self.events is not None else None,
        )
        return render_metrics(self._stats(), extra)
