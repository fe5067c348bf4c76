"""Log lines an operator's tools can read: ``log_format = "json"``, request ids, the access log.

With ``log_format = "json"`` every line is one JSON object::

    {"ts": "2026-11-30T03:14:29.567Z", "level": "INFO", "logger": "vango_mp.refusal",
     "msg": "refused: csrf", "pid": 22281, "worker": 0, "reason": "csrf"}

``worker`` is the slot (absent in the supervisor), ``session`` the session's
short id (:func:`vango_mp.security.redact`: never the whole id) on lines
logged while a session runs, ``request_id`` the id of the HTTP request or
WebSocket upgrade being served (the client's ``X-Request-Id`` when it is a
plain token, else a fresh one; echoed in the response). Extra fields given
as ``log.info(..., extra={"reason": ...})`` are kept when their names are in
:data:`FIELDS`.

The access log (``access_log = true``) is one line per HTTP request and
WebSocket upgrade: method, path *without* its query (a query may hold a
token), status, milliseconds, client address. Off, only 5xx answers are
logged. Each refusal of a socket or session is one line on the
``vango_mp.refusal`` logger with its ``reason`` code (:mod:`.prom`).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import time
from typing import Any

from ..security import redact

FIELDS = ("reason", "method", "path", "status", "ms", "ip", "code")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("vango_request_id", default=None)
# The whole id (setting it costs no string per flush); what a line shows is its redacted prefix.
session_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("vango_session_id", default=None)
_worker: int | None = None

access = logging.getLogger("vango_mp.access")


def set_worker(slot: int) -> None:
    """Name this process's worker slot on every line it logs (a worker calls it after the fork)."""
    global _worker
    _worker = slot


def bind_session(sid: str) -> None:
    """Lines logged from here on in this task carry the session's short id."""
    session_id.set(sid)


def new_request_id(given: str | None) -> str:
    """The client's (or proxy's) ``X-Request-Id`` when it is a plain token, else a fresh one."""
    rid = given if given and _REQUEST_ID.match(given) else secrets.token_hex(6)
    request_id.set(rid)
    return rid


class JsonFormatter(logging.Formatter):
    """One JSON object per line (``log_format = "json"``)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        if _worker is not None:
            out["worker"] = _worker
        sid = session_id.get()
        if sid:
            out["session"] = redact(sid)
        rid = request_id.get()
        if rid:
            out["request_id"] = rid
        for key in FIELDS:
            if key in record.__dict__:
                out[key] = record.__dict__[key]
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def formatter(log_format: str, text_format: str) -> logging.Formatter:
    """The formatter of ``log_format`` (``json`` or ``text``, the latter with ``text_format``)."""
    return JsonFormatter() if log_format == "json" else logging.Formatter(text_format)


def access_logger(enabled: bool) -> Any:
    """Tornado's ``log_function``: every request with ``enabled``, else only server errors."""

    def log_request(handler: Any) -> None:
        status = handler.get_status()
        if not enabled and status < 500:
            return
        req = handler.request
        ms = round(1000.0 * req.request_time(), 2)
        path = (req.path or "/")[:200]
        level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
        access.log(level, "%d %s %s %.2fms", status, req.method, path, ms,
                   extra={"method": req.method, "path": path, "status": status, "ms": ms, "ip": req.remote_ip})

    return log_request
