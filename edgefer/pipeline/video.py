"""The annotated video sink: H.264 in MP4 by default, segments, GStreamer, disk checks. Why this
encoder: `edgefer.pipeline.sinks`; measurements: docs/pipeline.md (Recording)."""

from __future__ import annotations

import logging
import math
import shutil
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from edgefer.pipeline.sinkbase import SinkError, prepare_path

log = logging.getLogger(__name__)

#: GStreamer muxer per container name (the `encoder: gstreamer` pipeline).
MUXERS = {"mp4": "qtmux", "mov": "qtmux", "m4v": "qtmux", "mkv": "matroskamux", "avi": "avimux", "ts": "mpegtsmux"}


def record_path(path: str | Path, container: str = "mp4") -> Path:
    """The recording path with a container suffix added when it has none.

    An existing path that is not a regular file (a device such as /dev/full, a FIFO) is kept as
    it is: the user named that very thing, and `/dev/full` + `.mp4` would silently create a
    regular file beside the devices instead.
    """
    p = Path(path)
    if p.suffix or _is_special(p):
        return p
    return p.with_suffix("." + container.lstrip("."))


def _is_special(p: Path) -> bool:
    """An existing path that is neither a regular file nor a folder (device, FIFO, socket)."""
    try:
        return p.exists() and not p.is_file() and not p.is_dir()
    except OSError:
        return False


def segment_path(base: str | Path, index: int) -> Path:
    """`OUT.mp4`, segment 3 -> `OUT_003.mp4` (sorted by name = sorted by time)."""
    if index < 0:
        raise ValueError(f"segment index must be >= 0, got {index}")
    b = Path(base)
    return b.with_name(f"{b.stem}_{index:03d}{b.suffix}")


def gstreamer_writer_pipeline(
    path: str | Path, encoder: str = "nvv4l2h264enc", bitrate_kbps: int = 8000, container: str | None = None
) -> str:
    """A GStreamer pipeline string for `cv2.VideoWriter(..., cv2.CAP_GSTREAMER, ...)`.

    Jetson's hardware encoders (`nvv4l2h264enc`, `nvv4l2h265enc`) take NV12 in NVMM memory, so
    BGR frames from `appsrc` go through `videoconvert` (BGR -> BGRx) and `nvvidconv` (-> NVMM
    NV12); their `bitrate` is in bit/s and `insert-sps-pps=true` repeats the stream headers so
    a segment or a cut stream is decodable from any IDR frame. Other encoders (e.g. `x264enc`,
    bitrate in kbit/s) get `videoconvert` to I420. The muxer follows the file suffix (qtmux for
    .mp4/.mov, matroskamux for .mkv — an .mkv stays playable even when the writer is killed).
    """
    p = Path(path)
    ext = (container or p.suffix.lstrip(".") or "mp4").lower()
    if ext not in MUXERS:
        raise ValueError(f"recording {p}: no GStreamer muxer for container {ext!r}; use one of {sorted(MUXERS)}")
    mux = MUXERS[ext]
    parse = "h265parse" if "265" in encoder else "h264parse"
    if encoder.startswith("nvv4l2"):
        head = (
            "appsrc ! video/x-raw, format=(string)BGR ! videoconvert ! video/x-raw, format=(string)BGRx ! "
            "nvvidconv ! video/x-raw(memory:NVMM), format=(string)NV12 ! "
            f"{encoder} bitrate={int(bitrate_kbps) * 1000} insert-sps-pps=true"
        )
    elif encoder == "x264enc":
        head = (
            "appsrc ! video/x-raw, format=(string)BGR ! videoconvert ! video/x-raw, format=(string)I420 ! "
            f"x264enc bitrate={int(bitrate_kbps)} speed-preset=ultrafast tune=zerolatency"
        )
    else:
        head = f"appsrc ! video/x-raw, format=(string)BGR ! videoconvert ! {encoder}"
    location = str(p).replace('"', '\\"')
    return f'{head} ! {parse} ! {mux} ! filesink location="{location}"'


def _gstreamer_available() -> bool:
    import cv2

    return "GStreamer:                   YES" in cv2.getBuildInformation()


