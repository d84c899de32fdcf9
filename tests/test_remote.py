"""edgefer.remote without a pipeline: addresses, MQTT URLs, the metrics text, `changes` mode, tokens.

The servers and the broker are tested for real, during real runs, in test_remote_serve.py and
test_remote_mqtt.py; these are the pure parts, fast.
"""

from __future__ import annotations

import re

import pytest

from edgefer.config import ConfigError, validate_settings
from edgefer.pipeline.settings import PipelineSettings
from edgefer.pipeline.stats import PipelineStats, StageStats
from edgefer.remote.address import parse_mqtt_url, parse_serve_address
from edgefer.remote.metrics import FAMILIES, Extra, render_metrics
from edgefer.remote.mqtt import ChangeTracker
from edgefer.remote.session import RemoteSession


@pytest.mark.parametrize(("text", "host", "port", "explicit", "loopback"), [
    ("8080", "127.0.0.1", 8080, False, True),
    ("0", "127.0.0.1", 0, False, True),
    ("localhost:9000", "localhost", 9000, True, True),
    ("0.0.0.0:8080", "0.0.0.0", 8080, True, False),
    ("[::1]:8080", "::1", 8080, True, True),
    ("192.168.1.20:80", "192.168.1.20", 80, True, False),
])
def test_serve_address(text: str, host: str, port: int, explicit: bool, loopback: bool) -> None:
    a = parse_serve_address(text)
    assert (a.host, a.port, a.explicit_host, a.loopback) == (host, port, explicit, loopback)


@pytest.mark.parametrize("bad", ["", "http", "host:", ":80", "80000", "host:port"])
def test_serve_address_refused_naming_the_key(bad: str) -> None:
    with pytest.raises(ValueError, match="serve.address"):
        parse_serve_address(bad)


def test_mqtt_url_keeps_the_password_out_of_what_is_shown() -> None:
    t = parse_mqtt_url("mqtt://cam:s3cret@broker.local:1884/site/a/faces")
    assert (t.host, t.port, t.topic, t.username, t.password, t.tls) == (
        "broker.local", 1884, "site/a/faces", "cam", "s3cret", False)
    assert "s3cret" not in t.shown and "s3cret" not in repr(t)
    assert parse_mqtt_url("mqtts://h/t").port == 8883 and parse_mqtt_url("mqtt://h/t").port == 1883


@pytest.mark.parametrize("bad", ["http://h/t", "mqtt:///t", "mqtt://u:pw@h/", "mqtt://h/a/#", "mqtt://h:x/t"])
def test_mqtt_url_refused_without_the_password(bad: str) -> None:
    with pytest.raises(ValueError, match="events.url") as err:
        parse_mqtt_url(bad)
    assert "pw" not in str(err.value).replace("pw@", "")  # only the user name "u" may remain


def test_settings_error_masks_the_broker_password() -> None:
    with pytest.raises(ConfigError) as err:
        validate_settings(PipelineSettings, {"events": {"url": "mqtt://u:hunter2@h/"}}, "cmd")
    assert "hunter2" not in str(err.value) and "events.url" in str(err.value)


def test_non_loopback_bind_generates_a_token_and_loopback_does_not() -> None:
    wide = RemoteSession(PipelineSettings(serve={"address": "192.0.2.1:8080"}))  # not started: nothing binds
    assert wide.token_generated and wide.token and len(wide.token) >= 24
    local = RemoteSession(PipelineSettings(serve={"address": "8080"}))
    assert not local.token_generated and local.token is None
    given = RemoteSession(PipelineSettings(serve={"address": "192.0.2.1:8080", "token": "mine"}))
    assert given.token == "mine" and not given.token_generated


def test_token_comparison() -> None:
    s = RemoteSession(PipelineSettings(serve={"address": "8080", "token": "abc"}))
    assert s.server is not None
    assert s.server.authorized(None, "abc") and s.server.authorized("Bearer abc", None)
    assert not s.server.authorized(None, None) and not s.server.authorized("Bearer abd", "abd")


