"""Video sources: parse what the user typed into a typed `SourceSpec`, open it, read frames.

Accepted forms (`SourceSpec.parse`), the ones OpenCV users and jetson-inference users already type:

| typed                                   | kind        | opened as                                   | live |
|-----------------------------------------|-------------|---------------------------------------------|------|
| `0`, `1`                                | `camera`    | camera index (V4L2 on Linux)                | yes  |
| `/dev/video0`, `v4l2:///dev/video0`     | `v4l2`      | the device path through V4L2                | yes  |
| `csi://0` (`?width=1920&height=1080&fps=30&flip=2`) | `csi` | an `nvarguscamerasrc` GStreamer pipeline | yes |
| `rtsp://…`, `rtsps://`, `rtmp://`, `udp://`, `srt://` | `stream` | FFmpeg                             | yes  |
| `http(s)://…/clip.mp4`                  | `stream`    | FFmpeg; live unless it ends in a video file suffix | see left |
| `… ! … ! appsink`                       | `gstreamer` | `cv2.CAP_GSTREAMER`                         | yes, unless `filesrc` |
| `file://clip.mp4`, `clip.mp4`, `clip.gif`, `img_%04d.png` | `file` | FFmpeg (anything it decodes)     | no   |

Parsing is pure (no I/O) so it is tested exhaustively; `FrameReader` does the I/O. Live sources
drop stale frames and reconnect when lost (the runner does that); files are read frame by frame,
and a damaged or truncated file yields every frame that decodes, with the failures counted.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import numpy as np

from edgefer.media import VIDEO_SUFFIXES
from edgefer.redact import redact
from edgefer.types import Frame

log = logging.getLogger(__name__)

SourceKind = Literal["camera", "v4l2", "csi", "stream", "gstreamer", "file"]
CaptureApi = Literal["any", "ffmpeg", "gstreamer", "v4l2"]

#: URL schemes that are network streams (always live).
LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "udp", "tcp", "srt", "rtp")

#: Defaults of the Jetson CSI camera pipeline (a common IMX219/IMX477 sensor mode).
CSI_DEFAULTS = {"width": 1280, "height": 720, "fps": 30, "flip": 0}


class SourceError(RuntimeError):
    """A source that cannot be opened or read; the message names the source."""


@dataclass(frozen=True, repr=False)
class SourceSpec:
    """A parsed source: what to open, how, and whether it is live.

    `uri` is exactly what OpenCV is given (a path, a URL, a device path or a GStreamer
    pipeline); `index` is set for camera indices. `original` is what the user typed. `is_live`
    decides stale-frame dropping and reconnection. `uri` and `original` may hold credentials
    (`rtsp://user:password@host`): they go to OpenCV and nowhere else; messages, logs, stats
    and the UI use `label` (and `repr`), which mask them (`edgefer.redact`).
    """

    kind: SourceKind
    uri: str
    is_live: bool
    api: CaptureApi = "any"
    index: int | None = None
    original: str = ""

    @property
    def label(self) -> str:
        """A short human name for messages and the stats line, credentials masked."""
        if self.kind == "camera":
            return f"camera {self.index}"
        if self.kind in ("gstreamer", "csi"):
            shown = redact(self.original)
            return shown if len(shown) < 60 else shown[:57] + "..."
        return redact(self.uri)

    def __repr__(self) -> str:
        return (
            f"SourceSpec(kind={self.kind!r}, uri={redact(self.uri)!r}, is_live={self.is_live!r}, "
            f"api={self.api!r}, index={self.index!r}, original={redact(self.original)!r})"
        )

    @classmethod
    def parse(
        cls,
        text: str | int,
        *,
        live: bool | None = None,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
    ) -> SourceSpec:
        """Parse a source string; `live` overrides the kind's default liveness.

        `width`/`height`/`fps` fill the CSI pipeline when the URI does not give them.
        Raises ValueError for an empty source or a malformed URI (naming it).
        """
        spec = _parse(str(text).strip() if not isinstance(text, int) else str(text), width, height, fps)
        if live is not None and live != spec.is_live:
            spec = SourceSpec(spec.kind, spec.uri, live, spec.api, spec.index, spec.original)
        return spec

    def missing_file(self) -> Path | None:
        """The local file this source names when it does not exist, else None.

        Checked before anything loads, by the pipeline and by the window alike. An image sequence
        (`img_%04d.png`) is not one file: FFmpeg resolves it when it opens.
        """
        if self.kind != "file" or "%" in self.uri:
            return None
        path = Path(self.uri)
        return None if path.is_file() else path

    def file_problem(self) -> str | None:
        """Why this local file source cannot be read, in the words shown to the user; else None.

        One check for the pipeline (`Pipeline.start` raises it as a `PipelineError`, so `edgefer
        run`, the window and any API caller say the same) before anything loads: a folder is
        called a folder, not a missing file.
        """
        path = self.missing_file()
        if path is None:
            return None
        if path.is_dir():
            return (
                f"source {redact(self.uri)} is a folder, not a video file; give a video file in it, or its frames "
                f"as an image sequence such as {redact(str(path / 'img_%04d.png'))}"
            )
        return f"source file not found: {redact(self.uri)}"


def _parse(text: str, width: int | None, height: int | None, fps: float | None) -> SourceSpec:
    if not text:
        raise ValueError("source is empty; give a camera index, a file, a URL or a GStreamer pipeline")
    if "!" in text:
        live = "filesrc" not in text and "multifilesrc" not in text
        return SourceSpec("gstreamer", text, live, "gstreamer", None, text)
    if text.isdigit():
        return SourceSpec("camera", text, True, "v4l2", int(text), text)
    if text.startswith("/dev/video"):
        return SourceSpec("v4l2", text, True, "v4l2", None, text)

    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if not scheme:
        return SourceSpec("file", text, False, "any", None, text)
    parts = urlsplit(text)
    if scheme == "file":
        # file:///abs/path -> /abs/path ; file://relative/path -> relative/path (jetson-inference style)
        path = (parts.netloc + parts.path) if parts.netloc else parts.path
        if not path:
            raise ValueError(f"source {redact(text)!r}: file:// URI without a path")
        return SourceSpec("file", path, False, "any", None, text)
    if scheme == "v4l2":
        device = (parts.netloc + parts.path) if parts.netloc else parts.path
        if not device:
            raise ValueError(f"source {redact(text)!r}: v4l2:// URI without a device (e.g. v4l2:///dev/video0)")
        if device.isdigit():
            return SourceSpec("camera", device, True, "v4l2", int(device), text)
        return SourceSpec("v4l2", device, True, "v4l2", None, text)
    if scheme == "csi":
        sensor = parts.netloc or parts.path.lstrip("/") or "0"
        if not sensor.isdigit():
            raise ValueError(f"source {redact(text)!r}: csi:// needs a sensor number, e.g. csi://0")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(query) - set(CSI_DEFAULTS)
        if unknown:
            raise ValueError(
                f"source {redact(text)!r}: unknown csi option(s) {sorted(unknown)}; use {sorted(CSI_DEFAULTS)}"
            )
        try:
            w = int(query.get("width", width or CSI_DEFAULTS["width"]))
            h = int(query.get("height", height or CSI_DEFAULTS["height"]))
            f = float(query.get("fps", fps or CSI_DEFAULTS["fps"]))
            flip = int(query.get("flip", CSI_DEFAULTS["flip"]))
        except ValueError as exc:
            raise ValueError(f"source {redact(text)!r}: csi options must be numbers ({exc})") from None
        pipeline = csi_pipeline(int(sensor), w, h, f, flip)
        return SourceSpec("csi", pipeline, True, "gstreamer", int(sensor), text)
    if scheme in LIVE_SCHEMES:
        return SourceSpec("stream", text, True, "ffmpeg", None, text)
    if scheme in ("http", "https"):
        live = not parts.path.lower().endswith(VIDEO_SUFFIXES)
        return SourceSpec("stream", text, live, "ffmpeg", None, text)
    raise ValueError(
        f"source {redact(text)!r}: unknown scheme {scheme!r}; use a camera index, a file path, file://, "
        "v4l2://, csi://, rtsp://, http(s):// or a GStreamer pipeline"
    )


def csi_pipeline(sensor_id: int = 0, width: int = 1280, height: int = 720, fps: float = 30, flip: int = 0) -> str:
    """The GStreamer pipeline for a Jetson CSI camera (Argus), ending in BGR for OpenCV.

    Written against the documented Jetson elements: `nvarguscamerasrc` (NVMM NV12 output),
    `nvvidconv` (NVMM -> system memory BGRx, optional `flip-method`), `videoconvert` to BGR, and an
    `appsink` that keeps only the newest buffer so a slow consumer never sees stale frames.
    """
    if width <= 0 or height <= 0 or fps <= 0:
        raise ValueError(f"csi pipeline needs positive width/height/fps, got {width}x{height}@{fps}")
    if not 0 <= flip <= 7:
        raise ValueError(f"csi flip-method must be 0..7, got {flip}")
    num, den = _fraction(fps)
    return (
        f"nvarguscamerasrc sensor-id={sensor_id} ! "
        f"video/x-raw(memory:NVMM), width=(int){width}, height=(int){height}, "
        f"framerate=(fraction){num}/{den}, format=(string)NV12 ! "
        f"nvvidconv flip-method={flip} ! video/x-raw, format=(string)BGRx ! "
        "videoconvert ! video/x-raw, format=(string)BGR ! "
        "appsink drop=true max-buffers=1 sync=false"
    )


def _fraction(fps: float) -> tuple[int, int]:
    if float(fps).is_integer():
        return int(fps), 1
    return int(round(fps * 1000)), 1000


def backoff_delays(initial_s: float, max_s: float, factor: float = 2.0) -> Iterator[float]:
    """Exponential backoff: initial, initial*2, ... capped at `max_s`, forever."""
    delay = initial_s
    while True:
        yield min(delay, max_s)
        delay = min(delay * factor, max_s)


def _cv2():  # cv2 import kept local so `edgefer run --help` stays instant
    import cv2

    return cv2


#: Source kinds that are a device of this machine: one that never opened is not waited for.
LOCAL_DEVICES: tuple[str, ...] = ("camera", "v4l2", "csi")


def device_node(spec: SourceSpec) -> Path | None:
    """The V4L2 device node a camera source names on Linux (`0` -> /dev/video0), else None."""
    if not sys.platform.startswith("linux"):
        return None
    if spec.kind == "camera" and spec.index is not None:
        return Path(f"/dev/video{spec.index}")
    if spec.kind == "v4l2":
        return Path(spec.uri)
    return None


@contextmanager
def _quiet_opencv(cv2: Any) -> Iterator[None]:
    """OpenCV's own log lines off while a camera is probed: a missing camera printed about 40 lines
    of `[ WARN:0@…] … can't open camera by index` from every backend it tried; our one message says it."""
    logging_ = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging_ is None:
        yield
        return
    before = logging_.getLogLevel()
    logging_.setLogLevel(logging_.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging_.setLogLevel(before)


def open_capture(spec: SourceSpec, width: int | None = None, height: int | None = None, fps: float | None = None,
                 stall_timeout_s: float | None = None):
    """Open `spec` with OpenCV; raise SourceError naming the source when it does not open.

    `stall_timeout_s`: for a network stream, how long opening it or waiting for its next frame
    may block before it counts as lost (OpenCV's FFmpeg open/read timeouts; FFmpeg's own default
    is 30 s, and Ctrl+C waits for a blocked read).
    """
    cv2 = _cv2()
    node = device_node(spec)
    if node is not None and not node.exists():
        raise SourceError(f"cannot open source {spec.label}: {node} does not exist (no such camera on this machine)")
    if spec.kind == "file":
        path = Path(spec.uri)
        if "%" not in spec.uri and not path.exists():
            raise SourceError(f"source file not found: {spec.uri}")
        if path.is_dir():
            raise SourceError(f"source {spec.uri} is a folder, not a video file")
    if spec.api == "gstreamer" and "GStreamer:                   YES" not in cv2.getBuildInformation():
        raise SourceError(
            f"source {spec.label}: this OpenCV ({cv2.__version__}) was built without GStreamer; "
            "use JetPack's OpenCV (python3-opencv) for GStreamer/CSI sources"
        )
    api = {
        "any": cv2.CAP_ANY,
        "ffmpeg": cv2.CAP_FFMPEG,
        "gstreamer": cv2.CAP_GSTREAMER,
        "v4l2": cv2.CAP_V4L2,
    }[spec.api]
    target: str | int = spec.index if spec.kind == "camera" and spec.index is not None else spec.uri
    params: list[int] = []
    if spec.kind == "stream" and stall_timeout_s is not None:
        ms = max(1, int(stall_timeout_s * 1000))
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
    with _quiet_opencv(cv2) if spec.kind in LOCAL_DEVICES else nullcontext():
        cap = cv2.VideoCapture(target, api, params) if params else cv2.VideoCapture(target, api)
        if not cap.isOpened() and spec.api != "any":
            cap.release()
            cap = cv2.VideoCapture(target)  # let OpenCV pick another backend
    if not cap.isOpened():
        cap.release()
        what = "not a video OpenCV/FFmpeg can decode" if spec.kind == "file" else "not available"
        if spec.kind in LOCAL_DEVICES:
            what = "the device exists but does not deliver video (busy in another program, or not a capture device)"
        raise SourceError(f"cannot open source {spec.label}: {what}")
    if spec.is_live and spec.kind in ("camera", "v4l2"):
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # newest frame, not a queue of old ones (where supported)
        if width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        if fps:
            cap.set(cv2.CAP_PROP_FPS, fps)
    return cap


@dataclass
class ReadCounters:
    """What a reader saw: frames decoded, failed reads inside the stream, reopenings."""

    frames: int = 0
    read_errors: int = 0
    loops: int = 0
    damaged: bool = False


class FrameReader:
    """Reads `Frame`s from one opened source, with stable indices and increasing timestamps.

    Files: timestamps come from the container (`CAP_PROP_POS_MSEC`) when they increase, else from
    the frame rate. A failed read before the announced frame count seeks past the damage: one frame
    at a time for `max_read_failures` consecutive failures, then in doubling steps, until a frame
    decodes again or the announced count is passed (then the file counts as damaged). Why the
    doubling: a truncated file would otherwise cost one seek per missing frame (about 90 ms each);
    the price is that a damaged stretch longer than `max_read_failures` frames may lose up to as
    many decodable frames after it. A container that refuses to seek ends at its first damage.
    With `loop`, a file that ends is reopened and its timestamps continue after the last
    frame, so the tracker's clock keeps running. Live sources: timestamps are seconds since the
    reader started (monotonic clock); a failed read returns None and the caller reconnects.
    """

    def __init__(
        self,
        spec: SourceSpec,
        *,
        loop: bool = False,
        max_read_failures: int = 8,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        stall_timeout_s: float | None = None,
    ) -> None:
        self.spec = spec
        self.loop = loop and not spec.is_live
        self.max_read_failures = max_read_failures
        self._req = (width, height, fps)
        self._stall_timeout_s = stall_timeout_s
        self.counters = ReadCounters()
        self._cap: Any = None  # a cv2.VideoCapture while open
        self._t0 = time.monotonic()
        self._last_ts = -math.inf
        self._loop_offset = 0.0
        self._next_index = 0
        self.fps: float | None = None
        self.frame_count: int | None = None
        self.size: tuple[int, int] | None = None  # (width, height)

    # -- opening --------------------------------------------------------------------------
    def open(self) -> None:
        """Open (or reopen) the source; SourceError names the source when it cannot."""
        self.close()
        cv2 = _cv2()
        self._cap = open_capture(self.spec, *self._req, stall_timeout_s=self._stall_timeout_s)
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0.5 < fps < 1000 else None
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = count if (count > 0 and not self.spec.is_live) else None
        w = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        h = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        self.size = (w, h) if w > 0 and h > 0 else None
        self._file_frames = 0  # frames decoded since this (re)open
        self._file_pos = 0  # the frame position inside the file (decoded and skipped)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    # -- reading --------------------------------------------------------------------------
    def read(self) -> Frame | None:
        """The next frame, or None: end of file (files) or a lost stream (live sources)."""
        if self._cap is None:
            raise SourceError(f"source {self.spec.label} is not open")
        if self.spec.is_live:
            ok, image = self._cap.read()
            if not ok or image is None or image.size == 0:
                return None
            ts = max(time.monotonic() - self._t0, self._last_ts + 1e-3)
            return self._emit(image, ts)
        return self._read_file()

    def _read_file(self) -> Frame | None:
        cv2 = _cv2()
        failures = 0
        while True:
            ok, image = self._cap.read()
            if ok and image is not None and image.size > 0:
                self._file_frames += 1
                self._file_pos = max(self._file_pos + 1, int(self._cap.get(cv2.CAP_PROP_POS_FRAMES) or 0))
                pos_ms = float(self._cap.get(cv2.CAP_PROP_POS_MSEC) or 0.0)
                ts = self._loop_offset + pos_ms / 1000.0
                if not ts > self._last_ts:
                    step = 1.0 / self.fps if self.fps else 1.0 / 30.0
                    ts = (self._last_ts + step) if math.isfinite(self._last_ts) else self._loop_offset
                return self._emit(image, ts)
            count = self.frame_count
            expected_more = count is not None and self._file_pos < count
            if count is not None and expected_more:
                failures += 1
                self.counters.read_errors += 1
                step = 1 if failures <= self.max_read_failures else 2 ** (failures - self.max_read_failures)
                self._file_pos += step
                if self._file_pos < count and self._cap.set(cv2.CAP_PROP_POS_FRAMES, self._file_pos):
                    continue
            if count is not None and (expected_more or self._file_frames < count):
                self.counters.damaged = True
                log.warning(
                    "%s: %d of %d frames decoded (damaged or truncated file)",
                    self.spec.label, self._file_frames, self.frame_count,
                )
            if self.loop and self._file_frames > 0:
                step = 1.0 / self.fps if self.fps else 1.0 / 30.0
                self._loop_offset = self._last_ts + step
                self.counters.loops += 1
                self.open()
                failures = 0
                continue
            return None

    def _emit(self, image: np.ndarray, ts: float) -> Frame:
        self._last_ts = ts
        frame = Frame(index=self._next_index, timestamp_s=float(ts), image=image, wall_time_s=time.time())
        self._next_index += 1
        self.counters.frames += 1
        return frame

    def __enter__(self) -> FrameReader:
        if self._cap is None:
            self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
