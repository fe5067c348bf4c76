"""``POST /_vango/upload``: the body of an upload, streamed to temporary files on whichever worker gets it.

The request (vango.js sends it when a ``use_upload`` input changes)::

    POST /_vango/upload?hid=<input's data-hid>
    X-CSRF-Token: <the page's token>          (double submit with the HttpOnly cookie)
    X-Vango-Session: <session id>             (a header: never in a URL, never in an access log)
    X-Vango-Files: <URL-encoded JSON [[name, type, size], ...]>
    Content-Length: <the sizes added up>
    <the files' bytes, one after another>

Before a byte of the body is read, the worker that owns the session (this
one or another, asked over the bus) checks that the session belongs to the
browser (the CSRF cookie) and that the input's limits allow these files;
a refusal answers 403/404/413/415 with the message the component shows too.
The body then goes to disk in Tornado's chunks (64 KiB), never whole in
memory; progress goes to the owner every PROGRESS_STEP, and the owner's
answer may say "cancel" (the component cancelled, or the session ended):
the connection is dropped and the partial files removed. Files the owner
does not take are removed here.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import shutil
import tempfile
from typing import Any
from urllib.parse import unquote

import tornado.ioloop
import tornado.web

from . import metrics, security
from .bus import BusError
from .handlers import WorkerHeader
from .identity import browser_key
from .settings import Settings
from .uploads import ABORT, BEGIN, DIR_PREFIX, FINISH, HARD_MAX_FILES, PROGRESS, FileInfo, Registry, remove

log = logging.getLogger("vango_mp.uploadhandler")

MAX_FILES_HEADER = 32 * 1024
HARD_MAX_BODY = 4 * 1024**3  # bytes in one upload request, whatever an input allows
PROGRESS_MIN_STEP = 64 * 1024
PROGRESS_PARTS = 50  # progress reports per upload (at most, plus the last)
BUS_TIMEOUT = 5.0


class Spool:
    """The body, cut at the declared sizes into one temporary file each (0600, in this worker's directory)."""

    def __init__(self, directory: str, sizes: list[int]) -> None:
        self.directory, self.sizes = directory, sizes
        self.paths: list[str] = []
        self.file: Any = None
        self.left = 0

    def _next(self) -> None:
        if self.file is not None:
            self.file.close()
        fd, path = tempfile.mkstemp(dir=self.directory, prefix="up-")
        self.paths.append(path)
        self.file = os.fdopen(fd, "wb")
        self.left = self.sizes[len(self.paths) - 1]

    def write(self, chunk: bytes) -> None:
        """Append ``chunk``; ValueError past the declared sizes."""
        view = memoryview(chunk)
        while view:
            while self.left == 0:
                if len(self.paths) >= len(self.sizes):
                    raise ValueError("more bytes than the files declared")
                self._next()
            take = min(self.left, len(view))
            self.file.write(view[:take])
            self.left -= take
            view = view[take:]

    def close(self) -> list[str]:
        """Every file complete (empty ones created), closed; their paths."""
        while len(self.paths) < len(self.sizes):
            self._next()
        if self.file is not None:
            self.file.close()
            self.file = None
        return list(self.paths)

    def discard(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
        remove(self.paths)
        self.paths = []


def upload_directory(slot: int) -> str:
    """This worker's private directory for upload bodies (removed when the process exits)."""
    path = tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{slot}-")
    atexit.register(shutil.rmtree, path, True)
    return path


def parse_files(header: str) -> list[FileInfo]:
    """The X-Vango-Files header; ValueError if malformed."""
    if not header or len(header) > MAX_FILES_HEADER:
        raise ValueError("missing or oversized X-Vango-Files")
    raw = json.loads(unquote(header))
    if not isinstance(raw, list) or not 0 < len(raw) <= HARD_MAX_FILES:
        raise ValueError(f"X-Vango-Files must list 1..{HARD_MAX_FILES} files")
    if not all(isinstance(f, list) and len(f) == 3 for f in raw):
        raise ValueError("each file is [name, type, size]")
    return [FileInfo.of(*f) for f in raw]


@tornado.web.stream_request_body
class UploadHandler(WorkerHeader, tornado.web.RequestHandler):
    """One upload request (see the module doc)."""

    SUPPORTED_METHODS = ("POST",)
    IDLE_TIMEOUT = 60.0  # seconds a body may pause before the upload is dropped (a stalled or slowloris client)

    def initialize(self, registry: Registry, settings: Settings, csrf_secret: bytes, directory: str,
                   bus: Any) -> None:
        self.registry, self.vango_settings, self.csrf_secret = registry, settings, csrf_secret
        self.directory, self.bus_of = directory, bus  # bus: () -> the BusClient or None
        self.spool: Spool | None = None
        self.uid = ""
        self.owner_slot = -1
        self.total = self.received = self.reported = 0
        self.reporting = False
        self.done = False
        self.idle_timer: object | None = None

    # -- talking to the session's owner --

    async def ask(self, kind: str, body: dict[str, Any]) -> Any:
        if self.owner_slot == self.registry.slot:
            return self.registry.handlers()[kind](body, self.registry.slot)
        bus = self.bus_of()
        if bus is None:
            return {"cancel": True}
        return await bus.request(self.owner_slot, kind, body, timeout=BUS_TIMEOUT)

    async def begin(self, body: dict[str, Any]) -> Any:
        answer = self.registry.begin(body)  # this worker, most often
        bus = self.bus_of()
        if answer is None and bus is not None:
            answer = await bus.request_any(BEGIN, body, timeout=BUS_TIMEOUT)
        return answer

    def refuse(self, status: int, message: str) -> None:
        metrics.inc("vango_upload_refusals_total", reason=str(status))
        self.set_status(status)
        self.set_header("Cache-Control", "no-store")
        self.finish({"error": message})

    # -- the request --

    async def prepare(self) -> None:
        super().prepare()
        if self._finished:
            return
        s, req = self.vango_settings, self.request
        cookie = self.get_cookie(security.CSRF_COOKIE)
        if not s.dev and not security.verify_csrf(self.csrf_secret, req.headers.get("X-CSRF-Token", ""), cookie):
            return self.refuse(403, "CSRF token missing or invalid")
        try:
            files = parse_files(req.headers.get("X-Vango-Files", ""))
            hid = int(self.get_query_argument("hid", ""))
        except (ValueError, TypeError):
            return self.refuse(400, "Malformed upload request")
        length = req.headers.get("Content-Length")
        if length is None or not length.isdigit():
            return self.refuse(411, "Content-Length required")
        total = sum(f.size for f in files)
        if int(length) != total:
            return self.refuse(400, "The body does not match the declared file sizes")
        if total > HARD_MAX_BODY:
            return self.refuse(413, "Upload too large")
        body = {"sid": req.headers.get("X-Vango-Session", ""), "hid": hid, "browser": browser_key(cookie),
                "files": [[f.name, f.type, f.size] for f in files]}
        try:
            answer = await self.begin(body)
        except BusError:
            return self.refuse(503, "Server busy, try again")
        if not isinstance(answer, dict):
            return self.refuse(404, "Session not found (reload the page)")
        if "refused" in answer:
            return self.refuse(int(answer.get("status", 400)), str(answer["refused"]))
        self.uid, self.owner_slot, self.total = str(answer["id"]), int(answer["slot"]), total
        self.request.connection.set_max_body_size(total)  # type: ignore[attr-defined]
        self.spool = Spool(self.directory, [f.size for f in files])
        self.arm_idle()
        metrics.inc("vango_uploads_total")

    def arm_idle(self) -> None:
        """(Re)start the idle deadline: a body that stops arriving for IDLE_TIMEOUT is dropped."""
        loop = tornado.ioloop.IOLoop.current()
        if self.idle_timer is not None:
            loop.remove_timeout(self.idle_timer)  # type: ignore[arg-type]
        self.idle_timer = loop.call_later(self.IDLE_TIMEOUT, self.idle) if self.spool is not None else None

    def idle(self) -> None:
        self.idle_timer = None
        if self.spool is not None and not self.done:
            log.info("upload %s: no data for %gs, dropped", self.uid, self.IDLE_TIMEOUT)
            self.drop("Upload stalled")

    def data_received(self, chunk: bytes) -> None:
        if self.spool is None:
            return  # refused: Tornado drops what still arrives
        try:
            self.spool.write(chunk)
        except (ValueError, OSError) as err:
            log.warning("upload %s: %s", self.uid, err)
            self.drop(f"Upload failed: {err}")
            return
        self.received += len(chunk)
        self.arm_idle()
        step = max(PROGRESS_MIN_STEP, self.total // PROGRESS_PARTS)
        if not self.reporting and self.received - self.reported >= step and self.received < self.total:
            self.reporting = True
            self.reported = self.received
            asyncio.ensure_future(self.report(self.received))

    async def report(self, received: int) -> None:
        try:
            answer = await self.ask(PROGRESS, {"id": self.uid, "received": received})
        except BusError:
            answer = {}
        finally:
            self.reporting = False
        if isinstance(answer, dict) and answer.get("cancel") and self.spool is not None and not self.done:
            self.drop(None)

    def drop(self, reason: str | None) -> None:
        """Stop reading: remove the partial files, tell the owner (unless it asked), close the connection."""
        spool, self.spool = self.spool, None
        if spool is not None:
            spool.discard()
        if reason is not None:
            asyncio.ensure_future(self.tell_abort(reason))
        metrics.inc("vango_upload_refusals_total", reason="cancelled")
        if self.request.connection is not None and hasattr(self.request.connection, "close"):
            self.request.connection.close()  # type: ignore[attr-defined]

    async def tell_abort(self, reason: str) -> None:
        try:
            await self.ask(ABORT, {"id": self.uid, "reason": reason})
        except BusError:
            pass

    async def post(self) -> None:
        spool, self.spool = self.spool, None
        if spool is None:
            return self.refuse(409, "Upload cancelled")
        paths = spool.close()
        try:
            answer = await self.ask(FINISH, {"id": self.uid, "paths": paths})
        except BusError:
            answer = None
        self.done = True
        if not isinstance(answer, dict) or not answer.get("ok"):
            remove(paths)
            return self.refuse(409, "Upload cancelled")
        self.set_header("Cache-Control", "no-store")
        self.finish({"ok": True, "size": self.received})

    def on_connection_close(self) -> None:
        """The browser went away (or aborted) mid-body."""
        if self.spool is not None and not self.done:
            self.drop("Upload cancelled")

    def on_finish(self) -> None:
        if self.idle_timer is not None:
            tornado.ioloop.IOLoop.current().remove_timeout(self.idle_timer)  # type: ignore[arg-type]
            self.idle_timer = None
        if self.spool is not None:  # an error page replaced the answer
            self.spool.discard()
            self.spool = None
