"""Settings of `edgefer run` and of the `Pipeline` the UI drives, loaded from YAML.

One pydantic model holds everything a run needs, so a profile such as
`configs/pipeline/jetson_orin.yaml` describes a deployment completely and CLI flags only
override single keys. Unknown keys are errors (inherited from `edgefer.config.Settings`), so a
misspelt key in a profile stops the run before it records an hour of video with the wrong
encoder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator

from edgefer import live as vocab
from edgefer.config import Settings, load_settings
from edgefer.live import HEATMAP_MODES, HeatmapMode
from edgefer.remote.address import parse_mqtt_url, parse_serve_address

__all__ = [
    "HEATMAP_MODES",
    "CaptureSettings",
    "EventsSettings",
    "HeatmapMode",
    "HeatmapSettings",
    "LiveSettings",
    "PipelineSettings",
    "ReconnectSettings",
    "RecordSettings",
    "ServeSettings",
    "load_pipeline_settings",
]


Opacity = Annotated[float, Field(ge=vocab.OPACITY_MIN, le=vocab.OPACITY_MAX)]
Smoothing = Annotated[float, Field(ge=vocab.SMOOTHING_MIN, lt=vocab.SMOOTHING_SUP)]
MaxFaces = Annotated[int, Field(ge=1, le=vocab.MAX_FACES_LIMIT)]

#: How each live field is named in an error message (the words a user sees beside the control).
_LIVE_LABELS = {"heatmap": "heatmap mode", "opacity": "heatmap opacity", "smoothing": "smoothing strength",
                "max_faces": "max faces"}


class LiveSettings(Settings):
    """What a running pipeline can change: heatmap mode and opacity, smoothing, max faces.

    The one model the CLI (through `PipelineSettings`, which holds the same fields), the runner,
    the window's controller and its preferences validate with. Frozen: a running pipeline swaps
    the whole object (one reference assignment), so a stage thread reading it never sees a mode
    from one change and an opacity from another.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    heatmap: HeatmapMode = vocab.DEFAULT_HEATMAP
    opacity: Opacity = vocab.DEFAULT_OPACITY
    smoothing: Smoothing = vocab.DEFAULT_SMOOTHING
    max_faces: MaxFaces = vocab.DEFAULT_MAX_FACES

    def with_changes(self, **changes: Any) -> LiveSettings:
        """A validated copy with `changes` applied; a ValueError naming the control when a value is
        out of bounds (`model_copy(update=...)` would not validate)."""
        try:
            return LiveSettings.model_validate({**self.model_dump(), **changes})
        except ValidationError as exc:
            raise ValueError("; ".join(
                f"{_LIVE_LABELS.get(str(e['loc'][0]), str(e['loc'][0]))}: {e['msg'].lower()} (got {e.get('input')!r})"
                for e in exc.errors()
            )) from None

    @classmethod
    def check(cls, name: str, value: Any) -> Any:
        """`value` validated (and converted, e.g. from an INI string) as the field `name`."""
        if name not in cls.model_fields:
            raise KeyError(f"{name!r} is not a live setting; they are {sorted(cls.model_fields)}")
        return getattr(cls().with_changes(**{name: value}), name)


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
    #: A camera of this machine (`0`, /dev/video0, csi://0) that does not open at the start ends the
    #: run with an error pointing at `edgefer doctor`; True waits for it instead (retried with the
    #: reconnection backoff, e.g. a camera plugged in later). A camera that worked and is lost is
    #: always reconnected.
    wait_for_device: bool = False
    #: A network stream (rtsp://, tcp://, http live, ...) that delivers nothing for this long while
    #: opening or between two frames counts as lost, and is reconnected (FFmpeg's own default is
    #: 30 s). It also bounds how long a Ctrl+C waits for a blocked read.
    stall_timeout_s: float = Field(default=5.0, gt=0)
    #: A live source keeps up to `live_buffer` frames in front of the tracker, none older than
    #: `max_lag_s` behind the newest: a burst (a stream that delivers 8 frames at once) is
    #: processed while the CPU would idle, and the picture is never more than `max_lag_s` late.
    #: 1 keeps only the newest frame (the lowest latency, but every burst loses all but one).
    live_buffer: int = Field(default=8, ge=1, le=64)
    max_lag_s: float = Field(default=0.5, gt=0)


class ReconnectSettings(Settings):
    """Exponential backoff for a live source that disappears (camera unplugged, stream drop)."""

    initial_delay_s: float = Field(default=0.5, gt=0)
    max_delay_s: float = Field(default=8.0, gt=0)
    #: None: keep trying until stopped (a camera that comes back is picked up again).
    max_attempts: int | None = Field(default=None, ge=1)


class HeatmapSettings(Settings):
    """The overlay; `mode` and `opacity` are live settings (`edgefer.live`), the colormap is not."""

    mode: HeatmapMode = vocab.DEFAULT_HEATMAP
    opacity: Opacity = vocab.DEFAULT_OPACITY
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


