"""The pipeline's figures in Prometheus' text exposition format (version 0.0.4), for `/metrics`.

Fleet monitoring already scrapes this format, so a Jetson's frames, fps, drops, read errors,
reconnects and recording state appear beside its other machines' figures with no adapter.
Counters end in `_total`; latencies are in seconds (Prometheus' base unit) with a `quantile`
label, like a summary's quantiles. Label values are escaped and the source is redacted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from edgefer.pipeline.stats import PipelineStats, StageStats
from edgefer.redact import redact

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: (name, type, help) of every family `/metrics` shows; docs/remote.md lists the same.
FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("edgefer_up", "gauge", "1 while the pipeline runs or is paused, 0 once it finished"),
    ("edgefer_info", "gauge", "source (credentials masked), model and backend of this run"),
    ("edgefer_frames_read_total", "counter", "frames read from the source"),
    ("edgefer_frames_processed_total", "counter", "frames that left the pipeline (written to the sinks)"),
    ("edgefer_frames_dropped_total", "counter", "stale frames of a live source replaced by newer ones"),
    ("edgefer_read_errors_total", "counter", "frames that failed to decode"),
    ("edgefer_reconnects_total", "counter", "times a lost live source was reopened"),
    ("edgefer_errors_total", "counter", "error events (a part of the pipeline stopped)"),
    ("edgefer_warnings_total", "counter", "warning events"),
    ("edgefer_faces_total", "counter", "faces classified, summed over frames"),
    ("edgefer_faces", "gauge", "faces in the newest frame"),
    ("edgefer_fps", "gauge", "frames out per second over the last ~2 s"),
    ("edgefer_fps_mean", "gauge", "frames out per second since the first frame"),
    ("edgefer_elapsed_seconds", "gauge", "seconds since the first frame left the pipeline"),
    ("edgefer_stage_latency_seconds", "gauge", "per-stage latency over the recent window, by quantile"),
    ("edgefer_end_to_end_latency_seconds", "gauge", "capture to sink latency over the recent window, by quantile"),
    ("edgefer_recording", "gauge", "1 while the annotated video is being recorded"),
    ("edgefer_stream_clients", "gauge", "clients watching the MJPEG stream"),
    ("edgefer_http_connections", "gauge", "open HTTP connections (bounded by serve.max_clients)"),
    ("edgefer_http_refused_total", "counter", "connections refused because serve.max_clients were open"),
    ("edgefer_stream_frames_encoded_total", "counter", "frames encoded to JPEG for the stream"),
    ("edgefer_stream_encode_seconds_total", "counter", "seconds spent encoding JPEG (off the pipeline threads)"),
    ("edgefer_events_published_total", "counter", "MQTT messages handed to the broker connection"),
    ("edgefer_events_queued", "gauge", "MQTT messages waiting for the broker"),
    ("edgefer_events_dropped_total", "counter", "MQTT messages dropped because the queue was full"),
    ("edgefer_events_connected", "gauge", "1 while connected to the MQTT broker"),
)
_KNOWN = {name for name, _, _ in FAMILIES}


@dataclass(frozen=True)
class Extra:
    """Figures the pipeline's stats do not hold: the server's, the stream's and the publisher's."""

    faces_now: int = 0
    recording: bool = False
    stream_clients: int = 0
    http_connections: int = 0
    http_refused: int = 0
    frames_encoded: int = 0
    encode_seconds: float = 0.0
    events: Mapping[str, float] | None = None  # published, queued, dropped, connected; None: no --events


def _label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


def _quantiles(name: str, s: StageStats, labels: str) -> Iterable[tuple[str, str, float]]:
    if s.count == 0:
        return
    for q, ms in (("0.5", s.p50_ms), ("0.95", s.p95_ms)):
        yield name, f'{labels}quantile="{q}"', ms / 1000.0


def render_metrics(stats: PipelineStats, extra: Extra) -> str:
    """The whole `/metrics` body: HELP and TYPE lines, then the samples, one family after another."""
    samples: list[tuple[str, str, float]] = [
        ("edgefer_up", "", 1 if stats.state in ("running", "paused", "idle") else 0),
        ("edgefer_info", f'source="{_label(redact(stats.source))}",model="{_label(stats.model)}",'
                         f'backend="{_label(stats.backend)}",state="{_label(stats.state)}"', 1),
        ("edgefer_frames_read_total", "", stats.frames_read),
        ("edgefer_frames_processed_total", "", stats.frames_processed),
        ("edgefer_frames_dropped_total", "", stats.frames_dropped),
        ("edgefer_read_errors_total", "", stats.read_errors),
        ("edgefer_reconnects_total", "", stats.reconnects),
        ("edgefer_errors_total", "", stats.errors),
        ("edgefer_warnings_total", "", stats.warnings),
        ("edgefer_faces_total", "", stats.faces),
        ("edgefer_faces", "", extra.faces_now),
        ("edgefer_fps", "", stats.fps),
        ("edgefer_fps_mean", "", stats.mean_fps),
        ("edgefer_elapsed_seconds", "", stats.elapsed_s),
    ]
    for s in stats.stages:
        samples += _quantiles("edgefer_stage_latency_seconds", s, f'stage="{_label(s.name)}",')
    if stats.end_to_end is not None:
        samples += _quantiles("edgefer_end_to_end_latency_seconds", stats.end_to_end, "")
    samples += [
        ("edgefer_recording", "", int(extra.recording)),
        ("edgefer_stream_clients", "", extra.stream_clients),
        ("edgefer_http_connections", "", extra.http_connections),
        ("edgefer_http_refused_total", "", extra.http_refused),
        ("edgefer_stream_frames_encoded_total", "", extra.frames_encoded),
        ("edgefer_stream_encode_seconds_total", "", extra.encode_seconds),
    ]
    if extra.events is not None:
        for key in ("published", "queued", "dropped", "connected"):
            name = f"edgefer_events_{key}" + ("_total" if key in ("published", "dropped") else "")
            samples.append((name, "", extra.events.get(key, 0)))
    lines: list[str] = []
    for name, kind, help_text in FAMILIES:
        mine = [(labels, v) for n, labels, v in samples if n == name]
        if not mine:
            continue
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        lines += [f"{name}{{{labels}}} {_number(v)}" if labels else f"{name} {_number(v)}" for labels, v in mine]
    assert {n for n, _, _ in samples} <= _KNOWN, "a sample without its family in FAMILIES"
    return "\n".join(lines) + "\n"
