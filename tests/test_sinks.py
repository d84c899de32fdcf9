"""Sinks on their own: row schema, CSV/JSONL written and read back, flushing, video segments."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgefer.classes import EXPRESSIONS
from edgefer.pipeline.sinks import (
    RowWriter,
    SinkError,
    VideoRecorder,
    face_rows,
    gstreamer_writer_pipeline,
    record_path,
    row_columns,
    segment_path,
)
from edgefer.types import Box, Face, FacePrediction, Frame, FrameResult

BS_NAMES = tuple(f"bs{i:02d}" for i in range(52))


def _result(index: int = 7, t: float = 0.25, n_faces: int = 2, blendshapes: bool = True) -> FrameResult:
    preds = []
    for k in range(n_faces):
        p = np.full(7, 0.05, np.float32)
        p[k + 1] = 0.7
        face = Face(
            track_id=10 + k,
            box=Box(12.345 + 100 * k, 20.0, 80.5, 96.25),
            landmarks=np.zeros((478, 2), np.float32),
            blendshapes=np.linspace(0, 1, 52, dtype=np.float32) if blendshapes else None,
        )
        preds.append(FacePrediction(face, p, p, None, None, np.eye(2, 3, dtype=np.float32)))
    return FrameResult(Frame(index, t, np.zeros((4, 4, 3), np.uint8)), preds)


def test_columns_order():
    cols = row_columns()
    assert cols[:10] == ["frame", "timestamp_s", "time_utc", "face_id", "x", "y", "w", "h", "expression", "confidence"]
    assert cols[10:] == [f"p_{c}" for c in EXPRESSIONS]
    assert row_columns(BS_NAMES)[17:] == list(BS_NAMES)
    with pytest.raises(ValueError, match="clash"):
        row_columns(("frame",) + BS_NAMES[1:])


def test_face_rows_values():
    rows = face_rows(_result(), BS_NAMES)
    assert len(rows) == 2
    r = rows[1]
    assert list(r) == row_columns(BS_NAMES)
    assert (r["frame"], r["timestamp_s"], r["face_id"]) == (7, 0.25, 11)
    assert (r["x"], r["y"], r["w"], r["h"]) == (round(112.345, 2), 20.0, 80.5, 96.25)
    assert r["expression"] == EXPRESSIONS[2] and r["confidence"] == pytest.approx(0.7)
    assert r["p_surprise"] == pytest.approx(0.7) and r["p_neutral"] == pytest.approx(0.05)
    assert r["bs00"] == 0.0 and r["bs51"] == 1.0
    # faces without blendshapes keep the columns, empty
    assert face_rows(_result(blendshapes=False), BS_NAMES)[0]["bs10"] is None
    assert face_rows(_result(n_faces=0)) == []


def test_csv_round_trip(tmp_path: Path):
    path = tmp_path / "sub" / "faces.csv"  # the folder is created
    with RowWriter(path, row_columns(BS_NAMES), "csv") as w:
        w.write(face_rows(_result(0, 0.0), BS_NAMES))
        w.write(face_rows(_result(1, 0.04, blendshapes=False), BS_NAMES))
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and w.rows_written == 4
    assert list(rows[0]) == row_columns(BS_NAMES)
    assert rows[2]["frame"] == "1" and rows[2]["bs05"] == ""
    assert float(rows[0]["p_happiness"]) == pytest.approx(0.7)


def test_jsonl_round_trip(tmp_path: Path):
    path = tmp_path / "faces.jsonl"
    with RowWriter(path, row_columns(), "jsonl") as w:
        w.write(face_rows(_result()))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 2 and list(rows[0]) == row_columns()
    assert rows[0]["face_id"] == 10 and rows[0]["expression"] == "happiness"


def test_rows_are_flushed_while_running(tmp_path: Path):
    path = tmp_path / "live.csv"
    w = RowWriter(path, row_columns(), "csv", flush_seconds=0.05)
    assert path.read_text().startswith("frame,timestamp_s,time_utc,face_id")  # header on disk at once
    w.write(face_rows(_result(0)))
    time.sleep(0.1)
    w.write(face_rows(_result(1)))  # the flush is due: both frames reach the disk
    assert path.read_text().count("\n") == 5
    w.close()
    w.close()  # idempotent


def test_row_writer_errors_name_the_path(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SinkError, match=r"cannot create folder .*file"):
        RowWriter(blocker / "rows.csv", row_columns())
    with pytest.raises(SinkError, match="is a folder"):
        RowWriter(tmp_path, row_columns())
    with pytest.raises(SinkError, match="/dev/full.*No space left"):
        RowWriter("/dev/full", row_columns())
    with pytest.raises(ValueError, match="csv or jsonl"):
        RowWriter(tmp_path / "x.tsv", row_columns(), "tsv")


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_full_disk_never_leaves_a_half_row(small_disk: Path, fmt: str):
    """Rows written until a real (tmpfs) disk is full: the error names the file, and the file
    ends on a whole row that pandas-style readers parse, the way a crash would leave it."""
    path = small_disk / f"rows.{fmt}"
    writer = RowWriter(path, row_columns(BS_NAMES), fmt, flush_seconds=0.0)
    rows = face_rows(_result(), BS_NAMES)
    with pytest.raises(SinkError, match=rf"rows\.{fmt}: write failed \(No space left on device\)"):
        for _ in range(100_000):
            writer.write(rows)
    written = writer.rows_written
    writer.close()  # the failed batch was dropped: nothing is left to write, the file stays cut at a whole row
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n") and len(text.encode()) > 1_000_000
    if fmt == "csv":
        got = list(csv.reader(text.splitlines()))
        assert got[0] == row_columns(BS_NAMES) and all(len(r) == len(got[0]) for r in got)
        n = len(got) - 1
    else:
        n = len([json.loads(line) for line in text.splitlines()])
    assert 0 < n <= written and n % 2 == 0  # whole frames of two faces each


def test_segment_and_record_paths():
    assert segment_path("out/rec.mp4", 0) == Path("out/rec_000.mp4")
    assert segment_path("out/rec.mkv", 12) == Path("out/rec_012.mkv")
    assert record_path("out/rec") == Path("out/rec.mp4")
    assert record_path("out/rec", "avi") == Path("out/rec.avi")
    assert record_path("out/rec.mkv") == Path("out/rec.mkv")
    with pytest.raises(ValueError):
        segment_path("a.mp4", -1)


def _frames(n: int, size=(96, 64)) -> list[np.ndarray]:
    w, h = size
    return [np.full((h, w, 3), (i * 9) % 256, np.uint8) for i in range(n)]


def _count(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    return n


def test_recorder_rotates_segments_by_media_time(tmp_path: Path):
    rec = VideoRecorder(tmp_path / "rec.mp4", fps=10.0, segment_seconds=1.0)
    for i, img in enumerate(_frames(35)):
        rec.write(img, i / 10.0)
        if i == 12:
            # finished segments are closed and playable while recording goes on
            assert _count(tmp_path / "rec_000.mp4") == 10
    rec.close()
    assert [p.name for p in rec.files] == ["rec_000.mp4", "rec_001.mp4", "rec_002.mp4", "rec_003.mp4"]
    assert [_count(p) for p in rec.files] == [10, 10, 10, 5]
    assert rec.frames_written == 35


def test_recorder_single_file_resizes_other_sizes(tmp_path: Path):
    rec = VideoRecorder(tmp_path / "one", fps=25.0)  # suffix added
    for img in _frames(5, (96, 64)) + _frames(5, (200, 100)):
        rec.write(img, 0.0)
    rec.close()
    assert rec.files == [tmp_path / "one.mp4"]
    cap = cv2.VideoCapture(str(tmp_path / "one.mp4"))
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (96, 64)
    assert _count(tmp_path / "one.mp4") == 10


def test_recorder_errors(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SinkError, match="file"):
        VideoRecorder(blocker / "rec.mp4", fps=10)
    with pytest.raises(ValueError, match="fps"):
        VideoRecorder(tmp_path / "r.mp4", fps=0)
    with pytest.raises(ValueError, match="FourCC"):
        VideoRecorder(tmp_path / "r.mp4", fps=10, codec="h264x")
    rec = VideoRecorder(tmp_path / "r.mp4", fps=10, encoder="opencv", codec="XXXX")  # no such encoder
    with pytest.raises(SinkError, match=r"r\.mp4.*codec XXXX"):
        rec.write(_frames(1)[0], 0.0)
    full = VideoRecorder(tmp_path / "d.mp4", fps=10, min_free_mb=1e12)  # "disk nearly full"
    with pytest.raises(SinkError, match=r"d\.mp4: disk nearly full"):
        full.write(_frames(1)[0], 0.0)
    full.close()
    with pytest.raises(SinkError, match="BGR uint8"):
        VideoRecorder(tmp_path / "g.mp4", fps=10).write(np.zeros((4, 4), np.uint8), 0.0)


def test_gstreamer_writer_pipeline_strings():
    p = gstreamer_writer_pipeline("/data/rec 1.mp4", "nvv4l2h264enc", 8000)
    assert p.startswith("appsrc ! video/x-raw, format=(string)BGR ! videoconvert")
    assert "nvvidconv ! video/x-raw(memory:NVMM), format=(string)NV12" in p
    assert "nvv4l2h264enc bitrate=8000000 insert-sps-pps=true ! h264parse ! qtmux" in p
    assert p.endswith('filesink location="/data/rec 1.mp4"')
    mkv = gstreamer_writer_pipeline("a.mkv", "nvv4l2h265enc", 4000)
    assert "h265parse ! matroskamux" in mkv
    x264 = gstreamer_writer_pipeline("a.mp4", "x264enc", 2000)
    assert "x264enc bitrate=2000" in x264 and "nvvidconv" not in x264
    with pytest.raises(ValueError, match="muxer"):
        gstreamer_writer_pipeline("a.webm")


def test_gstreamer_recorder_without_gstreamer_is_explained(tmp_path: Path):
    if "GStreamer:                   YES" in cv2.getBuildInformation():
        pytest.skip("this OpenCV has GStreamer: the missing-GStreamer message cannot occur")
    rec = VideoRecorder(tmp_path / "g.mp4", fps=10, encoder="gstreamer")
    with pytest.raises(SinkError, match="no GStreamer support"):
        rec.write(_frames(1)[0], 0.0)
