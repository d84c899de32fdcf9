"""`edgefer run --events mqtt://...` against a real Mosquitto broker (Debian's package).

The broker runs on a free loopback port inside the test (not as a system service), with
persistence so that a subscriber's session survives a restart, like a fleet's broker. The test
stops it in the middle of a run, starts it again, and checks the messages that arrive against the
run's own CSV: every message is one of its rows (same field names, same values), the rows that
waited in the publisher's queue arrive after the restart, and the queue's overflow is counted so
that received + dropped = the CSV's rows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from edgefer.pipeline.rows import row_columns

TOPIC = "edgefer/test/faces"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """A Mosquitto process on 127.0.0.1:`port`, stoppable and restartable with its state kept."""

    def __init__(self, folder: Path) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).is_file():
            pytest.fail("Debian's mosquitto is missing: .ci/run installs it (apt-get install mosquitto)", pytrace=False)
        self.exe = exe
        self.port = _free_port()
        self.folder = folder
        self.conf = folder / "mosquitto.conf"
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true", "persistence true",
                 f"persistence_location {folder}/", "max_queued_messages 0", "log_dest stderr"]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to the user 'mosquitto', who cannot write here
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=open(self.folder / "broker.log", "a"))  # noqa: SIM115
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        pytest.fail("mosquitto did not start:\n" + (self.folder / "broker.log").read_text())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # saves the persistent sessions on the way out
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path)
    b.start()
    try:
        yield b
    finally:
        if b.proc is not None and b.proc.poll() is None:
            b.proc.kill()
            b.proc.wait()


class Subscriber:
    """A persistent-session subscriber (QoS 1): what the broker queued for it while it was away
    is delivered when it reconnects, so a restart loses nothing on this side."""

    def __init__(self, port: int) -> None:
        self.messages: list[dict] = []
        self.lock = threading.Lock()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="edgefer-test-subscriber",
                                  clean_session=False)
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe(TOPIC, qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        with self.lock:
            self.messages.append(json.loads(msg.payload))

    def count(self) -> int:
        with self.lock:
            return len(self.messages)

    def wait_quiet(self, quiet_s: float = 2.0, timeout: float = 30.0) -> None:
        """Until no message has arrived for `quiet_s`."""
        deadline = time.monotonic() + timeout
        last, since = self.count(), time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - since < quiet_s:
            time.sleep(0.1)
            if self.count() != last:
                last, since = self.count(), time.monotonic()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _csv_rows(path: Path) -> dict[tuple[int, int], dict[str, str]]:
    import csv

    with path.open() as f:
        return {(int(r["frame"]), int(r["face_id"])): r for r in csv.DictReader(f)}


def test_events_survive_a_broker_restart_and_overflow_is_counted(broker: Broker, one_face_video: Path,
                                                                 tmp_path: Path) -> None:
    sub = Subscriber(broker.port)
    csv_path = tmp_path / "rows.csv"
    url = f"mqtt://edgefer:pw-not-shown@127.0.0.1:{broker.port}/{TOPIC}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgefer.cli", "run", "--source", str(one_face_video), "--headless", "--realtime",
         "--max-frames", "200", "--csv", str(csv_path), "--events", url, "--no-progress",
         "--set", "events.queue_size=15", "--set", "events.drain_s=20"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while sub.count() < 5 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert sub.count() >= 5, "no events arrived before the restart"
        broker.stop()  # mid-run: the publisher's queue fills and overflows
        before_restart = sub.count()
        time.sleep(4.0)
        assert proc.poll() is None, "the run ended while the broker was down: too short to test the queue"
        broker.start()
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    sub.wait_quiet()
    sub.close()
    assert proc.returncode == 0, err[-3000:]
    assert "pw-not-shown" not in out + err, "the broker password was printed or logged"
    m = re.search(r"events\s+(\d+) sent to .*?, (\d+) unsent, (\d+) dropped", out)
    assert m, out
    sent, unsent, dropped = map(int, m.groups())
    rows = _csv_rows(csv_path)
    got = {(msg["frame"], msg["face_id"]): msg for msg in sub.messages}
    assert unsent == 0 and dropped > 0, out
    assert sub.count() > before_restart, "nothing arrived after the broker came back"
    assert all(list(msg) == row_columns() for msg in sub.messages)  # the JSONL/CSV field names, in order
    for key, msg in got.items():
        row = rows[key]  # every message is a row of the CSV ...
        assert msg["expression"] == row["expression"] and abs(msg["confidence"] - float(row["confidence"])) < 1e-6
    assert len(got) + dropped == len(rows), (len(got), dropped, len(rows))  # ... and every row arrived or was counted
    assert sent == len(got), (sent, len(got))
    # the rows that waited in the queue are the newest before the restart: they arrived after it
    frames = sorted(f for f, _ in got)
    assert max(frames) == max(f for f, _ in rows)


def test_changes_mode_publishes_a_track_start_changes_and_its_end(broker: Broker, one_face_video: Path,
                                                                  tmp_path: Path) -> None:
    sub = Subscriber(broker.port)
    csv_path = tmp_path / "rows.csv"
    run = subprocess.run(
        [sys.executable, "-m", "edgefer.cli", "run", "--source", str(one_face_video), "--headless", "--max-frames", "48",
         "--csv", str(csv_path), "--events", f"mqtt://127.0.0.1:{broker.port}/{TOPIC}", "--events-changes",
         "--no-progress"], capture_output=True, text=True, timeout=180)
    sub.wait_quiet(quiet_s=1.0)
    sub.close()
    assert run.returncode == 0, run.stderr[-3000:]
    rows = _csv_rows(csv_path)
    events = [m["event"] for m in sub.messages]
    assert events[0] == "start" and events[-1] == "end" and set(events) <= {"start", "change", "end"}
    by_track: dict[int, list[str]] = {}
    for (_frame, face), row in sorted(rows.items()):  # the changes the CSV itself shows, per track
        seq = by_track.setdefault(face, [])
        if not seq or seq[-1] != row["expression"]:
            seq.append(row["expression"])
    starts_and_changes = [m["expression"] for m in sub.messages if m["event"] != "end"]
    assert starts_and_changes == [e for face in sorted(by_track) for e in by_track[face]] or len(by_track) > 1
    assert all(list(m)[1:] == row_columns() for m in sub.messages)
