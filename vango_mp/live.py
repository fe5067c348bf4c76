"""The ``/_vango/ws`` endpoint: handshake, frame validation, session I/O.

A socket is pre-session until its HELLO arrives (bounded in time and in
number, globally and per IP). Every frame is validated by
:mod:`vango_mp.protocol`; a bad one closes this socket with its reason and
touches nothing else. After the handshake the handler is a thin pipe between
the socket and its :class:`~vango_mp.session.Session`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Awaitable
from typing import Any

import tornado.httputil
import tornado.ioloop
import tornado.websocket

from . import auth, errors, interop, metrics, protocol, security, wsout
from .handlers import WorkerHeader
from .protocol import Close, ProtocolError
from .router import App
from .session import Session
from .protocol import html_hash
from .sessions import Handover, Refused, SessionOwner
from .census import HANDSHAKES, Census
from .fdlimit import SocketBudget
from .settings import Settings
from .wsout import OutputWatch, frame, limit_send_buffer, pending_bytes, slim_stream, widen_stream
from .wsread import LeanProtocol13
from .observability import devtools, logs, prom

log = logging.getLogger("vango_mp.live")

# Shared, never mutated after the handshake: what a shed request points to.
_NO_HEADERS = tornado.httputil.HTTPHeaders()
# Handler attributes only Tornado's request path reads (_execute, write/flush: disabled after the upgrade).
_SHED_KEYS = frozenset(("path_args", "path_kwargs", "open_args", "open_kwargs", "_prepared_future",
                        "_write_buffer", "_transforms"))
# What Tornado disables on an upgraded handler, one instance attribute each; an attached socket's class does.
_DISABLED = ("write", "redirect", "set_header", "set_cookie", "set_status", "flush", "finish")
_PARAMS: dict[tuple[Any, ...], tornado.websocket._WebSocketParams] = {}  # by (ping interval, timeout, max size)
# What a finished handshake count stands in with once the session is bound (done, admitted).
_COUNTED: concurrent.futures.Future[bool] = concurrent.futures.Future()
_COUNTED.set_result(True)
# What an attached socket's attributes hold once its handshake is over, the same for every
# socket: _shed drops an instance's copy equal to these class attributes (reads then find the
# class's; a later write puts its own back). Tornado's, then ours: each is set by __init__ or
# ``initialize``, so the class value is never read before that (``_counted``, set late in
# ``open``, is not one of them).
_ATTACHED = {
    "_auto_finish": True, "_finished": True, "_headers_written": True, "_status_code": 101,
    "_reason": "Switching Protocols", "_headers": _NO_HEADERS, "ui": None, "close_code": None,
    "close_reason": None, "_on_close_called": False,
    "_gated": False, "_handshaking": False, "_hello_seen": True, "_timer": None,
    "_socket_counted": True,
}
MAX_CLOSE_REASON = 123  # a close frame's payload is at most 125 bytes, two of them the code


_ATTACHED_REQUESTS: dict[str, tornado.httputil.HTTPServerRequest] = {}


def _attached_request(path: str) -> tornado.httputil.HTTPServerRequest:
    """The request an attached socket keeps (shared, never written to): its path, nothing of its peer's."""
    req = _ATTACHED_REQUESTS.get(path)
    if req is None:
        start = tornado.httputil.RequestStartLine("GET", path, "HTTP/1.1")
        req = tornado.httputil.HTTPServerRequest(start_line=start, headers=tornado.httputil.HTTPHeaders(Host="-"))
        req.remote_ip = "attached"  # the peer's address is the socket's client_ip (logs name it)
        _ATTACHED_REQUESTS[path] = req
    return req


def _attached_default(key: str, value: Any) -> bool:
    """Whether ``value`` is what an attached socket's class holds for ``key`` (see _ATTACHED)."""
    if key not in _ATTACHED:
        return False
    default = _ATTACHED[key]
    return value is default or (type(value) is type(default) and type(value) in (str, int) and value == default)


def close_reason(text: str) -> str:
    """``text`` cut to what a close frame carries (123 bytes of UTF-8), whole characters only."""
    raw = text.encode()
    return text if len(raw) <= MAX_CLOSE_REASON else raw[:MAX_CLOSE_REASON].decode(errors="ignore")


