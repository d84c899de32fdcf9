"""Per-face rows (or only each track's changes) to an MQTT broker, with Eclipse Paho.

Edge fleets collect events over MQTT. Each message is one JSON object with the JSONL sink's field
names (`frame`, `timestamp_s`, `face_id`, `x` ... `p_sadness`); in `changes` mode it carries an
`event` field too: `start` (a track's first row), `change` (its expression changed) and `end` (its
face has been gone for `end_after_s`; the row is its last one).

The pipeline never waits for the network. `on_result` (sink thread) turns the frame's faces into
rows and appends them to a bounded queue; when the queue is full the oldest message is dropped and
counted (a monitor wants the newest state), with one warning. A sender thread moves messages to
Paho only while the broker is connected, so while it is away they wait here; Paho's own queue of
sent-but-unacknowledged messages (QoS 1) is bounded too and is resent by Paho after a reconnect.
Paho's network thread (`loop_start`) reconnects with backoff, the first connection included.

The password of the URL goes to Paho and nowhere else: every message names the broker as
`MqttTarget.shown` (`mqtt://user:***@host:port/topic`).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, Literal

import paho.mqtt.client as paho

from edgefer.pipeline.rows import face_rows
from edgefer.remote.address import MqttTarget
from edgefer.types import FrameResult

log = logging.getLogger(__name__)

EventMode = Literal["rows", "changes"]
#: Messages handed to Paho but not yet acknowledged, at most (Paho refuses more; they wait here).
PAHO_QUEUE = 1000


class ChangeTracker:
    """`changes` mode: which rows are a track's start, a change of its expression, or its end."""

    def __init__(self, end_after_s: float) -> None:
        self.end_after_s = end_after_s
        self._last: dict[int, dict[str, Any]] = {}  # face_id -> its last row

    def feed(self, rows: Sequence[dict[str, Any]], timestamp_s: float) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for row in rows:
            prev = self._last.get(row["face_id"])
            if prev is None:
                out.append({"event": "start", **row})
            elif prev["expression"] != row["expression"]:
                out.append({"event": "change", **row})
            self._last[row["face_id"]] = row
        for face_id, last in list(self._last.items()):
            if timestamp_s - last["timestamp_s"] >= self.end_after_s:
                out.append({"event": "end", **last})
                del self._last[face_id]
        return out

    def finish(self) -> list[dict[str, Any]]:
        """The end of every open track (the run is over)."""
        out = [{"event": "end", **last} for last in self._last.values()]
        self._last.clear()
        return out


class MqttEvents:
    """The publisher: `start()`, `on_result()` per frame (sink thread), `close()` at the end."""

    def __init__(self, target: MqttTarget, mode: EventMode = "rows", queue_size: int = 10000, qos: int = 1,
                 end_after_s: float = 1.0, blendshape_names: Sequence[str] | None = None) -> None:
        self.target = target
        self.mode = mode
        self.qos = qos
        self.queue_size = queue_size
        self._blendshapes = tuple(blendshape_names) if blendshape_names else None
        self._changes = ChangeTracker(end_after_s) if mode == "changes" else None
        self._queue: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._connected = threading.Event()
        self.published = 0  # handed to Paho while connected
        self.acknowledged = 0  # confirmed by the broker (QoS 1) or written to the socket (QoS 0)
        self.dropped = 0
        self._warned_full = False
        client_id = f"edgefer-{socket.gethostname()}-{os.getpid()}"
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id)
        if target.username is not None:
            self._client.username_pw_set(target.username, target.password)
        if target.tls:
            self._client.tls_set()
        self._client.max_queued_messages_set(PAHO_QUEUE)
        self._client.reconnect_delay_set(min_delay=1, max_delay=8)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._sender = threading.Thread(target=self._send_loop, name="edgefer-mqtt-sender", daemon=True)

    # -- the pipeline's side ---------------------------------------------------------------------
    def on_result(self, result: FrameResult) -> None:
        """Called on the sink thread for every frame: rows (or changes) into the bounded queue."""
        rows = face_rows(result, self._blendshapes)
        if self._changes is not None:
            rows = self._changes.feed(rows, float(result.frame.timestamp_s))
        if rows:
            self._enqueue(rows)

    def _enqueue(self, messages: Sequence[dict[str, Any]]) -> None:
        with self._lock:
            for m in messages:
                if len(self._queue) >= self.queue_size:
                    self._queue.popleft()
                    self.dropped += 1
                self._queue.append(m)
            first_overflow = self.dropped and not self._warned_full
            self._warned_full = self._warned_full or bool(self.dropped)
        if first_overflow:
            log.warning("MQTT events to %s: queue full (%d messages); the oldest are dropped and counted",
                        self.target.shown, self.queue_size)
        self._wake.set()

    # -- figures -------------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def queued(self) -> int:
        """Messages not yet confirmed: waiting here, or handed to Paho and not acknowledged."""
        with self._lock:
            return len(self._queue) + self.published - self.acknowledged

    def figures(self) -> dict[str, float]:
        return {"published": self.published, "queued": self.queued, "dropped": self.dropped,
                "connected": int(self.connected), "acknowledged": self.acknowledged}

    def summary(self) -> str:
        f = self.figures()
        return (f"events    {int(f['acknowledged'])} sent to {self.target.shown} ({self.mode}), "
                f"{int(f['queued'])} unsent, {int(f['dropped'])} dropped (queue full)")

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background (retried until it works) and start the sender."""
        self._client.connect_async(self.target.host, self.target.port, keepalive=15)
        self._client.loop_start()
        self._sender.start()
        log.info("MQTT events to %s (%s, QoS %d, queue %d)", self.target.shown, self.mode, self.qos, self.queue_size)

    def close(self, drain_s: float = 5.0) -> None:
        """Publish the open tracks' ends, wait up to `drain_s` for the queue to empty, disconnect."""
        if self._changes is not None:
            ends = self._changes.finish()
            if ends:
                self._enqueue(ends)
        deadline = time.monotonic() + drain_s
        while self.queued and time.monotonic() < deadline:
            time.sleep(0.05)
        self._closing.set()
        self._wake.set()
        self._sender.join(timeout=2.0)
        self._client.disconnect()
        self._client.loop_stop()
        left = self.queued
        if left:
            log.warning("MQTT events to %s: %d message(s) not delivered at the end of the run", self.target.shown, left)

    # -- threads: Paho's network thread calls the callbacks; the sender moves messages to Paho -------
    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("MQTT broker %s refused the connection: %s", self.target.shown, reason)
            return
        self._connected.set()
        self._wake.set()
        log.info("MQTT connected to %s", self.target.shown)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if was and not self._closing.is_set():
            log.warning("MQTT broker %s went away (%s); events wait in the queue (%d max) and are sent when it "
                        "returns", self.target.shown, reason, self.queue_size)

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self._lock:
            self.acknowledged += 1

    def _send_loop(self) -> None:
        while not self._closing.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            while self._connected.is_set() and not self._closing.is_set():
                with self._lock:
                    if not self._queue:
                        break
                    message = self._queue.popleft()
                payload = json.dumps(message, allow_nan=False)
                info = self._client.publish(self.target.topic, payload, qos=self.qos)
                if info.rc == paho.MQTT_ERR_QUEUE_SIZE or (self.qos == 0 and info.rc == paho.MQTT_ERR_NO_CONN):
                    with self._lock:  # Paho's queue is full (or QoS 0 and not connected): wait here
                        self._queue.appendleft(message)
                    time.sleep(0.05)
                    continue
                with self._lock:
                    self.published += 1
