"""The HTTP server of `--serve`: the page, the MJPEG stream, rows, server-sent events, metrics.

Standard library only (`http.server.ThreadingHTTPServer`): a handful of endpoints, one thread per
open connection, and nothing to install on a Jetson. A framework would add dependencies and an
event loop for no gain at this size; what matters here (bounded connections, a token on every
request, a stream that never waits on the pipeline) is a few lines either way.

Security decisions (docs/remote.md):
- bound to 127.0.0.1 unless a host is given; any other host needs a token, on every request,
  as `Authorization: Bearer TOKEN` or `?token=TOKEN` (a browser's `<img>` and `EventSource`
  cannot send headers). Tokens are compared in constant time;
- at most `max_clients` connections are open at once; the next one gets 503 and is closed by
  the accepting thread without reading it, so a flood cannot start threads;
- every socket has a timeout: a client that sends nothing, or stops reading the stream, is
  dropped after `timeout` seconds and frees its slot;
- the request log masks the token (`edgefer.redact`), and nothing the server sends contains a
  camera's credentials (the source is redacted in the status and the metrics).
"""

from __future__ import annotations

import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from edgefer.redact import redact
from edgefer.remote.address import ServeAddress
from edgefer.remote.hub import LiveHub
from edgefer.remote.metrics import CONTENT_TYPE as METRICS_TYPE
from edgefer.remote.page import render_page

log = logging.getLogger(__name__)

BOUNDARY = "edgefer-frame"
_BUSY = (b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 5\r\n"
         b"Connection: close\r\n\r\ntoo many clients; try again later\n")


class ServeError(RuntimeError):
    """The server could not start (the address is taken, or not one of this machine's)."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: ServeAddress, owner: RemoteServer) -> None:
        self.owner = owner
        if ":" in address.host:
            self.address_family = socket.AF_INET6
        super().__init__((address.host, address.port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.owner.slots.acquire(blocking=False):
            self.owner.refused += 1
            try:
                request.settimeout(1.0)
                request.sendall(_BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        with self.owner.count_lock:
            self.owner.connections += 1
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._release()
            raise

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-response is normal (a closed tab): debug, not a traceback."""
        log.debug("request from %s failed", client_address[0] if client_address else "?", exc_info=True)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release()

    def _release(self) -> None:
        with self.owner.count_lock:
            self.owner.connections -= 1
        self.owner.slots.release()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "edgefer"
    sys_version = ""
    protocol_version = "HTTP/1.0"  # one request per connection; streams end when the socket closes

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.owner.timeout)  # a stalled client is dropped, not waited for

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), redact(format % args))

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        owner = self.server.owner
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if not owner.authorized(self.headers.get("Authorization"), query.get("token", [None])[0]):
            self._send(401, b"a token is needed: ?token=TOKEN or Authorization: Bearer TOKEN\n", "text/plain",
                       {"WWW-Authenticate": 'Bearer realm="edgefer"'})
            return
        route: dict[str, Callable[[], None]] = {
            "/": self._page,
            "/index.html": self._page,
            "/stream.mjpg": self._stream,
            "/frame.jpg": self._frame,
            "/rows": lambda: self._json(owner.rows_json()),
            "/status": lambda: self._json(owner.status()),
            "/events": self._events,
            "/healthz": self._healthz,
            "/metrics": lambda: self._send(200, owner.metrics().encode("utf-8"), METRICS_TYPE),
        }
        handler = route.get(url.path)
        if handler is None:
            self._send(404, f"no such page; try {', '.join(sorted(route))}\n".encode(), "text/plain")
            return
        try:
            handler()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            log.debug("client %s went away or stalled (%s)", self.address_string(), url.path)

    def _page(self) -> None:
        owner = self.server.owner
        initial = {"status": owner.status(), "rows": owner.rows_json(), "trend": owner.hub.trends()}
        self._send(200, render_page(owner.token, initial), "text/html; charset=utf-8")

    def _send(self, code: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, data: Any) -> None:
        self._send(200, json.dumps(data, allow_nan=False).encode("utf-8"), "application/json")

    def _healthz(self) -> None:
        status = self.server.owner.status()
        ok = status["state"] in ("idle", "running", "paused")
        self._json_code(200 if ok else 503, {"ok": ok, "state": status["state"], "fps": status["fps"]})

    def _json_code(self, code: int, data: Any) -> None:
        self._send(code, json.dumps(data, allow_nan=False).encode("utf-8"), "application/json")

    def _frame(self) -> None:
        hub = self.server.owner.hub
        jpeg = hub.latest_jpeg()
        if jpeg is None or not hub.watchers:  # nothing encoded lately (nobody watches): one fresh frame
            hub.watch()
            try:
                jpeg = hub.next_jpeg(jpeg.seq if jpeg is not None else 0, 2.0) or jpeg
            finally:
                hub.unwatch()
        if jpeg is None:
            self._send(503, b"no frame yet\n", "text/plain")
        else:
            self._send(200, jpeg.data, "image/jpeg", {"X-Frame": str(jpeg.frame)})

    def _stream(self) -> None:
        """MJPEG: each part is the newest JPEG; a slow reader skips frames (see LiveHub)."""
        hub = self.server.owner.hub
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        hub.watch()
        try:
            last = 0
            while not hub.closed:
                jpeg = hub.next_jpeg(last, 1.0)
                if jpeg is None:
                    continue
                last = jpeg.seq
                head = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg.data)}\r\n"
                        f"X-Frame: {jpeg.frame}\r\n\r\n").encode()
                self.wfile.write(head + jpeg.data + b"\r\n")
        finally:
            hub.unwatch()

    def _events(self) -> None:
        """Server-sent events: `rows` (the newest frame's, at most `stream_fps` a second: a client
        gets the newest, not every one) and `status` once a second. Both are serialised once for
        all clients (`RowsUpdate.payload`, the owner's cached status)."""
        owner = self.server.owner
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(b"retry: 2000\n\n")
        period = 1.0 / owner.hub.stream_fps
        last, next_status, next_rows = 0, 0.0, 0.0
        while not owner.hub.closed:
            now = time.monotonic()
            if now >= next_status:
                self._sse("status", owner.status_json())
                next_status = now + 1.0
            if now < next_rows:
                time.sleep(min(next_rows, next_status) - now)
                continue
            update = owner.hub.next_rows(last, max(0.05, next_status - time.monotonic()))
            if update is None:
                continue
            last, next_rows = update.seq, time.monotonic() + period
            self._sse("rows", update.payload)

    def _sse(self, event: str, payload: str) -> None:
        self.wfile.write(f"event: {event}\ndata: {payload}\n\n".encode())


