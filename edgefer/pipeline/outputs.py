"""What the sink stage writes for every frame: the recording, the per-face rows, the callback.

The sink is the last thread of the pipeline. For each rendered frame it writes the annotated
picture to the recording (see `Recording` for its states), the per-face rows to the CSV or JSONL
file, and hands the result to whoever drives the pipeline (`on_result`). Each output fails alone:
a full disk stops the recording or the rows with an "error" event and the others go on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from edgefer.pipeline.eventlog import EventLog
from edgefer.pipeline.recording import Recording
from edgefer.pipeline.rows import RowWriter, face_rows, row_columns
from edgefer.pipeline.settings import PipelineSettings
from edgefer.pipeline.sinkbase import SinkError, first_free_run, is_special, run_path
from edgefer.pipeline.video import segment_path
from edgefer.types import FrameResult

log = logging.getLogger(__name__)


class Outputs:
    """The recording, the rows and the result callback, written from the sink thread."""

    def __init__(
        self,
        settings: PipelineSettings,
        events: EventLog,
        source_fps: Callable[[], float | None],
        on_result: Callable[[FrameResult], None] | None = None,
    ) -> None:
        self.settings = settings
        self.recording = Recording(settings.record, events, source_fps)
        self._events = events
        self._on_result = on_result
        self._rows: RowWriter | None = None
        self._rows_path: Path | None = None
        self._rows_base = Path()
        self._rows_fmt = "csv"
        self._rows_files: list[str] = []
        self._rows_started = 0.0
        self._blendshape_names: tuple[str, ...] | None = None

    def claim_run(self) -> int:
        """Before anything is opened: when a previous run wrote any of this run's outputs (the same
        --record/--csv after a restart), every output of this run moves to the first free run
        number (`rows-2.csv`, `rec-2_000.mp4`, ...), so nothing is overwritten or truncated and a
        run's files share one number. Returns the run number (1: the names as given)."""
        s = self.settings
        rec = self.recording.path
        outputs: list[tuple[Path, bool]] = []
        if rec is not None:
            outputs.append((rec, s.record.segment_seconds is not None))
        rows = s.csv or s.jsonl
        if rows is not None:
            outputs.append((Path(rows), s.rows_segment_seconds is not None))
        if s.overwrite or not outputs:
            return 1
        run = first_free_run(outputs)
        if run == 1:
            return 1
        moved = []
        if rec is not None and not is_special(rec):
            self.recording.rename(run_path(rec, run))
            moved.append(str(self.recording.path))
        if s.csv is not None and not is_special(Path(s.csv)):
            s.csv = run_path(s.csv, run)
            moved.append(str(s.csv))
        if s.jsonl is not None and not is_special(Path(s.jsonl)):
            s.jsonl = run_path(s.jsonl, run)
            moved.append(str(s.jsonl))
        self._events.emit("status", "pipeline", f"a previous run's outputs are kept; this run (run {run}) writes "
                          f"{', '.join(moved)} (set overwrite: true to replace them)")
        return run

    def open_rows(self, blendshape_names: tuple[str, ...] | None) -> None:
        """Open the CSV or JSONL file (before the threads start); a failure is an error event and
        the run goes on without rows. Asking for both is a settings error (ValueError)."""
        s = self.settings
        if s.csv and s.jsonl:
            raise ValueError("give either a CSV or a JSONL output, not both")
        path, fmt = (s.csv, "csv") if s.csv else (s.jsonl, "jsonl") if s.jsonl else (None, None)
        self._blendshape_names = blendshape_names
        if path is None or fmt is None:
            return
        self._rows_base, self._rows_fmt = Path(path), fmt
        try:
            self._open_rows_file()
        except SinkError as exc:
            self._events.emit("error", "rows", f"{exc}; rows will not be written, the rest goes on")

    def _open_rows_file(self) -> None:
        """The rows file, or with `rows_segment_seconds` the next `NAME_NNN` one (own header)."""
        s, base = self.settings, self._rows_base
        rotating = s.rows_segment_seconds is not None and not is_special(base)
        path = segment_path(base, len(self._rows_files)) if rotating else base
        self._rows = RowWriter(path, row_columns(self._blendshape_names), self._rows_fmt, s.flush_seconds)
        self._rows_path = self._rows.path
        self._rows_files.append(str(self._rows.path))
        self._rows_started = time.monotonic()

    def files(self) -> tuple[str, ...]:
        """Every file written so far: recording files (segments included), then the rows files."""
        out = self.recording.files()
        out.extend(self._rows_files)
        return tuple(out)

    def write(self, result: FrameResult) -> None:
        """One frame to every output, then to the callback (whose failure is only logged)."""
        self.recording.write(result)
        self._write_rows(result)
        if self._on_result is not None:
            try:
                self._on_result(result)
            except Exception:  # noqa: BLE001 - a callback must never kill the sink
                log.exception("on_result callback failed")

    def _write_rows(self, result: FrameResult) -> None:
        current = self._rows
        if current is None or not result.predictions:
            return
        try:
            every = self.settings.rows_segment_seconds
            if every is not None and time.monotonic() - self._rows_started >= every and not is_special(current.path):
                self._rows = None
                current.close()  # whole rows, flushed: a finished file can be moved away at once
                self._open_rows_file()
                current = self._rows
            if current is not None:
                current.write(face_rows(result, self._blendshape_names))
        except (SinkError, OSError) as exc:
            self._events.emit("error", "rows", f"{exc}; rows stopped, the rest goes on")
            rows, self._rows = self._rows, None
            try:
                if rows is not None:
                    rows.close()
            except (SinkError, OSError):
                log.debug("closing the failed row writer failed too", exc_info=True)

    def close(self) -> None:
        """Close the recording and the rows: every file complete and playable."""
        self.recording.close()
        if self._rows is not None:
            rows, self._rows = self._rows, None
            try:
                rows.close()
            except SinkError as exc:
                self._events.emit("error", "rows", str(exc))