#: FFmpeg muxer per container name, for a path whose suffix cannot tell (a device such as /dev/full).
FFMPEG_FORMATS = {"mp4": "mp4", "m4v": "mp4", "mov": "mov", "mkv": "matroska", "avi": "avi", "ts": "mpegts"}
#: Encoders `VideoRecorder` accepts; `auto` is H.264 through PyAV, else OpenCV's FourCC `codec`.
ENCODERS: tuple[str, ...] = ("auto", "pyav", "opencv", "gstreamer")
#: PyAV H.264 encoders in order of preference (libx264 is in PyAV's wheels; openh264 in some builds).
H264_ENCODERS: tuple[str, ...] = ("libx264", "libopenh264")
#: Fragmented MP4 (`movflags`): a fragment (moof+mdat) is written at every keyframe, at least
#: every 2 s, after an empty moov. A file cut anywhere (a full disk, the process killed) plays up
#: to its last fragment, where a plain MP4 without its final index does not play at all. Measured
#: on a 200-frame file cut at 10/30/50/77/95 % of its bytes: 12/51/88/142/185 frames decode
#: (OpenCV); browsers play fragmented MP4 (the MSE format), and OpenCV/FFmpeg read its frame count
#: from the `mfra` index written at a clean close.
FRAGMENTED_MP4 = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}
#: libx264 speed/size trade-off. Measured on the one-face clip (640x360): `superfast` at CRF 23
#: costs about 4 ms of CPU per frame (OpenCV mp4v 2 ms, `veryfast` 6 ms) and gives files half the
#: size of mp4v's, so the sink thread stays cheap on a 2-core edge box.
H264_PRESET = "superfast"
H264_CRF = 23


def h264_encoder() -> tuple[str | None, str]:
    """The PyAV H.264 encoder this machine has, or (None, why not) — for `auto` and the doctor."""
    try:
        import av
    except ImportError as exc:
        return None, f"PyAV is not installed ({exc}); `pip install av` (an edgefer dependency) adds it"
    for name in H264_ENCODERS:
        try:
            av.codec.Codec(name, "w")
        except Exception:  # noqa: BLE001 - av raises UnknownCodecError (or ValueError in old versions)
            continue
        return name, ""
    return None, f"this PyAV ({av.__version__}) has no H.264 encoder ({', '.join(H264_ENCODERS)})"


