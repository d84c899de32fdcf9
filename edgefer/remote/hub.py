"""Between the pipeline's sink thread and the HTTP clients: the newest frame, its JPEG, its rows.

The sink thread must never wait for a browser. So `on_result` (called on the sink thread) only
drops the result into a one-slot `Mailbox` (the newest frame wins, as in the windows) and sets an
event: O(1), no copy (the annotated picture is a fresh array per frame that nobody modifies after
the sink). The hub's own thread takes the newest result, turns its faces into rows (the CSV/JSONL
rows, same field names, `face_rows`) and, while at least one client watches the video and at most
`stream_fps` times a second, encodes it to JPEG once for every client.

Clients wait on a condition for a newer sequence number and then take whatever is newest: that is
each client's newest-frame slot. A slow client skips frames; a stalled one blocks only its own
handler thread (until the server's socket timeout drops it), never the hub and never a stage.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2

from edgefer.pipeline.mailbox import Mailbox
from edgefer.pipeline.rows import face_rows
from edgefer.types import FrameResult

log = logging.getLogger(__name__)

#: Updates of a face's confidence kept for the page's trend (about 9 s at 10 updates a second).
TREND_LENGTH = 90


@dataclass(frozen=True)
class Jpeg:
    """One encoded frame: its sequence number (increasing), the pipeline's frame index, the bytes."""

    seq: int
    frame: int
    data: bytes


@dataclass(frozen=True)
class RowsUpdate:
    """The rows of the newest frame the hub saw (an empty list: no face in it)."""

    seq: int
    frame: int
    timestamp_s: float
    rows: list[dict[str, Any]]
    #: `{"frame", "timestamp_s", "rows"}` as JSON, serialised once for every client
    payload: str = "{}"


class LiveHub:
    """Newest result in, JPEG and rows out; thread-safe. Start with `start()`, end with `close()`."""

    def __init__(self, stream_fps: float = 10.0, jpeg_quality: int = 75, max_width: int | None = 960,
                 blendshape_names: Sequence[str] | None = None) -> None:
        self.stream_fps = stream_fps
        self.jpeg_quality = jpeg_quality
        self.max_width = max_width
        self._blendshapes = tuple(blendshape_names) if blendshape_names else None
        self._newest: Mailbox[FrameResult] = Mailbox()
        self._wake = threading.Event()
        self._cond = threading.Condition()
        self._closed = False
        self._jpeg: Jpeg | None = None
        self._rows = RowsUpdate(0, -1, 0.0, [])
        self._watchers = 0
        #: face_id -> its recent confidences (the page's trend), and the update it was last seen in
        self._trend: dict[int, deque[float]] = {}
        self._trend_seen: dict[int, int] = {}
        self.frames_seen = 0
        self.frames_encoded = 0
        self.encode_seconds = 0.0
        self._thread = threading.Thread(target=self._loop, name="edgefer-remote-hub", daemon=True)

    # -- the pipeline's side ---------------------------------------------------------------------
    def on_result(self, result: FrameResult) -> None:
        """Called on the sink thread for every frame: leave it in the slot and return."""
        self._newest.put(result)
        self._wake.set()

    # -- the clients' side -------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def watchers(self) -> int:
        """Clients watching the video now (the JPEG is encoded only while this is above zero)."""
        return self._watchers

    def watch(self) -> None:
        with self._cond:
            self._watchers += 1
        self._wake.set()  # encode the frame waiting in the slot now, not at the next one

    def unwatch(self) -> None:
        with self._cond:
            self._watchers -= 1

    def next_jpeg(self, after: int, timeout: float) -> Jpeg | None:
        """The newest JPEG with a sequence number above `after`; None after `timeout` or on close."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or (self._jpeg is not None and self._jpeg.seq > after), timeout)
            jpeg = self._jpeg
            return jpeg if jpeg is not None and jpeg.seq > after and not self._closed else None

    def latest_jpeg(self) -> Jpeg | None:
        return self._jpeg

    def next_rows(self, after: int, timeout: float) -> RowsUpdate | None:
        """The newest rows with a sequence number above `after`; None after `timeout` or on close."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or self._rows.seq > after, timeout)
            rows = self._rows
            return rows if rows.seq > after and not self._closed else None

    def latest_rows(self) -> RowsUpdate:
        return self._rows

    def trends(self) -> dict[int, list[float]]:
        """Each face's recent confidences, oldest first: a page opened mid-run starts with them."""
        with self._cond:
            return {face_id: list(t) for face_id, t in self._trend.items()}

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Wake every waiting client (they end their responses) and stop the hub's thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)

    def _loop(self) -> None:
        pending: FrameResult | None = None  # the newest frame not yet encoded (the rate cap held it)
        last_encode = 0.0
        period = 1.0 / self.stream_fps
        while not self._closed:
            wait = None if pending is None or not self._watchers else max(0.0, last_encode + period - time.monotonic())
            self._wake.wait(0.5 if wait is None else min(wait, 0.5))
            self._wake.clear()
            result = self._newest.take()
            if result is not None:
                self.frames_seen += 1
                self._publish_rows(result)
                pending = result
            if pending is None or not self._watchers or pending.annotated is None:
                continue
            now = time.monotonic()
            if now - last_encode < period:
                continue
            last_encode = now
            try:
                self._encode(pending)
            except Exception:  # noqa: BLE001 - one bad frame must not end the stream; logged
                log.exception("encoding frame %d for the stream failed", pending.frame.index)
            pending = None

    def _publish_rows(self, result: FrameResult) -> None:
        rows = face_rows(result, self._blendshapes)
        with self._cond:
            seq = self._rows.seq + 1
            frame, t = int(result.frame.index), round(float(result.frame.timestamp_s), 4)
            payload = json.dumps({"frame": frame, "timestamp_s": t, "rows": rows}, allow_nan=False)
            self._rows = RowsUpdate(seq, frame, t, rows, payload)
            for row in rows:
                self._trend.setdefault(row["face_id"], deque(maxlen=TREND_LENGTH)).append(row["confidence"])
                self._trend_seen[row["face_id"]] = seq
            for face_id in [f for f, last in self._trend_seen.items() if seq - last > TREND_LENGTH]:
                del self._trend[face_id], self._trend_seen[face_id]  # gone for a while: forgotten
            self._cond.notify_all()

    def _encode(self, result: FrameResult) -> None:
        image = result.annotated
        assert image is not None
        t0 = time.perf_counter()
        h, w = image.shape[:2]
        if self.max_width is not None and w > self.max_width:
            image = cv2.resize(image, (self.max_width, max(1, round(h * self.max_width / w))),
                               interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            raise RuntimeError("cv2.imencode returned no JPEG")
        self.encode_seconds += time.perf_counter() - t0
        self.frames_encoded += 1
        with self._cond:
            seq = self._jpeg.seq + 1 if self._jpeg is not None else 1
            self._jpeg = Jpeg(seq, int(result.frame.index), buf.tobytes())
            self._cond.notify_all()