class ServeSettings(Settings):
    """`--serve [HOST:]PORT`: the monitoring page, MJPEG stream, rows, metrics (docs/remote.md).

    Bound to 127.0.0.1 unless a host is given; any other host needs a `token` on every request
    (this key, else the EDGEFER_SERVE_TOKEN variable, else one generated and printed once).
    The stream is encoded once per frame, at most `stream_fps` times a second, and only while
    someone watches; `max_clients` bounds the open connections (two per open page).
    """

    address: str | None = None
    token: str | None = Field(default=None, repr=False)
    max_clients: int = Field(default=16, ge=1, le=256)
    stream_fps: float = Field(default=10.0, gt=0, le=60)
    jpeg_quality: int = Field(default=75, ge=10, le=100)
    #: Frames wider than this are scaled down before JPEG encoding (None: full size).
    max_width: int | None = Field(default=960, ge=64)

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            parse_serve_address(value)
        return value


class EventsSettings(Settings):
    """`--events mqtt://[user:pass@]host[:port]/topic`: rows (or only changes) to a broker.

    `mode: rows` publishes every per-face row; `changes` only a track's start, each change of its
    expression, and its end (`end_after_s` without the face). While the broker is away, messages
    wait in a queue of `queue_size` (the oldest are dropped and counted when it is full);
    `drain_s` is how long the end of a run waits for the queue to empty.
    """

    url: str | None = Field(default=None, repr=False)
    mode: Literal["rows", "changes"] = "rows"
    queue_size: int = Field(default=10000, ge=1)
    qos: Literal[0, 1] = 1
    end_after_s: float = Field(default=1.0, gt=0)
    drain_s: float = Field(default=5.0, ge=0)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None:
            parse_mqtt_url(value)
        return value


class PipelineSettings(Settings):
    """Everything a pipeline run needs. CLI flags of `edgefer run` override these keys."""

    source: str = "0"
    model: Path | None = None
    backend: str = "auto"
    face_model: Path | None = None
    max_faces: MaxFaces = vocab.DEFAULT_MAX_FACES
    blendshapes: bool = False
    #: EMA strength in [0, 1): the weight the previous estimate keeps per 1/30 s (0 = raw).
    smoothing: Smoothing = vocab.DEFAULT_SMOOTHING
    heatmap: HeatmapSettings = Field(default_factory=HeatmapSettings)
    record: RecordSettings = Field(default_factory=RecordSettings)
    csv: Path | None = None
    jsonl: Path | None = None
    #: Rows are flushed to disk at least this often (a crash loses at most this much).
    flush_seconds: float = Field(default=1.0, gt=0)
    #: Rotate the CSV/JSONL into NAME_000.csv, NAME_001.csv, ... every this many seconds of wall-clock
    #: time (each file with its header; e.g. 86400: one file a day). None: one file.
    rows_segment_seconds: float | None = Field(default=None, gt=0)
    #: False (default): a run never writes into the files of a previous run; a restart with the same
    #: --record/--csv writes NAME-2.EXT (then -3, ...), one number for all its outputs. True: the
    #: old files are replaced.
    overwrite: bool = False
    headless: bool = False
    realtime: bool = False
    max_frames: int | None = Field(default=None, ge=1)
    capture: CaptureSettings = Field(default_factory=CaptureSettings)
    reconnect: ReconnectSettings = Field(default_factory=ReconnectSettings)
    #: Bound of each inter-stage queue: small keeps latency and memory low.
    queue_size: int = Field(default=2, ge=1, le=64)
    show_fps: bool = True
    window_name: str = "edgefer"
    serve: ServeSettings = Field(default_factory=ServeSettings)
    events: EventsSettings = Field(default_factory=EventsSettings)

    @field_validator("source", mode="before")
    @classmethod
    def _source(cls, value: object) -> str:
        if not str(value).strip():
            raise ValueError("source is empty; give a camera index, a file, a URL or a GStreamer pipeline")
        return str(value).strip()

    @property
    def live(self) -> LiveSettings:
        """The keys a running pipeline can change, as the one live-settings record."""
        return LiveSettings(
            heatmap=self.heatmap.mode, opacity=self.heatmap.opacity, smoothing=self.smoothing, max_faces=self.max_faces
        )

    def apply_live(self, live: LiveSettings) -> None:
        """Take the live keys from `live` (the window starts a run with its controls' values)."""
        self.heatmap.mode = live.heatmap
        self.heatmap.opacity = live.opacity
        self.smoothing = live.smoothing
        self.max_faces = live.max_faces


def load_pipeline_settings(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> PipelineSettings:
    """Load a pipeline profile (optional) plus `key=value` overrides, validated."""
    return load_settings(PipelineSettings, path, overrides)
