"""Sinks: the annotated video (optionally in segments) and per-face rows (CSV or JSONL).

Row schema (one row per face per frame; frames without faces write no row, their frame numbers
are simply absent):

    frame, timestamp_s, face_id, x, y, w, h, expression, confidence,
    p_neutral, p_happiness, p_surprise, p_fear, p_anger, p_disgust, p_sadness,
    [the 52 MediaPipe blendshape names, with --blendshapes]

`frame` is the source frame index (0-based), `timestamp_s` the source time of the frame
(container time for files, seconds since start for live sources), `face_id` the tracker's stable
track id, `x, y, w, h` the face box in frame pixels (top-left corner and size), `expression` the
smoothed top class, `confidence` its smoothed probability, `p_<class>` the smoothed probabilities
in `edgefer.classes.EXPRESSIONS` order. docs/pipeline.md maps these to OpenFace's and py-feat's.

Both writers flush at least every `flush_seconds`, so a crash loses at most that much; a write
failure (disk full, path gone) raises `SinkError` naming the path, and the runner stops only that
sink.

The video is H.264 in MP4 by default (`encoder="auto"`), the one codec every browser plays,
encoded by libx264 inside PyAV's wheels (a base dependency: wheels for x86_64 and aarch64, no
system FFmpeg needed). OpenCV's pip wheels cannot write H.264, so without PyAV (or with a PyAV
that has no H.264 encoder) `auto` falls back to OpenCV's `mp4v` with a warning saying why.
`encoder="gstreamer"` keeps Jetson's hardware encoder; `encoder="opencv"` uses `codec`.

The code lives in three modules: `rows` (the row schema and writer), `video` (the recorder and
its writers) and `sinkbase` (`SinkError`); every name stays importable from here.
"""

from __future__ import annotations

from edgefer.pipeline.rows import BASE_COLUMNS, PROB_COLUMNS, RowWriter, face_rows, row_columns
from edgefer.pipeline.sinkbase import SinkError, prepare_path
from edgefer.pipeline.video import (
    ENCODERS,
    FFMPEG_FORMATS,
    H264_CRF,
    H264_ENCODERS,
    H264_PRESET,
    MUXERS,
    PyAVH264Writer,
    VideoRecorder,
    ffmpeg_format,
    gstreamer_writer_pipeline,
    h264_encoder,
    record_path,
    segment_path,
)

__all__ = [
    "BASE_COLUMNS",
    "ENCODERS",
    "FFMPEG_FORMATS",
    "H264_CRF",
    "H264_ENCODERS",
    "H264_PRESET",
    "MUXERS",
    "PROB_COLUMNS",
    "PyAVH264Writer",
    "RowWriter",
    "SinkError",
    "VideoRecorder",
    "face_rows",
    "ffmpeg_format",
    "gstreamer_writer_pipeline",
    "h264_encoder",
    "prepare_path",
    "record_path",
    "row_columns",
    "segment_path",
]