class RemoteServer:
    """The HTTP side of `--serve`: `start()` binds (ServeError when it cannot), `close()` stops."""

    def __init__(self, address: ServeAddress, hub: LiveHub, status: Callable[[], dict[str, Any]],
                 metrics: Callable[[], str], token: str | None = None, max_clients: int = 16,
                 timeout: float = 10.0) -> None:
        if not address.loopback and not token:
            raise ServeError(f"serving on {address.host} (not loopback) needs a token")
        self.address = address
        self.hub = hub
        self.status = status
        self.metrics = metrics
        self.token = token
        self.timeout = timeout
        self.slots = threading.BoundedSemaphore(max_clients)
        self.count_lock = threading.Lock()
        self.connections = 0
        self.refused = 0
        self._status_cache: tuple[float, str] | None = None
        self._status_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def authorized(self, header: str | None, query_token: str | None) -> bool:
        if not self.token:
            return True
        given = query_token
        if header and header.lower().startswith("bearer "):
            given = header[7:].strip()
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def status_json(self) -> str:
        """`status()` as JSON, made at most every half second whoever asks (every SSE client asks
        once a second: the pipeline's statistics are read once, not once per client)."""
        with self._status_lock:
            now = time.monotonic()
            if self._status_cache is None or now - self._status_cache[0] > 0.5:
                self._status_cache = (now, json.dumps(self.status(), allow_nan=False))
            return self._status_cache[1]

    def rows_json(self) -> dict[str, Any]:
        u = self.hub.latest_rows()
        return {"frame": u.frame, "timestamp_s": u.timestamp_s, "rows": u.rows}

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self.address.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}/"

    def start(self) -> None:
        try:
            self._server = _Server(self.address, self)
        except OSError as exc:
            raise ServeError(f"cannot serve on {self.address.host}:{self.address.port}: {exc.strerror or exc}") from None
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="edgefer-remote-http", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
