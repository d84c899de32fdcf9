"""Parsing what a user types for the remote outputs: `[HOST:]PORT` and `mqtt://` URLs.

Pure functions with no import of the pipeline, so `edgefer.pipeline.settings` validates its
`serve.address` and `events.url` keys with them and a typo stops the run before it starts.
A parsed MQTT URL keeps the password apart from what is shown: `MqttTarget.shown` is the URL with
the password masked (`edgefer.redact`), the only form that reaches a log, a page or the summary.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from edgefer.redact import redact

LOOPBACK = "127.0.0.1"
MQTT_PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True)
class ServeAddress:
    """Where the HTTP server binds. `explicit_host`: the user gave a host (then a token is needed
    unless that host is a loopback address)."""

    host: str
    port: int
    explicit_host: bool

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def parse_serve_address(text: str) -> ServeAddress:
    """`PORT`, `HOST:PORT` or `[IPv6]:PORT` -> ServeAddress; ValueError naming the key otherwise.

    Port 0 asks the system for a free port (the tests use it; the chosen port is printed).
    """
    s = str(text).strip()
    host, sep, port_text = s.rpartition(":")
    if not sep:
        host, port_text = "", s
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"serve.address must be [HOST:]PORT with PORT 0..65535 (got {s!r})")
    if sep and not host:
        raise ValueError(f"serve.address has an empty host before ':' (got {s!r}); give PORT or HOST:PORT")
    return ServeAddress(host or LOOPBACK, int(port_text), explicit_host=bool(host))


@dataclass(frozen=True)
class MqttTarget:
    """A parsed `mqtt://[user:pass@]host[:port]/topic` (or `mqtts://` for TLS)."""

    host: str
    port: int
    topic: str
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a repr, a log or a page
    shown: str = ""


def parse_mqtt_url(text: str) -> MqttTarget:
    """Parse an events URL; ValueError naming `events.url` (with the password masked) otherwise."""
    raw = str(text).strip()
    shown = redact(raw)
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:  # a port that is not a number, or out of range
        raise ValueError(f"events.url {shown}: {exc}") from None
    if parts.scheme not in MQTT_PORTS:
        raise ValueError(f"events.url must start with mqtt:// or mqtts:// (got {shown!r})")
    if not parts.hostname:
        raise ValueError(f"events.url has no broker host (got {shown!r}); e.g. mqtt://broker.local/edgefer/faces")
    topic = unquote(parts.path.lstrip("/"))
    if not topic or "+" in topic or "#" in raw:  # '#' would start a URL fragment: refused, not cut off
        raise ValueError(f"events.url needs a topic without wildcards after the host (got {shown!r})")
    return MqttTarget(
        host=parts.hostname,
        port=port or MQTT_PORTS[parts.scheme],
        topic=topic,
        tls=parts.scheme == "mqtts",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        shown=shown,
    )