def test_metrics_text_is_prometheus_exposition() -> None:
    stats = PipelineStats(source="rtsp://admin:pw@cam/1", model="m.onnx", backend="cpu", state="running",
                          frames_read=10, frames_processed=9, frames_dropped=1, fps=12.5,
                          stages=(StageStats("track", 9, 20.0, 30.0, 22.0),),
                          end_to_end=StageStats("end-to-end", 9, 50.0, 80.0, 55.0))
    text = render_metrics(stats, Extra(faces_now=1, recording=True, events={"published": 3, "queued": 2,
                                                                           "dropped": 1, "connected": 0}))
    assert "admin:pw" not in text and "rtsp://admin:***@cam/1" in text
    sample = re.compile(r'^[a-z_]+(\{([a-z_]+="[^"]*",?)+\})? (-?[0-9.e+-]+|NaN)$')
    names = {name for name, _, _ in FAMILIES}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) [a-z_]+ ", line), line
            continue
        assert sample.match(line), line
        assert line.split("{")[0].split(" ")[0] in names
    assert "edgefer_frames_read_total 10" in text and "edgefer_recording 1" in text
    assert 'edgefer_stage_latency_seconds{stage="track",quantile="0.95"} 0.03' in text
    assert "edgefer_events_dropped_total 1" in text


def _row(frame: int, t: float, face: int, expr: str) -> dict:
    return {"frame": frame, "timestamp_s": t, "face_id": face, "expression": expr}


def test_changes_mode_start_change_end() -> None:
    tr = ChangeTracker(end_after_s=1.0)
    assert [m["event"] for m in tr.feed([_row(0, 0.0, 1, "fear")], 0.0)] == ["start"]
    assert tr.feed([_row(1, 0.1, 1, "fear")], 0.1) == []
    out = tr.feed([_row(2, 0.2, 1, "sadness"), _row(2, 0.2, 2, "neutral")], 0.2)
    assert [(m["event"], m["face_id"], m["expression"]) for m in out] == [("change", 1, "sadness"), ("start", 2, "neutral")]
    out = tr.feed([_row(20, 1.25, 2, "neutral")], 1.25)
    assert [(m["event"], m["face_id"], m["frame"]) for m in out] == [("end", 1, 2)]  # its last row
    assert [(m["event"], m["face_id"]) for m in tr.finish()] == [("end", 2)]


def test_a_runtime_profile_sets_serve_and_events(tmp_path) -> None:
    from edgefer.pipeline.settings import load_pipeline_settings

    profile = tmp_path / "p.yaml"
    profile.write_text("source: clip.mp4\nserve:\n  address: '0.0.0.0:8080'\n  max_clients: 4\n"
                       "events:\n  url: mqtt://broker.local/site/faces\n  mode: changes\n")
    s = load_pipeline_settings(profile, ["events.queue_size=50"])
    assert (s.serve.address, s.serve.max_clients) == ("0.0.0.0:8080", 4)
    assert (s.events.url, s.events.mode, s.events.queue_size) == ("mqtt://broker.local/site/faces", "changes", 50)
    profile.write_text("serve:\n  adress: 8080\n")
    with pytest.raises(ConfigError, match="serve.adress"):
        load_pipeline_settings(profile)


def test_camera_credentials_appear_in_no_endpoint() -> None:
    """A real server on loopback, attached to a stand-in pipeline whose source and faults carry a
    password: the page, /status, /metrics, /healthz and the first events show it masked or not at all."""
    import http.client
    import urllib.request
    from pathlib import Path

    from edgefer.pipeline.events import PipelineEvent

    secret = "Sup3rS3cret"
    source = f"rtsp://admin:{secret}@10.0.0.7:554/stream1?password={secret}"

    class FakePipeline:
        recording: Path | None = None

        def stats(self) -> PipelineStats:
            return PipelineStats(source=source, model="m.onnx", backend="cpu", state="running", frames_read=3)

        def events(self) -> list[PipelineEvent]:
            return [PipelineEvent("warning", "capture", f"lost {source}; reconnecting")]

    session = RemoteSession(PipelineSettings(serve={"address": "0"}))
    session.start()
    session.attach(FakePipeline())
    assert session.server is not None
    try:
        port = session.server.port
        bodies = []
        for path in ("/", "/status", "/metrics", "/healthz", "/rows"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
                bodies.append(r.read().decode())
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/events")
        resp = conn.getresponse()
        bodies.append(b"".join(resp.fp.readline() for _ in range(4)).decode())
        conn.close()
    finally:
        session.close()
    everything = "\n".join(bodies)
    assert secret not in everything
    assert "rtsp://admin:***@10.0.0.7:554/stream1" in everything  # masked, still telling cameras apart
