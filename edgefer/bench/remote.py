"""`edgefer bench remote`: what `--serve` costs per frame with 0, 1 and 5 watching clients, and
the latency of `--events` from the sink to an MQTT subscriber.

CPU per frame: `edgefer run` on a video file (every frame processed, none dropped, so each run
does the same work) runs as a child process, once without `--serve`, then with `--serve` and 0, 1,
5 clients; a client is what a browser tab opens
(the MJPEG stream and the server-sent events), read in this process so its own CPU is not counted.
The child's CPU time (all its threads, `resource.getrusage(RUSAGE_CHILDREN)`) divided by its frames
is the figure: it does not depend on how busy the machine is, unlike fps.

Event latency: a publisher (`MqttEvents`, as `--events` builds it) and a subscriber on the same
broker; frames with one face are fed at 25 per second and each message's time from `on_result` to
its arrival at the subscriber is measured (p50, p95). The broker is `--broker mqtt://...`, or a
Mosquitto started on a free loopback port when the `mosquitto` program is installed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", type=Path, required=True, help="video file (looped when shorter than --frames)")
    parser.add_argument("--frames", type=int, default=240, help="frames per run (default 240)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all configurations; medians (default 3)")
    parser.add_argument("--clients", default="0,1,5", help="numbers of watching clients, comma-separated (default 0,1,5)")
    parser.add_argument("--events", type=int, default=250, help="messages for the latency part (default 250; 0: skip)")
    parser.add_argument("--broker", help="mqtt://host[:port]/topic (default: a Mosquitto started here, if installed)")


def _client(port: int, stop: threading.Event, counts: list[int]) -> None:
    """One browser tab: the MJPEG stream and the event stream, both read as they come."""
    def _read(path: str) -> None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", path)
            resp = conn.getresponse()
            while not stop.is_set():
                chunk = resp.fp.read1(65536) if hasattr(resp.fp, "read1") else resp.fp.read(4096)
                if not chunk:
                    return
                counts[0] += len(chunk)
        except OSError:
            return
    for path in ("/stream.mjpg", "/events"):
        threading.Thread(target=_read, args=(path,), daemon=True).start()


def _run(source: Path, frames: int, clients: int | None) -> tuple[float, int, int, float, str]:
    """One child run: (CPU seconds, frames processed, bytes the clients read, mean fps, JPEG figures)."""
    cmd = [sys.executable, "-m", "edgefer.cli", "run", "--source", str(source), "--headless", "--loop",
           "--max-frames", str(frames), "--no-progress"]
    if clients is not None:
        cmd += ["--serve", "0"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stop, counts = threading.Event(), [0]
    if clients is not None:
        assert proc.stderr is not None
        port = None
        for line in proc.stderr:
            m = re.search(r"serving on http://127\.0\.0\.1:(\d+)/", line)
            if m:
                port = int(m.group(1))
                break
        if port is None:
            raise SystemExit("edgefer run did not start its server")
        for _ in range(clients):
            _client(port, stop, counts)
    out, _ = proc.communicate()
    stop.set()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"edgefer run failed (exit {proc.returncode}):\n{out[-2000:]}")
    m = re.search(r"frames\s+(\d+) processed", out)
    processed = int(m.group(1)) if m else 0
    f = re.search(r"speed\s+([0-9.]+) fps mean", out)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    j = re.search(r"serve\s+(\d+) frame\(s\) streamed as JPEG(?: \(([0-9.]+) ms each)?", out)
    jpeg = f"{j.group(1)} x {j.group(2) or '-'} ms" if j else ""
    return cpu, processed, counts[0], float(f.group(1)) if f else 0.0, jpeg


def _local_broker(folder: Path) -> tuple[subprocess.Popen, str] | None:
    exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if exe is None:
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = folder / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n" + ("user root\n" if os.geteuid() == 0 else ""))
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, f"mqtt://127.0.0.1:{port}/edgefer/bench"


def _latency(url: str, n: int) -> list[float]:
    import numpy as np
    import paho.mqtt.client as paho

    from edgefer.remote.address import parse_mqtt_url
    from edgefer.remote.mqtt import MqttEvents
    from edgefer.types import Box, Face, FacePrediction, Frame, FrameResult

    target = parse_mqtt_url(url)
    sent: dict[int, float] = {}
    got: dict[int, float] = {}
    ready = threading.Event()
    sub = paho.Client(paho.CallbackAPIVersion.VERSION2)
    def _on_connect(c: paho.Client, u: object, f: object, r: object, p: object) -> None:
        c.subscribe(target.topic, qos=1)
        ready.set()

    def _on_message(c: paho.Client, u: object, m: paho.MQTTMessage) -> None:
        got.setdefault(json.loads(m.payload)["frame"], time.perf_counter())

    sub.on_connect = _on_connect
    sub.on_message = _on_message
    if target.username:
        sub.username_pw_set(target.username, target.password)
    sub.connect(target.host, target.port)
    sub.loop_start()
    ready.wait(10)
    time.sleep(0.3)  # the subscription is in place
    pub = MqttEvents(target, "rows", queue_size=10000, qos=1)
    pub.start()
    image = np.zeros((8, 8, 3), np.uint8)
    probs = np.full(7, 1 / 7, np.float32)
    for i in range(n):
        face = Face(1, Box(10, 10, 50, 50), np.zeros((478, 3), np.float32))
        pred = FacePrediction(face, probs, probs, None, None, np.eye(2, 3, dtype=np.float32))
        sent[i] = time.perf_counter()
        pub.on_result(FrameResult(Frame(i, i / 25, image), [pred]))
        time.sleep(1 / 25)
    deadline = time.monotonic() + 10
    while len(got) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    pub.close(drain_s=2)
    sub.disconnect()
    sub.loop_stop()
    return [1000 * (got[i] - sent[i]) for i in sorted(got)]


def run(args: argparse.Namespace) -> int:
    counts = [int(c) for c in str(args.clients).split(",") if c.strip()]
    configs: list[int | None] = [None, *counts]
    results: dict[int | None, list[tuple[float, int, int, float, str]]] = {c: [] for c in configs}
    for r in range(args.rounds):  # rounds alternate the configurations, so a load spike hits all alike
        for c in configs if r % 2 == 0 else list(reversed(configs)):
            results[c].append(_run(args.source, args.frames, c))

    def per_frame(c: int | None) -> float:
        return statistics.median(1000 * cpu / max(1, n) for cpu, n, _, _, _ in results[c])

    base = per_frame(None)
    print(f"median of {args.rounds} round(s), {args.frames} frames each")
    print(f"{'run':<22}{'fps':>7}{'CPU ms/frame':>14}{'extra':>9}{'client MB':>11}  JPEG encodes (last round)")
    for c in configs:
        fps = statistics.median(x[3] for x in results[c])
        mb = statistics.median(x[2] for x in results[c]) / 1e6
        name = "no --serve" if c is None else f"--serve, {c} client(s)"
        extra = "" if c is None else f"{per_frame(c) - base:+.2f}"
        print(f"{name:<22}{fps:>7.1f}{per_frame(c):>14.2f}{extra:>9}{mb:>11.1f}  {results[c][-1][4]}", flush=True)
    if args.events > 0:
        with tempfile.TemporaryDirectory() as tmp:
            local = None if args.broker else _local_broker(Path(tmp))
            url = args.broker or (local[1] if local else None)
            if url is None:
                print("event latency: skipped (no --broker and no mosquitto installed)")
                return 0
            try:
                lat = _latency(url, args.events)
            finally:
                if local is not None:
                    local[0].terminate()
                    local[0].wait()
        if not lat:
            print("event latency: no message arrived")
            return 1
        q = statistics.quantiles(lat, n=20)
        print(f"event latency (on_result -> subscriber, QoS 1, {len(lat)}/{args.events} messages): "
              f"p50 {statistics.median(lat):.2f} ms, p95 {q[18]:.2f} ms")
    return 0
