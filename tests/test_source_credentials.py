"""RTSP passwords never leave the process (issue 11, item 8): not in logs, warnings, events, the
summary, the output files. The end-to-end cases run the real `edgefer run` against a closed port
and against a real local server that refuses the login."""

from __future__ import annotations

import io
import logging
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgefer.pipeline.sources import SourceSpec
from edgefer.redact import RedactingFilter, redact

SECRET = "s3cr3t-Pa55"


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        (f"rtsp://admin:{SECRET}@10.0.0.5:554/stream1", "rtsp://admin:***@10.0.0.5:554/stream1"),
        (f"rtsps://admin:{SECRET}@cam.local/live", "rtsps://admin:***@cam.local/live"),
        (f"rtsp://admin:{SECRET}@x@cam/s", "rtsp://admin:***@cam/s"),  # an unescaped '@' in the password
        (f"https://{SECRET}@cdn.example/live", "https://***@cdn.example/live"),  # a bare token
        (f"rtsp://cam:554/user=admin&password={SECRET}&channel=1", "rtsp://cam:554/user=admin&password=***&channel=1"),
        (f"http://cam/video?token={SECRET}&fps=5", "http://cam/video?token=***&fps=5"),
        (f"rtspsrc location=rtsp://a:{SECRET}@cam/s user-pw={SECRET} ! decodebin ! appsink",
         "rtspsrc location=rtsp://a:***@cam/s user-pw=*** ! decodebin ! appsink"),
        ("rtsp://cam.local/stream1", "rtsp://cam.local/stream1"),
        ("/data/clips/a@b.mp4", "/data/clips/a@b.mp4"),
        ("file:///data/a@b.mp4", "file:///data/a@b.mp4"),
        ("0", "0"),
    ],
)
def test_redact(typed: str, shown: str) -> None:
    assert redact(typed) == shown


def test_source_spec_shows_no_password_but_opens_with_it() -> None:
    typed = f"rtsp://admin:{SECRET}@127.0.0.1:8554/cam"
    spec = SourceSpec.parse(typed)
    assert spec.uri == typed  # OpenCV still gets the credentials
    assert spec.label == "rtsp://admin:***@127.0.0.1:8554/cam"
    assert SECRET not in repr(spec) and SECRET not in str(spec) and SECRET not in f"{spec!r}"
    gst = SourceSpec.parse(f"rtspsrc location=rtsp://a:{SECRET}@cam/s ! decodebin ! appsink")
    assert SECRET not in gst.label and SECRET not in repr(gst)
    with pytest.raises(ValueError) as err:
        SourceSpec.parse(f"rtspx://admin:{SECRET}@cam/s")  # unknown scheme: the message quotes the source
    assert "unknown scheme" in str(err.value) and SECRET not in str(err.value)


def test_log_filter_masks_messages_and_tracebacks() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("edgefer.test_redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("lost %s; reconnecting", f"rtsp://u:{SECRET}@cam/s")
        try:
            raise RuntimeError(f"cannot open rtsp://u:{SECRET}@cam/s")
        except RuntimeError:
            logger.exception("capture failed")
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert "lost rtsp://u:***@cam/s; reconnecting" in text and "RuntimeError: cannot open rtsp://u:***@cam/s" in text
    assert SECRET not in text


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def refusing_rtsp_server() -> Iterator[int]:
    """A real RTSP endpoint on the loopback that answers every request `401 Unauthorized` (a camera
    with another password), so FFmpeg's RTSP client runs its whole login path and logs it."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        buf = b""
        with conn:
            conn.settimeout(5)
            while not stop.is_set():
                try:
                    data = conn.recv(4096)
                except OSError:
                    return
                if not data:
                    return
                buf += data
                while b"\r\n\r\n" in buf:
                    head, buf = buf.split(b"\r\n\r\n", 1)
                    cseq = next((ln.split(":", 1)[1].strip() for ln in head.decode(errors="replace").split("\r\n")
                                 if ln.lower().startswith("cseq:")), "1")
                    reply = f'RTSP/1.0 401 Unauthorized\r\nCSeq: {cseq}\r\nWWW-Authenticate: Basic realm="cam"\r\n\r\n'
                    conn.sendall(reply.encode())

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=2)
        srv.close()


def _run_against(port: int, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path / "out"
    res = subprocess.run(
        [sys.executable, "-m", "edgefer.cli", "-v", "run", "--source", f"rtsp://user:{SECRET}@127.0.0.1:{port}/x",
         "--headless", "--max-frames", "3", "--no-progress", "--set", "reconnect.max_attempts=1",
         "--csv", str(out / "rows.csv"), "--record", str(out / "rec.mp4")],
        capture_output=True, text=True, timeout=180,
    )
    return res, out


def _assert_nothing_leaked(res: subprocess.CompletedProcess[str], out: Path, port: int) -> None:
    shown = f"rtsp://user:***@127.0.0.1:{port}/x"
    assert res.returncode == 1  # nothing could be read
    assert f"source    {shown}" in res.stdout  # the summary names the source, masked
    assert f"gave up on {shown}" in res.stdout  # so does the error event
    assert shown in res.stderr  # and the log lines (-v: status events too)
    assert SECRET not in res.stdout and SECRET not in res.stderr
    # no frame was read: the stats table shows dashes, not nan (issue 11, item 15)
    assert "nan" not in res.stdout and "capture           -        -        -       0" in res.stdout
    for f in out.rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f


def test_closed_port_run_never_prints_the_password(tmp_path: Path) -> None:
    port = _closed_port()
    res, out = _run_against(port, tmp_path)
    _assert_nothing_leaked(res, out, port)


def test_refused_login_never_prints_the_password(tmp_path: Path, refusing_rtsp_server: int) -> None:
    res, out = _run_against(refusing_rtsp_server, tmp_path)
    assert "401" in res.stderr  # FFmpeg's own RTSP client did talk to the server
    _assert_nothing_leaked(res, out, refusing_rtsp_server)
