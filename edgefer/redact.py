"""Masking credentials in anything that describes a source: the one redaction helper.

Cameras are commonly reached as `rtsp://user:password@host/stream`, some with the password in the
query or path (`...?user=admin&password=...`, XMEye's `/user=admin&password=...&channel=1`), and
GStreamer's `rtspsrc` takes `user-pw=...`. A monitor that runs for weeks writes its source into
log files, the summary, events, the UI and bug reports, so every place that shows a source shows
`redact(source)`: the password becomes `***` and everything else (scheme, user name, host, port,
path) stays, because that is what an operator needs to tell cameras apart.

`redact` works on any text, not only on a bare URL, so a whole message or a GStreamer pipeline
that embeds URLs is masked too. `RedactingFilter` applies it to log records as a last line of
defence for messages built elsewhere (the CLI installs it on its log handlers).
"""

from __future__ import annotations

import logging
import re

MASK = "***"

# scheme://userinfo@ : the user name is kept, the password (after the first ':') is masked. A
# userinfo without ':' is masked whole: it is often a bare token (https://TOKEN@host/...).
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<userinfo>[^/\s?#'\"]+)@")
# key=value pairs whose value is a secret, in a query, a path or a GStreamer property list.
_SECRET_PAIR = re.compile(
    r"(?i)(?P<key>\b(?:password|passwd|pass|pwd|user-pw|proxy-pw|token|access_token|auth|authorization|"
    r"secret|api_?key|key|sig|signature)=)(?P<value>\"[^\"]*\"|'[^']*'|[^&;\s\"']+)"
)


def _mask_userinfo(match: re.Match[str]) -> str:
    user, sep, _password = match.group("userinfo").partition(":")
    return f"{match.group('scheme')}{user}:{MASK}@" if sep else f"{match.group('scheme')}{MASK}@"


def redact(text: object) -> str:
    """`text` (a source, a URL, a message) with every embedded credential replaced by `***`."""
    s = str(text)
    if "@" in s:
        s = _USERINFO.sub(_mask_userinfo, s)
    if "=" in s:
        s = _SECRET_PAIR.sub(lambda m: m.group("key") + MASK, s)
    return s


class RedactingFilter(logging.Filter):
    """A logging filter that masks credentials in the formatted message of every record.

    Installed on handlers (not loggers) so it sees the records of every library logger; it
    rewrites `msg`/`args` in place and never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is the logging module's to report
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            # Formatter.format reuses a cached exc_text: fill it here so the traceback is masked too.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Add a `RedactingFilter` to every handler of `logger` (default: the root logger), once."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
