"""Per-face rows (CSV or JSONL): their columns, one row per face per frame, and the writer.

The schema is described in `edgefer.pipeline.sinks` (and mapped to OpenFace and py-feat in
docs/pipeline.md). The writer ends its file on a whole row even when the disk fills up.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from edgefer.classes import EXPRESSIONS
from edgefer.pipeline.sinkbase import SinkError, prepare_path
from edgefer.types import FrameResult

BASE_COLUMNS: tuple[str, ...] = (
    "frame", "timestamp_s", "time_utc", "face_id", "x", "y", "w", "h", "expression", "confidence",
)
PROB_COLUMNS: tuple[str, ...] = tuple(f"p_{name}" for name in EXPRESSIONS)


def row_columns(blendshape_names: Sequence[str] | None = None) -> list[str]:
    """The ordered column names of the per-face rows."""
    cols = list(BASE_COLUMNS) + list(PROB_COLUMNS)
    if blendshape_names:
        clash = set(blendshape_names) & set(cols)
        if clash:
            raise ValueError(f"blendshape names clash with row columns: {sorted(clash)}")
        cols += list(blendshape_names)
    return cols


def utc_text(wall_time_s: float | None) -> str | None:
    """`2026-11-30T12:50:01.123Z`: when the frame was read, wall clock, UTC, milliseconds."""
    if wall_time_s is None or not math.isfinite(wall_time_s):
        return None
    moment = datetime.fromtimestamp(wall_time_s, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _number(value: Any, digits: int) -> float | None:
    """`value` rounded for text, or None (empty in CSV, null in JSON) when it is NaN or infinite."""
    v = float(value)
    return round(v, digits) if math.isfinite(v) else None


def face_rows(result: FrameResult, blendshape_names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One dict per face of `result`, keys in `row_columns` order, values rounded for text.

    With `blendshape_names`, a face without blendshapes gets empty values (None) for them,
    so every row has the same columns.
    A face the model gave no estimate for in this frame (NaN/inf: `FacePrediction.has_estimate`)
    keeps its row, with `expression`, `confidence` and the probabilities empty (CSV) or null (JSONL):
    never NaN labelled as the first class. Any other non-finite number is empty/null as well.
    """
    rows: list[dict[str, Any]] = []
    for pred in result.predictions:
        face = pred.face
        probs = np.asarray(pred.probs, dtype=np.float64)
        known = bool(np.isfinite(probs).all())
        top = int(np.argmax(probs)) if known else -1
        row: dict[str, Any] = {
            "frame": int(result.frame.index),
            "timestamp_s": _number(result.frame.timestamp_s, 4),
            "time_utc": utc_text(result.frame.wall_time_s),
            "face_id": int(face.track_id),
            "x": _number(face.box.x, 2),
            "y": _number(face.box.y, 2),
            "w": _number(face.box.w, 2),
            "h": _number(face.box.h, 2),
            "expression": EXPRESSIONS[top] if known else None,
            "confidence": _number(probs[top], 6) if known else None,
        }
        for col, p in zip(PROB_COLUMNS, probs, strict=True):
            row[col] = _number(p, 6)
        if blendshape_names:
            bs = face.blendshapes
            if bs is not None and len(bs) == len(blendshape_names):
                for name, v in zip(blendshape_names, bs, strict=True):
                    row[name] = _number(v, 6)
            else:
                for name in blendshape_names:
                    row[name] = None
        rows.append(row)
    return rows



class RowWriter:
    """Writes face rows as CSV (header + rows) or JSONL (one JSON object per line).

    The format follows `fmt` ("csv" or "jsonl"). Rows are formatted into an in-memory buffer
    and written to the file at least every `flush_seconds` (and whenever the buffer passes
    `FLUSH_BYTES`); `close()` flushes and closes. Any OSError becomes SinkError naming the path.

    The file only ever ends on a whole row: this class does its own buffering on a raw file
    descriptor and knows how many bytes are good, so when a write fails half way (a disk that
    fills up), the file is truncated back to the last complete flush. With Python's buffered
    text file a full disk left a half row at the end, which breaks `pandas.read_csv`.
    """

    #: Write the buffer out when it holds this much, even before `flush_seconds`.
    FLUSH_BYTES = 1 << 16

    def __init__(self, path: str | Path, columns: Sequence[str], fmt: str = "csv", flush_seconds: float = 1.0) -> None:
        if fmt not in ("csv", "jsonl"):
            raise ValueError(f"row format must be csv or jsonl, not {fmt!r}")
        self.path = prepare_path(Path(path), f"{fmt.upper()} output")
        self.fmt = fmt
        self.columns = list(columns)
        self.flush_seconds = flush_seconds
        self.rows_written = 0
        self._last_flush = time.monotonic()
        self._buf = io.StringIO()
        self._good = 0  # bytes of the file known to end on a whole row
        try:
            self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        except OSError as exc:
            raise SinkError(f"{fmt.upper()} output {self.path}: cannot open for writing ({exc.strerror or exc})") from exc
        self._csv = None
        if fmt == "csv":
            self._csv = csv.DictWriter(self._buf, fieldnames=self.columns, extrasaction="raise")
            self._csv.writeheader()
            try:
                self.flush()
            except SinkError:
                os.close(self._fd)
                self._fd = None
                raise

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        if self._fd is None:
            raise SinkError(f"{self.fmt.upper()} output {self.path} is closed")
        for row in rows:
            if self._csv is not None:
                self._csv.writerow({k: ("" if v is None else v) for k, v in row.items()})
            else:
                self._buf.write(json.dumps(row, allow_nan=False) + "\n")
            self.rows_written += 1
        now = time.monotonic()
        if now - self._last_flush >= self.flush_seconds or self._buf.tell() >= self.FLUSH_BYTES:
            self.flush()
            self._last_flush = now

    def flush(self, what: str = "write failed") -> None:
        """Write the buffered rows; on failure cut the file back to its last whole row."""
        if self._fd is None:
            return
        data = self._buf.getvalue().encode("utf-8")
        self._buf.seek(0)
        self._buf.truncate()
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError as exc:
            try:
                os.ftruncate(self._fd, self._good)  # drop the half row (a device cannot be cut: fine)
                os.lseek(self._fd, self._good, os.SEEK_SET)
            except OSError:
                pass
            raise SinkError(f"{self.fmt.upper()} output {self.path}: {what} ({exc.strerror or exc})") from exc
        self._good += len(data)

    def close(self) -> None:
        if self._fd is None:
            return
        try:
            self.flush("final flush failed")
        finally:
            fd, self._fd = self._fd, None
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
