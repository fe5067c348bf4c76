"""The ``/_vango/ws`` endpoint: handshake, frame validation, session I/O.

A socket is pre-session until its HELLO arrives (bounded in time and in
number, globally and per IP). Every frame is validated by
:mod:`vango_mp.protocol`; a bad one closes this socket with its reason and
touches nothing else. After the handshake the handler is a thin pipe between
the socket and its :class:`~vango_mp.session.Session`.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import tornado.httputil
import tornado.ioloop
import tornado.websocket

from . import adoption, auth, metrics, persist, protocol, security
from .protocol import Close, ProtocolError
from .session import Session, SessionState
from .sessions import ColdSession

if TYPE_CHECKING:
    from .worker import WorkerContext

log = logging.getLogger("vango_mp.live")

# Shared, never mutated after the handshake: what a shed request points to.
_NO_HEADERS = tornado.httputil.HTTPHeaders()
_NO_ARGS: dict[str, list[bytes]] = {}


def html_hash(html: str) -> str:
    """Fingerprint of rendered HTML: the client sends the SSR one back in HELLO."""
    return hashlib.blake2b(html.encode(), digest_size=8).hexdigest()


class HandshakeGate:
    """Counts sockets that have not completed HELLO: MaxConcurrentHandshakes, per IP too."""

    def __init__(self, total: int, per_ip: int) -> None:
        self.total, self.per_ip = total, per_ip
        self.pending = 0
        self.by_ip: Counter[str] = Counter()

    def enter(self, ip: str) -> str | None:
        """Take a slot, or return why not."""
        if self.total and self.pending >= self.total:
            return "too many concurrent handshakes"
        if self.per_ip and self.by_ip[ip] >= self.per_ip:
            return "too many concurrent handshakes from this IP address"
        self.pending += 1
        self.by_ip[ip] += 1
        return None

    def leave(self, ip: str) -> None:
        self.pending -= 1
        self.by_ip[ip] -= 1
        if self.by_ip[ip] <= 0:
            del self.by_ip[ip]


class LiveSocket(tornado.websocket.WebSocketHandler):
    """One browser's WebSocket; after HELLO, the connection of one session."""

    ctx: WorkerContext
    session: Session | None
    client_ip: str
    last_seen: float
    _hello_seen: bool
    _gated: bool
    _timer: object | None

    def initialize(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        self.session = None
        self._hello_seen = False
        self._gated = False
        self._timer = None

    def set_default_headers(self) -> None:
        # Runs before initialize(), hence the application setting.
        self.set_header("X-Vango-Worker", self.application.settings["vango_worker"])

    def get_compression_options(self) -> dict[str, Any] | None:
        # Decline permessage-deflate: a negotiated context costs tens of KiB
        # per socket; our frames are tiny and large ones are lz4'd per frame.
        return None

    def check_origin(self, origin: str) -> bool:
        """Same-origin (plus ``allowed_origins``) unless ``--dev``.

        .. warning:: turning this off allows cross-site WebSocket hijacking.
        """
        s = self.ctx.settings
        if s.dev:
            return True
        return security.origin_allowed(origin, self.request.host, self.request.protocol, s.allowed_origins)

    # -- connection ------------------------------------------------------------

    def open(self, *args: str, **kwargs: str) -> None:
        # Patch frames are tiny and latency-bound: without this, Nagle holds a
        # second small frame (WELCOME then FULL) for the peer's delayed ACK, 40 ms.
        self.set_nodelay(True)
        self.last_seen = time.monotonic()
        s = self.ctx.settings
        self.client_ip = security.client_ip(
            self.request.remote_ip or "", self.request.headers.get("X-Forwarded-For"), s.trusted_proxies
        )
        refused = self.ctx.gate.enter(self.client_ip)
        if refused is not None:
            metrics.inc("vango_refusals_total", reason="handshakes")
            self.close(Close.RATE_LIMITED, refused)
            return
        self._gated = True
        self._timer = tornado.ioloop.IOLoop.current().call_later(s.handshake_timeout, self._handshake_timeout)

    def _handshake_timeout(self) -> None:
        self._timer = None
        if self.session is None:
            metrics.inc("vango_refusals_total", reason="handshake_timeout")
            self.close(Close.HANDSHAKE_TIMEOUT, "handshake timeout")

    def _end_handshake(self) -> None:
        if self._timer is not None:
            tornado.ioloop.IOLoop.current().remove_timeout(self._timer)  # type: ignore[arg-type]
            self._timer = None
        if self._gated:
            self._gated = False
            self.ctx.gate.leave(self.client_ip)

    def on_close(self) -> None:
        self._end_handshake()
        session, self.session = self.session, None
        if session is not None and session.conn is self:
            self.ctx.manager.detach(session)

    # -- Connection protocol for Session ---------------------------------------

    def send(self, data: bytes) -> None:
        if self.ws_connection is None or self.ws_connection.is_closing():
            return
        self.write_message(data, binary=True)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        session, self.session = self.session, None
        if session is not None and session.conn is self:
            session.conn = None
            if session.state is SessionState.ATTACHED:
                self.ctx.manager.detach(session)
        super().close(code, reason)

    # -- frames --------------------------------------------------------------

    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        # Tornado awaits a returned awaitable before reading the next message,
        # so frames stay ordered while a HELLO waits on the bus.
        self.last_seen = time.monotonic()
        try:
            frame = protocol.decode_client(message, self.ctx.settings.max_message_size)
            if self.session is not None:
                self._frame(self.session, frame)
                return None
            if not isinstance(frame, protocol.Hello) or self._hello_seen:
                raise ProtocolError("first frame must be HELLO" if not self._hello_seen else "HELLO twice")
            self._hello_seen = True
            return self._hello(frame)
        except ProtocolError as err:
            self._protocol_error(err)
            return None

    def _protocol_error(self, err: ProtocolError) -> None:
        metrics.inc("vango_refusals_total", reason="protocol_error")
        log.info("closing socket from %s: %s", self.client_ip, err.reason)
        self.close(err.code, err.reason)

    def _frame(self, session: Session, frame: protocol.ClientFrame) -> None:
        if isinstance(frame, protocol.ClientEvent):
            session.queue_event(frame)
        elif isinstance(frame, protocol.Ack):
            session.touch()
        elif isinstance(frame, protocol.Ping):
            self.send(protocol.encode([protocol.S_PONG, frame.t]))
        elif isinstance(frame, protocol.Resync):
            if not session.request_resync(frame.last_seq):
                metrics.inc("vango_refusals_total", reason="resync_rate")
                self.close(Close.RATE_LIMITED, "resync rate limit exceeded")
        elif isinstance(frame, protocol.Hello):
            raise ProtocolError("HELLO after handshake")

    async def _hello(self, hello: protocol.Hello) -> None:
        ctx = self.ctx
        if ctx.stopping:  # our sessions are being handed over: the client reconnects to another worker
            self._refuse(Close.GOING_AWAY, "server stopping", "stopping")
            return
        if not ctx.settings.dev and not security.verify_csrf(
            ctx.secret, hello.csrf, self.get_cookie(security.CSRF_COOKIE)
        ):
            self._refuse(Close.INVALID_CSRF, "invalid CSRF token", "csrf")
            return
        if hello.session_id is not None:
            await self._resume(hello)
        else:
            self._start(hello)

    def _refuse(self, code: Close, reason: str, metric: str) -> None:
        metrics.inc("vango_refusals_total", reason=metric)
        self._end_handshake()
        self.close(code, reason)

    def _start(self, hello: protocol.Hello) -> None:
        from .sessions import Refused

        try:
            session = self.ctx.open_session(hello.path, self.client_ip)
        except Refused as refused:
            self._refuse(refused.code, refused.reason, refused.reason.replace(" ", "_"))
            return
        except LookupError:
            self._refuse(Close.PROTOCOL_ERROR, "no route for path", "no_route")
            return
        try:
            auth.on_start(self.ctx.app, auth.as_request(self, hello.path, self.client_ip), session)
        except Exception:
            log.exception("on_session_start refused a session")
            session.close(Close.NOT_AUTHORIZED, "not authorized")
            self._refuse(Close.NOT_AUTHORIZED, "not authorized", "auth")
            return
        self._bind(session, resumed=False, full=hello.ssr_hash != html_hash(session.root.html()))

    async def _resume(self, hello: protocol.Hello) -> None:
        sid = hello.session_id or ""
        session = self.ctx.manager.get(sid)
        in_memory = session is not None
        if session is None:
            session = await self._fetch(sid)
            if session is None:
                return
        try:
            auth.on_resume(self.ctx.app, auth.as_request(self, hello.path, self.client_ip), session, in_memory=in_memory)
        except auth.NotAuthorized as refused:
            log.info("resume of %s refused: %s", security.redact(sid), refused)
            self._refuse(Close.NOT_AUTHORIZED, "not authorized", "auth_resume")
            return
        if self.ws_connection is None or self.ws_connection.is_closing():
            return  # the client left while we fetched; the session stays detached here
        if session.conn is not None:
            # A newer socket wins; the old one is told why it lost.
            old = session.conn
            self.ctx.manager.detach(session)
            old.close(Close.SESSION_TAKEN, "session resumed elsewhere")
        # A remounted tree numbers its elements afresh: the client needs a FULL.
        self._bind(session, resumed=True, full=not in_memory)
        metrics.inc("vango_sessions_resumed_total", kind="local" if in_memory else "adopted")
        if in_memory:
            session.catch_up(hello.last_seq)

    async def _fetch(self, sid: str) -> Session | None:
        """A session this worker does not hold live: from our cold tier or another worker."""
        entry = self.ctx.manager.take(sid)
        blob: bytes | None = entry.blob if isinstance(entry, ColdSession) else None
        try:
            if blob is None:
                blob = await adoption.adopt_remote(self.ctx, sid)
            if blob is None and self.ctx.store is not None:
                blob = self.ctx.store.take(sid)  # left there by a worker that stopped
        except adoption.Moved:
            self._refuse(Close.SESSION_TAKEN, "session resumed elsewhere", "adoption_lost")
            return None
        except adoption.Unanswered:
            self._refuse(Close.SERVER_BUSY, "server busy", "adoption_unanswered")  # the client retries
            return None
        if blob is None:
            self._refuse(Close.SESSION_EXPIRED, "session expired", "unknown_session")
            return None
        try:
            return self.ctx.restore(sid, blob, self.client_ip)
        except persist.BlobRejected as rejected:
            metrics.inc("vango_blobs_rejected_total", reason=rejected.reason)
            self._refuse(Close.SESSION_EXPIRED, "session expired", "blob_" + rejected.reason.replace(" ", "_"))
        except LookupError:
            self._refuse(Close.SESSION_EXPIRED, "session expired", "no_route")
        return None

    def on_pong(self, data: bytes) -> None:
        self.last_seen = time.monotonic()

    def heartbeat(self, now: float, read_timeout: float) -> None:
        """Ping the peer, or drop it when it has been silent past ``read_timeout``.

        One worker-wide timer calls this for every attached socket, instead of
        Tornado's per-connection ping task (a Task per socket costs ~2 KiB).
        """
        if now - self.last_seen > read_timeout:
            self.close(Close.GOING_AWAY, "read timeout")
        elif self.ws_connection is not None and not self.ws_connection.is_closing():
            self.ping()

    def _bind(self, session: Session, *, resumed: bool, full: bool = False) -> None:
        """Attach and send WELCOME; with ``full``, a FULL follows under the next seq.

        WELCOME then announces a seq ahead of the client's, so every client
        (browser or test client) knows to wait for that frame.
        """
        self._end_handshake()
        self.session = session
        self.ctx.manager.attach(session, self)
        if full:
            session.seq += 1
        self.send(protocol.encode_welcome(session.id, session.seq, resumed, self.ctx.slot))
        if full:
            session.send_full()
        self._shed()

    def _shed(self) -> None:
        """Drop what only the handshake needed: an idle attached socket should be small."""
        req = self.request
        req.headers = _NO_HEADERS
        req._cookies = None  # type: ignore[attr-defined]
        req.arguments = req.query_arguments = req.body_arguments = _NO_ARGS
        self._headers = _NO_HEADERS
        self.ui = None  # type: ignore[assignment]
