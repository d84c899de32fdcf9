"""Settings of `edgefer run` and of the `Pipeline` the UI drives, loaded from YAML.

One pydantic model holds everything a run needs, so a profile such as
`configs/pipeline/jetson_orin.yaml` describes a deployment completely and CLI flags only
override single keys. Unknown keys are errors (inherited from `edgefer.config.Settings`), so a
misspelt key in a profile stops the run before it records an hour of video with the wrong
encoder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from edgefer.config import Settings, load_settings

HeatmapMode = Literal["attention", "cam", "off"]
HEATMAP_MODES: tuple[str, ...] = ("attention", "cam", "off")


class CaptureSettings(Settings):
    """How a source is opened.

    `width`/`height`/`fps` are requests for cameras and the CSI pipeline (files ignore them).
    `live` overrides whether a source is treated as live (drop stale frames, reconnect when
    lost); None means "decide from the source kind" (cameras and streams are live, files not).
    `loop` replays a file forever (demos, soak tests), with timestamps that keep increasing.
    """

    width: int | None = Field(default=None, gt=0)
    height: int | None = Field(default=None, gt=0)
    fps: float | None = Field(default=None, gt=0)
    live: bool | None = None
    loop: bool = False
    #: Consecutive failed reads tolerated inside a file before it is declared damaged/ended.
    max_read_failures: int = Field(default=8, ge=0)


class ReconnectSettings(Settings):
    """Exponential backoff for a live source that disappears (camera unplugged, stream drop)."""

    initial_delay_s: float = Field(default=0.5, gt=0)
    max_delay_s: float = Field(default=8.0, gt=0)
    #: None: keep trying until stopped (a camera that comes back is picked up again).
    max_attempts: int | None = Field(default=None, ge=1)


class HeatmapSettings(Settings):
    mode: HeatmapMode = "attention"
    opacity: float = Field(default=0.45, ge=0.0, le=1.0)
    colormap: Literal["turbo", "jet"] = "turbo"


class RecordSettings(Settings):
    """Annotated-video recording.

    `encoder: auto` (default) records H.264, which browsers play, through PyAV's libx264, and
    falls back to OpenCV with `codec` (with a warning) where PyAV has no H.264 encoder.
    `encoder: opencv` writes the OpenCV FourCC `codec` (default mp4v, which every OpenCV wheel
    can write); the container follows the file suffix, or `container` when the path has none.
    `encoder: gstreamer` writes through a GStreamer pipeline ending in `gst_encoder` (Jetson's
    hardware `nvv4l2h264enc` by default); it needs an OpenCV built with GStreamer (JetPack's).
    `segment_seconds` rotates the file into OUT_000.mp4, OUT_001.mp4, ... so a crash or power
    loss costs at most one segment.
    """

    path: Path | None = None
    codec: str = "mp4v"
    container: str = "mp4"
    fps: float | None = Field(default=None, gt=0)
    segment_seconds: float | None = Field(default=None, gt=0)
    encoder: Literal["auto", "pyav", "opencv", "gstreamer"] = "auto"
    gst_encoder: str = "nvv4l2h264enc"
    bitrate_kbps: int = Field(default=8000, gt=0)
    #: Stop recording (with an error event) when the disk holding it has less free space.
    min_free_mb: float = Field(default=64.0, ge=0)

    @field_validator("codec")
    @classmethod
    def _fourcc(cls, value: str) -> str:
        if len(value) != 4:
            raise ValueError(f"codec must be a 4-character FourCC such as mp4v, avc1, MJPG (got {value!r})")
        return value

    @field_validator("container")
    @classmethod
    def _container(cls, value: str) -> str:
        return value.lstrip(".").lower()


class PipelineSettings(Settings):
    """Everything a pipeline run needs. CLI flags of `edgefer run` override these keys."""

    source: str = "0"
    model: Path | None = None
    backend: str = "auto"
    face_model: Path | None = None
    max_faces: int = Field(default=4, ge=1, le=32)
    blendshapes: bool = False
    #: EMA strength in [0, 1): the weight the previous estimate keeps per 1/30 s (0 = raw).
    smoothing: float = Field(default=0.6, ge=0.0, lt=1.0)
    heatmap: HeatmapSettings = Field(default_factory=HeatmapSettings)
    record: RecordSettings = Field(default_factory=RecordSettings)
    csv: Path | None = None
    jsonl: Path | None = None
    #: Rows are flushed to disk at least this often (a crash loses at most this much).
    flush_seconds: float = Field(default=1.0, gt=0)
    headless: bool = False
    realtime: bool = False
    max_frames: int | None = Field(default=None, ge=1)
    capture: CaptureSettings = Field(default_factory=CaptureSettings)
    reconnect: ReconnectSettings = Field(default_factory=ReconnectSettings)
    #: Bound of each inter-stage queue: small keeps latency and memory low.
    queue_size: int = Field(default=2, ge=1, le=64)
    show_fps: bool = True
    window_name: str = "edgefer"

    @field_validator("source", mode="before")
    @classmethod
    def _source(cls, value: object) -> str:
        if not str(value).strip():
            raise ValueError("source is empty; give a camera index, a file, a URL or a GStreamer pipeline")
        return str(value).strip()


def load_pipeline_settings(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> PipelineSettings:
    """Load a pipeline profile (optional) plus `key=value` overrides, validated."""
    return load_settings(PipelineSettings, path, overrides)