class _StartRefused(Exception):
    """on_session_start raised: the new session is refused (4003)."""


class LiveSocket(WorkerHeader, tornado.websocket.WebSocketHandler):
    """One browser's WebSocket; after HELLO, the connection of one session."""

    session: Session | None
    client_ip: str
    last_seen: float
    _hello_seen: bool
    _gated: bool
    _handshaking: bool
    _timer: object | None
    _counted: asyncio.Future[bool]
    _socket_counted: bool

    # The worker's collaborators: class attributes of the class :meth:`serving` makes, the same
    # for every socket of a route (none keeps its own copy: an idle socket's dict stays small).
    owner: SessionOwner
    handover: Handover
    census: Census
    output: OutputWatch
    app: App
    vango_settings: Settings
    csrf_secret: bytes
    slot: int
    sockets: SocketBudget

    @classmethod
    def serving(cls, owner: SessionOwner, handover: Handover, census: Census, output: OutputWatch, app: App,
                settings: Settings, csrf_secret: bytes, slot: int,
                sockets: SocketBudget | None = None) -> type[LiveSocket]:
        """This handler class bound to one worker's collaborators: the class a route serves."""
        bound = type(cls.__name__, (cls,), {
            "owner": owner, "handover": handover, "census": census, "output": output, "app": app,
            "vango_settings": settings, "csrf_secret": csrf_secret, "slot": slot,
            "sockets": sockets if sockets is not None else SocketBudget(0), "__module__": cls.__module__,
        })
        # What an attached socket becomes (_shed): the HTTP methods Tornado disables on an upgraded
        # handler (one instance attribute each) are disabled by its class instead.
        bound._attached = type(cls.__name__, (bound,), {  # type: ignore[attr-defined]
            **dict.fromkeys(_DISABLED, tornado.websocket._raise_not_supported_for_websockets),
            "__module__": cls.__module__,
        })
        return bound

    def initialize(self) -> None:
        self._socket_counted = False
        self.session = None
        self._hello_seen = False
        self._gated = False
        self._handshaking = True
        self._timer = None

    def get_compression_options(self) -> dict[str, Any] | None:
        # Decline permessage-deflate: a negotiated context costs tens of KiB
        # per socket; our frames are tiny and large ones are lz4'd per frame.
        return None

    def get_websocket_protocol(self) -> tornado.websocket.WebSocketProtocol | None:
        """Tornado's RFC 6455 protocol, reading frames by callback (vango_mp.wsread): no coroutine per idle socket."""
        if self.request.headers.get("Sec-WebSocket-Version") != "13":
            return None
        compression = self.get_compression_options()
        key = (self.ping_interval, self.ping_timeout, self.max_message_size)
        params = _PARAMS.get(key) if compression is None else None  # read-only to Tornado: shared
        if params is None:
            params = tornado.websocket._WebSocketParams(ping_interval=key[0], ping_timeout=key[1],
                                                        max_message_size=key[2], compression_options=compression)
            if compression is None:
                _PARAMS[key] = params
        return LeanProtocol13(self, False, params)

    def check_origin(self, origin: str) -> bool:
        """Always accept the upgrade: vango's own policy decides in :meth:`open` (see ``origin_ok``).

        Tornado's pre-check differs between versions (6.6 skips this method
        for what it deems same-site, 6.4 calls it always), and its refusal is
        an HTTP 403 the client cannot tell from a network error; after the
        upgrade the client gets 4004 and stops.
        """
        return True

    def origin_ok(self) -> bool:
        """Same-origin (plus ``allowed_origins``) unless ``--dev``.

        .. warning:: turning this off allows cross-site WebSocket hijacking.
        """
        s = self.vango_settings
        if s.dev:
            return True
        req = self.request
        return security.origin_allowed(req.headers.get("Origin"), security.request_host(req, s.trusted_proxies),
                                       security.request_scheme(req, s.trusted_proxies), s.allowed_origins)

    # -- connection ------------------------------------------------------------

    def open(self, *args: str, **kwargs: str) -> None:
        # Patch frames are tiny and latency-bound: without this, Nagle holds a
        # second small frame (WELCOME then FULL) for the peer's delayed ACK, 40 ms.
        self.set_nodelay(True)
        self._opened = time.perf_counter()  # vango_handshake_seconds
        if self.ws_connection is not None:
            limit_send_buffer(self.ws_connection.stream)
        self.last_seen = time.monotonic()
        s = self.vango_settings
        self.client_ip = security.client_ip(
            self.request.remote_ip or "", self.request.headers.get("X-Forwarded-For"), s.trusted_proxies
        )
        if not self.origin_ok():
            metrics.inc("vango_refusals_total", reason="origin")
            log.info("refusing a socket from %s: origin %r not allowed", self.client_ip,
                     self.request.headers.get("Origin"))
            self.close(Close.FORBIDDEN_ORIGIN, "origin not allowed")
            return
        if not self.sockets.take():  # one descriptor per socket: past the worker's capacity (vango_mp.fdlimit)
            metrics.inc("vango_refusals_total", reason="fd_limit")
            self.close(Close.SERVER_BUSY, "server busy")
            return
        self._socket_counted = True
        # Counted server-wide until HELLO is done (MaxConcurrentHandshakes, per IP too). Neither
        # open nor HELLO waits for the hub: a refusal closes the socket when it comes, if the
        # handshake is still pending then (the slot is taken at the hub either way).
        self._counted = asyncio.ensure_future(self._count_handshake())
        self._timer = tornado.ioloop.IOLoop.current().call_later(s.handshake_timeout, self._handshake_timeout)

    async def _count_handshake(self) -> bool:
        """Enter this socket in the server-wide handshake count; False (and closed) when refused."""
        refused = await self.census.enter(HANDSHAKES, self.client_ip)
        if refused is not None:
            if self._handshaking:
                metrics.inc("vango_refusals_total", reason="handshakes")
                self.close(Close.RATE_LIMITED, refused)
            return False
        self._gated = True
        if not self._handshaking or self.ws_connection is None or self.ws_connection.is_closing():
            self._end_handshake()  # it is over already (done, or gone) by the time the hub answered
            return False
        return True

    def _handshake_timeout(self) -> None:
        self._timer = None
        if self.session is None:
            metrics.inc("vango_refusals_total", reason="handshake_timeout")
            self.close(Close.HANDSHAKE_TIMEOUT, "handshake timeout")

    def _end_handshake(self) -> None:
        self._handshaking = False
        if self._timer is not None:
            tornado.ioloop.IOLoop.current().remove_timeout(self._timer)  # type: ignore[arg-type]
            self._timer = None
        if self._gated:
            self._gated = False
            self.census.change(HANDSHAKES, self.client_ip, -1)

    def on_close(self) -> None:
        if self._socket_counted:
            self._socket_counted = False
            self.sockets.give()
        self._end_handshake()
        self.output.forget(self)
        session, self.session = self.session, None
        if session is not None and session.conn is self:
            self.owner.detach(session)

    # -- Connection protocol for Session ---------------------------------------

    def send(self, data: bytes) -> None:
        conn = self.ws_connection
        stream = conn.stream if conn is not None else None
        if stream is None or stream.closed() or conn.client_terminated or conn.server_terminated:
            return  # (WebSocketProtocol.is_closing, without reading the stream's state twice)
        sent = wsout.send(stream, frame(data))  # quiet, and no Task or Future per frame
        prom.record_bytes(sent=len(data))
        if self.vango_settings.dev and self.session is not None:
            devtools.note_frame(self.session.id, data)
        pending = 0 if sent else pending_bytes(stream)
        if pending:
            widen_stream(stream)  # a reader falling behind: its write queues become deques again
            self.output.wrote(self, pending)

    def pending_output(self) -> int:
        """Bytes sent to this socket that its peer has not read yet."""
        conn = self.ws_connection
        return pending_bytes(conn.stream) if conn is not None and conn.stream is not None else 0

    def drop_slow(self, reason: str) -> None:
        """The peer does not read: detach its session and free what it left unread at once."""
        conn = self.ws_connection
        self.close(Close.SERVER_BUSY, reason)
        if conn is not None and conn.stream is not None:
            conn.stream.close()  # the close frame would wait behind the unread output

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        session, self.session = self.session, None
        if session is not None and session.conn is self:
            self.owner.detach(session)
        super().close(code, reason)

    # -- frames --------------------------------------------------------------

    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        # Tornado awaits a returned awaitable before reading the next message,
        # so frames stay ordered while a HELLO waits on the bus.
        if self.ws_connection is None or self.ws_connection.is_closing():
            return None  # we refused or closed already: what the peer still sends is moot
        self.last_seen = time.monotonic()
        prom.record_bytes(received=len(message))
        try:
            frame = protocol.decode_client(message, self.vango_settings.max_message_size)
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
        reason = close_reason(err.reason)
        log.info("closing socket from %s: %s", self.client_ip, reason)
        self.close(err.code, reason)

    def _frame(self, session: Session, frame: protocol.ClientFrame) -> None:
        if isinstance(frame, protocol.ClientEvent):
            if self.vango_settings.dev:
                devtools.note_event(session.id, frame.name, frame.hid, frame.payload)
            session.queue_event(frame)
        elif isinstance(frame, protocol.Ack):
            session.acked(frame.seq)
        elif isinstance(frame, protocol.Ping):
            self.send(protocol.encode([protocol.S_PONG, frame.t]))
        elif isinstance(frame, protocol.Resync):
            if self.pending_output():
                metrics.inc("vango_resyncs_coalesced_total")  # what it asks for may be on its way
                return
            if not session.request_resync(frame.last_seq):
                metrics.inc("vango_refusals_total", reason="resync_rate")
                self.close(Close.RATE_LIMITED, "resync rate limit exceeded")
        elif isinstance(frame, protocol.Navigate):
            session.queue_navigate(frame)
        elif isinstance(frame, protocol.Prefetch):
            session.prefetch(frame.url)
        elif isinstance(frame, protocol.HookPush):
            interop.receive_hook(self.app, session, frame)
        elif isinstance(frame, protocol.IslandPush):
            interop.receive_island(self.app, session, frame)
        elif isinstance(frame, protocol.Hello):
            raise ProtocolError("HELLO after handshake")

    async def _hello(self, hello: protocol.Hello) -> None:
        if self._counted.done() and not self._counted.result():
            return  # refused: closed already
        if self.handover.stopping:  # our sessions are being handed over: the client reconnects to another worker
            self._refuse(Refused(Close.GOING_AWAY, "server stopping", "stopping"))
            return
        if not self.vango_settings.dev and not security.verify_csrf(
            self.csrf_secret, hello.csrf, self.get_cookie(security.CSRF_COOKIE)
        ):
            self._refuse(Refused(Close.INVALID_CSRF, "invalid CSRF token", "csrf"))
            return
        request = auth.as_request(self, hello.path, self.client_ip)
        try:
            creds = auth.credentials(self.app, request, self.get_cookie(security.CSRF_COOKIE))
            if hello.session_id is not None:
                await self._resume(hello, request, creds)
            else:
                await self._start(hello, request, creds)
        except auth.NotAuthorized as err:
            log.info("handshake from %s refused: %s", self.client_ip, err)
            self._refuse(Refused(Close.NOT_AUTHORIZED, "not authorized", "auth"))
        except Refused as refused:
            self._refuse(refused)

    def _refuse(self, refused: Refused) -> None:
        metrics.inc("vango_refusals_total", reason=refused.metric)
        self._end_handshake()
        self.close(refused.code, refused.reason)

    async def _start(self, hello: protocol.Hello, request: auth.HandshakeRequest, creds: auth.Credentials) -> None:
        await self.owner.admit(self.client_ip, creds.browser)
        if self.ws_connection is None or self.ws_connection.is_closing():
            self.owner.withdraw(self.client_ip)  # it left while we asked
            return
        def prepare(session: Session) -> None:
            try:
                auth.on_start(self.app, request, session, creds)
            except Exception as err:
                raise _StartRefused() from err

        try:  # the user is set (auth_func, on_session_start) before the page first renders
            session = self.owner.open(hello.path, self.client_ip, csrf_token=creds.token, prepare=prepare)
        except _StartRefused:
            log.exception("on_session_start refused a session")
            self.owner.withdraw(self.client_ip)
            raise Refused(Close.NOT_AUTHORIZED, "not authorized", "auth") from None
        except LookupError:
            self.owner.withdraw(self.client_ip)
            raise Refused(Close.PROTOCOL_ERROR, "no route for path", "no_route") from None
        except Exception as exc:  # the page's live render raised: its session cannot start (vango_mp.errors)
            self.owner.withdraw(self.client_ip)
            errors.start_failed(self.app, hello.path, exc)
            raise Refused(Close.APP_ERROR, "the page could not render", "app_error") from None
        self._bind(session, catch_up=None, full=hello.ssr_hash != html_hash(session.root.html()))

    async def _resume(self, hello: protocol.Hello, request: auth.HandshakeRequest, creds: auth.Credentials) -> None:
        sid = hello.session_id or ""
        started = time.perf_counter()
        session, local, exact = await self.handover.resume(sid, self.client_ip, creds)
        try:
            auth.on_resume(self.app, request, session, creds, in_memory=local)
        except auth.NotAuthorized as refused:
            log.info("resume of %s refused: %s", security.redact(sid), refused)
            raise Refused(Close.NOT_AUTHORIZED, "not authorized", "auth_resume") from None
        if self.ws_connection is None or self.ws_connection.is_closing():
            return  # the client left while we fetched; the session stays detached here
        if self.handover.stopping:
            # We began handing sessions over while this one was on its way: it
            # goes with the next piece; the client reconnects and finds it there.
            raise Refused(Close.GOING_AWAY, "server stopping", "stopping")
        if local:
            metrics.inc("vango_sessions_resumed_total", kind="local")
            prom.record_resume("same_worker", time.perf_counter() - started)
        self._bind(session, catch_up=hello.last_seq, full=not exact)

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
            slim_stream(self.ws_connection.stream)  # if its output was still pending when it attached
            self.ping()

    def _bind(self, session: Session, *, catch_up: int | None, full: bool) -> None:
        """Attach and send WELCOME; then a FULL under the next seq (``full``) or the missed patches.

        With a FULL, WELCOME announces a seq ahead of the client's, so every
        client (browser or test client) knows to wait for that frame.
        """
        self._end_handshake()
        logs.bind_session(session.id)  # this socket's later lines name its session (short id)
        if not self.owner.attach(session, self):
            raise Refused(Close.SESSION_EXPIRED, "session expired", "attach_refused")
        self.session = session
        if full:
            session.seq += 1
        self.send(protocol.encode_welcome(session.id, session.seq, catch_up is not None, self.slot))
        prom.record_handshake("new" if catch_up is None else "resume", time.perf_counter() - self._opened)
        if full:
            session.send_full()
        elif catch_up is not None:
            session.catch_up(catch_up)
        self._shed()

    def _shed(self) -> None:
        """Drop what only the handshake needed: an idle attached socket should be small."""
        req = self.request
        # The upgrade request (its headers, cookies, strings) and with it the HTTP/1 connection
        # objects (the original headers, the finished serving task) are done with: only a log line
        # of a handler error still reads it (method, path). One stand-in per path serves them all.
        req.connection = req.server_connection = None  # type: ignore[assignment]
        self.request = _attached_request(req.path)
        self._headers = _NO_HEADERS
        self.ui = None  # type: ignore[assignment]
        if self.ws_connection is not None and self.ws_connection.stream is not None:
            slim_stream(self.ws_connection.stream)
        counted = self._counted  # done, its Task keeps its coroutine and context (~0.5 KiB)
        if counted.done() and not counted.cancelled() and counted.result():
            self._counted = _COUNTED  # type: ignore[assignment]
        # A handler has ~45 attributes, past what a shared-key dict holds: its dict is a full
        # table (1,584 B). Rebuilt without what only the request path read, without values equal
        # to _ATTACHED's and without the disabled methods, it is 272 B.
        own = vars(self)
        attached = getattr(type(self), "_attached", None)
        disabled = _DISABLED if attached is not None and not isinstance(self, attached) else ()
        self.__dict__ = {  # built in one go: a dict does not shrink when keys are deleted
            k: v for k, v in own.items() if k not in _SHED_KEYS and k not in disabled and not _attached_default(k, v)
        }
        if disabled:
            self.__class__ = attached  # type: ignore[assignment]


for _key, _value in _ATTACHED.items():  # the class-level values behind what _shed drops
    setattr(LiveSocket, _key, _value)