class PyAVH264Writer:
    """H.264 (yuv420p, CRF `H264_CRF`) into the container of `path`, through PyAV's FFmpeg.

    The interface is the slice of `cv2.VideoWriter` the recorder uses (`write`, `release`,
    `isOpened`). Unlike OpenCV, a failed write (disk full, file gone) is not silent: it raises
    SinkError naming the file. H.264 in yuv420p needs even sizes, so an odd last column or row is
    cropped (never scaled). Frames get consecutive timestamps at `fps` (constant frame rate, as
    OpenCV writes); `release` flushes the encoder's delayed frames and writes the index.

    The file is opened here (a Python file object handed to PyAV), and after the first failed
    write the muxer is never called again: PyAV retries a header that failed to write on the next
    call and crashes the process (seen with `/dev/full`), so a broken writer only closes its file.
    MP4 and MOV are written fragmented (`FRAGMENTED_MP4`), so such a file, or one whose process was
    killed, still plays up to its last complete fragment (`playable_frames` counts them).
    """

    def __init__(
        self, path: Path, fps: float, size: tuple[int, int], codec_name: str = "libx264", container: str = "mp4"
    ) -> None:
        import av

        self.path = Path(path)
        w, h = size
        self._w, self._h = w - w % 2, h - h % 2
        if self._w < 2 or self._h < 2:
            raise SinkError(f"recording {self.path}: a {w}x{h} frame is too small for H.264")
        fmt = ffmpeg_format(self.path, container)
        if fmt is None:
            raise SinkError(
                f"recording {self.path}: H.264 goes into {', '.join(sorted(FFMPEG_FORMATS))} files, not "
                f"{self.path.suffix or container!r}"
            )
        try:
            self._fh = open(self.path, "wb")
        except OSError as exc:
            raise SinkError(f"recording {self.path}: cannot open for writing ({exc.strerror or exc})") from exc
        try:
            options = FRAGMENTED_MP4 if fmt in ("mp4", "mov") else {}
            self._container = av.open(self._fh, mode="w", format=fmt, options=dict(options))
            rate = Fraction(fps).limit_denominator(1001)
            self._stream = self._container.add_stream(codec_name, rate=rate)
            self._stream.width, self._stream.height = self._w, self._h
            self._stream.pix_fmt = "yuv420p"  # what browsers decode (High profile)
            # A keyframe at least every 2 s: seeking in a browser and cutting a segment stay cheap.
            self._stream.options = {"preset": H264_PRESET, "crf": str(H264_CRF), "g": str(max(1, round(2 * fps)))}
        except (av.FFmpegError, OSError, ValueError) as exc:
            self._fh.close()
            raise SinkError(f"recording {self.path}: cannot set up the {codec_name} encoder ({exc})") from exc
        self._frames = 0
        self._open = True
        self._broken = False

    def isOpened(self) -> bool:  # noqa: N802 - cv2.VideoWriter's name, so the recorder treats both alike
        return self._open

    def write(self, image: np.ndarray) -> None:
        import av

        if not self._open or self._broken:
            raise SinkError(f"recording {self.path} is closed")
        if image.shape[1] != self._w or image.shape[0] != self._h:
            image = image[: self._h, : self._w]
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        frame.pts = self._frames
        try:
            self._container.mux(self._stream.encode(frame))
        except (av.FFmpegError, OSError) as exc:
            self._broken = True
            raise SinkError(f"recording {self.path}: write failed ({_reason(exc)})") from exc
        self._frames += 1

    def release(self) -> None:
        """Flush and close; a broken writer (a write failed, already reported) only closes its file."""
        import av

        if not self._open:
            return
        self._open = False
        problems = []
        if not self._broken:
            try:
                self._container.mux(self._stream.encode(None))  # the encoder's delayed frames
                self._container.close()  # writes the MP4 index (moov)
            except (av.FFmpegError, OSError) as exc:
                problems.append(f"finishing the file failed ({_reason(exc)})")
        try:
            self._fh.close()
        except OSError as exc:
            if not self._broken:
                problems.append(f"closing failed ({_reason(exc)})")
        if problems:
            raise SinkError(f"recording {self.path}: {'; '.join(problems)}")


def playable_frames(path: Path, decode: bool = False) -> int:
    """About how many video frames of `path` play: its demuxed packets, without decoding (fast on
    the sink thread); a cut fragmented MP4 demuxes up to the cut, where the last packet or two are
    partial (measured: 3 more packets than decoded frames). With `decode`, the frames that decode
    (exact, slower). 0 when it does not open."""
    import av

    n = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return 0
            try:
                if decode:
                    for _frame in container.decode(video=0):
                        n += 1
                else:
                    for packet in container.demux(video=0):
                        if packet.size:
                            n += 1
            except (av.FFmpegError, OSError):
                pass  # the cut: what came before it plays
    except (av.FFmpegError, OSError):
        return 0
    return n


def _reason(exc: BaseException) -> str:
    """`No space left on device` rather than `[Errno 28] No space left on device: '/path'`."""
    return str(getattr(exc, "strerror", None) or exc)


def ffmpeg_format(path: Path, container: str = "mp4") -> str | None:
    """The FFmpeg muxer for `path` (its suffix, else `container`), None when H.264 cannot go there."""
    ext = (path.suffix.lstrip(".") or container.lstrip(".")).lower()
    return FFMPEG_FORMATS.get(ext)


class VideoRecorder:
    """Annotated-video writer: opened lazily at the first frame's size, optionally segmented.

    With `segment_seconds`, a new file starts when a frame's timestamp is that far past the
    first frame of the current segment (`OUT_000.mp4`, `OUT_001.mp4`, ...); each finished
    segment is closed (and so playable) at once. Frames of another size (a stream that
    reconnected at another resolution) are resized to the file's size. Every failure is a
    SinkError naming the file.

    `encoder`: `auto` (default) records H.264 through PyAV when this machine has it, else falls
    back to OpenCV with `codec` (mp4v) and says why in `fallback_reason` (also logged as a
    warning); `pyav` insists on H.264 (SinkError when unavailable); `opencv` writes `codec`
    through `cv2.VideoWriter`; `gstreamer` writes through `gst_encoder` (Jetson hardware).
    `encoder` afterwards holds what is actually used, `format` describes it for messages.
    """

    #: How often (frames) the free space of the recording's disk is checked.
    DISK_CHECK_EVERY = 50

    def __init__(
        self,
        path: str | Path,
        fps: float,
        *,
        codec: str = "mp4v",
        container: str = "mp4",
        segment_seconds: float | None = None,
        encoder: str = "auto",
        gst_encoder: str = "nvv4l2h264enc",
        bitrate_kbps: int = 8000,
        min_free_mb: float = 64.0,
    ) -> None:
        if not fps or not math.isfinite(fps) or fps <= 0:
            raise ValueError(f"recording {path}: fps must be > 0, got {fps}")
        if len(codec) != 4:
            raise ValueError(f"recording {path}: codec must be a 4-character FourCC, got {codec!r}")
        if encoder not in ENCODERS:
            raise ValueError(f"recording {path}: encoder must be one of {', '.join(ENCODERS)}, not {encoder!r}")
        self.base = record_path(path, container)
        if segment_seconds is not None and _is_special(self.base):
            raise ValueError(f"recording {self.base}: a device or pipe cannot be split into segments")
        self.container = container
        self.fps = float(fps)
        self.codec = codec
        self.segment_seconds = segment_seconds
        #: Why `auto` could not record H.264 (None when it does, or when another encoder was asked for).
        self.fallback_reason: str | None = None
        self._h264: str | None = None
        if encoder in ("auto", "pyav"):
            self._h264, why = h264_encoder()
            if self._h264 is not None and ffmpeg_format(self.base, container) is None:
                self._h264, why = None, f"H.264 goes into {', '.join(sorted(FFMPEG_FORMATS))} files"
            if self._h264 is None and encoder == "pyav":
                raise SinkError(f"recording {self.base}: H.264 through PyAV is unavailable: {why}")
            if self._h264 is None:
                self.fallback_reason = (
                    f"H.264 is unavailable ({why}); recording {self.base.name} as MPEG-4 Part 2 "
                    f"(OpenCV FourCC {codec}), which plays in VLC/ffmpeg but not in web browsers"
                )
                log.warning("recording %s: %s", self.base, self.fallback_reason)
            encoder = "pyav" if self._h264 else "opencv"
        self.encoder = encoder
        self.gst_encoder = gst_encoder
        self.bitrate_kbps = bitrate_kbps
        self.min_free_mb = min_free_mb
        self.files: list[Path] = []
        #: Files removed after a failed write because nothing of them played.
        self.dropped: list[Path] = []
        self.frames_written = 0
        self._writer: Any = None  # the open segment's writer
        self._size: tuple[int, int] | None = None
        self._segment = -1
        self._segment_start: float | None = None
        prepare_path(self.base, "recording")

    @property
    def format(self) -> str:
        """What the files are, for messages: e.g. `H.264 (libx264 via PyAV)`."""
        if self.encoder == "pyav":
            return f"H.264 ({self._h264} via PyAV)"
        if self.encoder == "gstreamer":
            return f"GStreamer {self.gst_encoder}"
        return f"OpenCV FourCC {self.codec}"

    @property
    def current_file(self) -> Path | None:
        return self.files[-1] if self._writer is not None and self.files else None

    def _next_path(self) -> Path:
        if self.segment_seconds is None:
            return self.base
        return segment_path(self.base, self._segment + 1)

    def _open(self, size: tuple[int, int]) -> None:
        import cv2

        path = self._next_path()
        w, h = size
        writer: Any  # cv2.VideoWriter or PyAVH264Writer: the same write/isOpened/release
        if self.encoder == "gstreamer":
            if not _gstreamer_available():
                raise SinkError(
                    f"recording {path}: this OpenCV ({cv2.__version__}) has no GStreamer support; "
                    "use JetPack's OpenCV or set record.encoder: opencv"
                )
            pipeline = gstreamer_writer_pipeline(path, self.gst_encoder, self.bitrate_kbps)
            writer = cv2.VideoWriter(pipeline, cv2.CAP_GSTREAMER, 0, self.fps, (w, h), True)
        elif self.encoder == "pyav":
            writer = PyAVH264Writer(path, self.fps, (w, h), self._h264 or H264_ENCODERS[0], self.container)
        else:
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*self.codec), self.fps, (w, h), True)
        if not writer.isOpened():
            writer.release()
            how = f"GStreamer encoder {self.gst_encoder}" if self.encoder == "gstreamer" else f"codec {self.codec}"
            hint = ""
            if self.encoder == "opencv" and self.codec.lower() in ("avc1", "h264", "x264", "hev1", "hvc1"):
                hint = "; OpenCV's pip wheels cannot encode H.264/H.265: use record.encoder auto (H.264 through PyAV)"
            raise SinkError(
                f"recording {path}: cannot open for writing with {how} (path not writable or codec unavailable{hint})"
            )
        self._writer = writer
        self._size = (w, h)
        self._segment += 1
        self.files.append(path)
        log.info("recording to %s (%s, %dx%d @ %.2f fps)", path, self.format, w, h, self.fps)

    def _close_writer(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            try:
                writer.release()
            except SinkError as exc:  # e.g. the disk filled up at the last fragment: say what plays
                raise SinkError(self._with_what_plays(str(exc))) from exc

    def write(self, image: np.ndarray, timestamp_s: float) -> None:
        """Append one BGR frame; rotates to the next segment when it is due."""
        if image is None or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise SinkError(f"recording {self.base}: expected a BGR uint8 (H, W, 3) frame")
        if (
            self._writer is not None
            and self.segment_seconds is not None
            and self._segment_start is not None
            and timestamp_s - self._segment_start >= self.segment_seconds
        ):
            self._close_writer()
        if self._writer is None:
            size = self._size or (image.shape[1], image.shape[0])
            self._open(size)
            self._segment_start = timestamp_s
        if (image.shape[1], image.shape[0]) != self._size:
            import cv2

            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        if self.frames_written % self.DISK_CHECK_EVERY == 0:
            self._check_disk()
        try:
            self._writer.write(image)
        except SinkError as exc:
            writer, self._writer = self._writer, None
            try:
                writer.release()  # a broken writer only closes its file
            except SinkError as again:
                log.debug("closing the failed recording: %s", again)
            raise SinkError(self._with_what_plays(str(exc))) from exc
        self.frames_written += 1

    def _with_what_plays(self, message: str) -> str:
        """`message` about the current file, which failed and is closed, plus what of it plays,
        truthfully. A file with nothing playable is removed (it is not an output, and on a full
        disk its bytes are better freed); `dropped` lists it. A device gets no verdict."""
        path = self.files[-1]
        if _is_special(path) or self.encoder != "pyav":
            return message
        return f"{message}; {self._what_plays(path)}"

    def _what_plays(self, path: Path) -> str:
        n = playable_frames(path)
        if n <= 2 * self.fps:  # a short file: decode it, so that "plays" is exact
            n = playable_frames(path, decode=True)
        if n:
            return f"what was written before it is kept and plays (about {n} frame(s), {n / self.fps:.1f} s)"
        self.files.pop()
        self.dropped.append(path)
        try:
            path.unlink()
        except OSError as exc:
            return f"nothing of it plays, and removing it failed ({exc.strerror or exc})"
        return "nothing of it played, so it was removed"

    def _check_disk(self) -> None:
        path = self.files[-1] if self.files else self.base
        try:
            free_mb = shutil.disk_usage(path.parent).free / 1e6
        except OSError as exc:
            raise SinkError(f"recording {path}: its folder is gone ({exc.strerror or exc})") from exc
        if self.encoder != "pyav" and free_mb < 1.0 and not _is_special(path):
            # OpenCV's writers fail silently on a full disk (PyAV's raises): say it, even with
            # record.min_free_mb 0. Their MP4 index is written at the close, which may fail too.
            raise SinkError(
                f"recording {path}: the disk is full ({free_mb:.1f} MB free); the {self.format} file may not play"
            )
        if free_mb < self.min_free_mb:
            raise SinkError(
                # The caller says that the recording stops; saying it here too printed it twice.
                f"recording {path}: disk nearly full ({free_mb:.0f} MB free < record.min_free_mb "
                f"{self.min_free_mb:.0f} MB); what was written is kept"
            )

    def close(self) -> None:
        """Finish the current file (playable afterwards)."""
        self._close_writer()

    def __enter__(self) -> VideoRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
