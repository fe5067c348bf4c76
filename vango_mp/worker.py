"""One worker process: the Tornado application serving pages, the live socket,
the client script, health and metrics.

Availability: Unix. :func:`serve` must run in a process that has no IOLoop
yet (after the supervisor's fork); it creates its own.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import logging
import os
import secrets
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import tornado.ioloop
import tornado.web

from . import adoption, checkpoint, metrics, persist, reactive, security
from .adoption import Tombstones
from .httpserver import DrainingHTTPServer
from .store import open_store
from .bus import BusClient
from .cluster import cluster_metrics, join
from .live import HandshakeGate, LiveSocket, html_hash
from .pressure import WorkerMemory
from .protocol import Close
from .router import App
from .session import Session
from .sessions import SessionManager
from .settings import Settings
from .vdom.component import component
from .vdom.mount import Root

log = logging.getLogger("vango_mp.worker")

_JS = (Path(__file__).parent / "static" / "vango.js").read_bytes()
_JS_VERSION = hashlib.blake2b(_JS, digest_size=6).hexdigest()
_PAGE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width,initial-scale=1"><title>{title}</title></head>'
    '<body><div id="vango-root" data-hid="0">{body}</div>'
    "<script>window.__vango={boot}</script>"
    '<script src="/_vango/vango.js?v={version}" defer></script></body></html>'
)


class WorkerContext:
    """What every handler of this worker shares: settings, app, sessions, secret."""

    def __init__(self, settings: Settings, slot: int, app: App, secret: bytes) -> None:
        self.settings = settings
        self.slot = slot
        self.app = app
        reactive.set_debug(settings.debug)  # signal writes during render raise
        self.secrets = persistence_secrets(settings, secret)
        # CSRF tokens must outlive a restart exactly when sessions do.
        self.secret = hashlib.sha256(b"vango-csrf:" + self.secrets[0]).digest() if settings.persistence_secret else secret
        self.manager = SessionManager(settings, sealer=self.seal)
        self.tombstones = Tombstones(max(settings.resume_window, 1.0))
        self.store = open_store(settings.state_dir, settings.resume_window)
        self.gate = HandshakeGate(settings.max_concurrent_handshakes, settings.max_concurrent_handshakes_per_ip)
        self.memory = WorkerMemory(self.manager, settings)
        if self.store is not None:
            self.manager.keeper = lambda entries: checkpoint.save(self, entries)
            self.manager.on_detach = lambda session: checkpoint.on_detach(self, session)
            self.manager.on_expire = lambda ids: checkpoint.on_expire(self, ids)
        self.bus: BusClient | None = None
        self.cluster_stopping = False  # the whole server stops: no peer will take our sessions
        self.stopping = False  # this worker stops: new sessions and resumes go elsewhere

    def bus_handlers(self) -> dict[str, Any]:
        """Bus request/broadcast handlers this worker answers, by kind."""
        return {
            "session.adopt": lambda body, peer: adoption.handle_adopt(self, body, peer),
            "session.deposit": lambda body, peer: adoption.handle_deposit(self, body, peer),
            "cluster_stopping": lambda body, peer: setattr(self, "cluster_stopping", True),
            "memory.pressure": self.memory.on_notice,
        }

    @property
    def pressure(self) -> str:
        """This worker's memory pressure level (none, low, high, critical)."""
        return str(self.memory.level)

    def mount(self, path: str, session: Session | None, on_dirty: Any, values: dict[str, Any] | None = None) -> Root:
        """Mount the page for ``path`` (LookupError when no route matches), seeding signal values."""
        match = self.app.match(path)
        if match is None:
            raise LookupError(path)
        context = {"worker": self.slot, "session": session, "path": path, "params": match.params}
        node = component(match.page)(**match.params)
        root = Root(node, context=context, on_dirty=on_dirty)
        if values:
            root.restore_signal_values(values)
        root.render_initial()
        return root

    def open_session(self, path: str, ip: str) -> Session:
        """Admit, mount and start a new session (Refused / LookupError otherwise)."""
        self.memory.before_admit()
        self.manager.admit(ip)
        session = Session(security.new_session_id(), None, settings=self.settings, ip=ip, path=path)  # type: ignore[arg-type]
        session.root = self.mount(path, session, session.notify_dirty)
        self.manager.add(session)
        session.start()
        return session

    def seal(self, session: Session) -> bytes:
        """The session's sealed blob (see :mod:`vango_mp.persist`)."""
        return persist.seal(session.snapshot(schema=self.app.schema, debug=self.settings.debug), self.secrets[0])

    def restore(self, session_id: str, blob: bytes, ip: str) -> Session:
        """Unseal a blob (BlobRejected / LookupError otherwise) and remount its session here."""
        self.memory.before_admit()  # a remount grows this worker like a new session
        payload = persist.unseal(
            blob, self.secrets, session_id=session_id, schema=self.app.schema, max_age=self.settings.max_blob_age
        )
        session = Session(session_id, None, settings=self.settings, ip=ip, path=str(payload["path"]))  # type: ignore[arg-type]
        session.root = self.mount(session.path, session, session.notify_dirty, payload.get("signals") or {})
        session.seq = int(payload.get("seq", 0))
        session.data = dict(payload.get("data") or {})
        session.authenticated = bool(payload.get("authenticated"))
        session.created = time.monotonic() - float(payload.get("age", 0))
        session.saved_seq = -1  # any stored copy was taken, or is older: checkpoint it afresh
        self.tombstones.discard(session_id)
        self.manager.add(session)
        session.start()
        return session

    def health(self) -> dict[str, Any]:
        memory = self.memory.health()
        return {
            "status": "ok",
            "worker": self.slot,
            "pid": os.getpid(),
            "sessions": {
                "attached": self.manager.attached_count,
                "detached": self.manager.detached_count,
                "cold": self.manager.cold_count,
            },
            "rss_bytes": memory["rss"],
            "pressure": memory["level"],
            "memory": memory,
            "evictions": dict(self.manager.evictions),
            "refusals": metrics.by_label("vango_refusals_total", "reason"),
        }


class Base(tornado.web.RequestHandler):
    """Every HTTP response names its worker in ``X-Vango-Worker``."""

    ctx: WorkerContext

    def initialize(self, ctx: WorkerContext) -> None:
        self.ctx = ctx

    def set_default_headers(self) -> None:
        # Runs before initialize(), hence the application setting.
        self.set_header("X-Vango-Worker", self.application.settings["vango_worker"])


class PageHandler(Base):
    """Stateless SSR of a route plus the client bootstrap; the session starts at the WebSocket."""

    def get(self, path: str) -> None:
        path = "/" + path
        full = self.request.uri or path
        try:
            root = self.ctx.mount(path, None, lambda: None)
        except LookupError:
            raise tornado.web.HTTPError(404) from None
        try:
            body = root.html()
        finally:
            root.dispose()
        token = self.get_cookie(security.CSRF_COOKIE)
        if not token or not security.verify_csrf(self.ctx.secret, token, token):
            token = security.mint_csrf(self.ctx.secret)
            flags = security.cookie_flags(self.request.protocol == "https", self.ctx.settings.secure_cookies)
            self.set_cookie(security.CSRF_COOKIE, token, **flags)  # type: ignore[arg-type]
        boot = {"csrf": token, "path": full, "ws": "/_vango/ws", "worker": self.ctx.slot, "h": html_hash(body)}
        if not self.ctx.app.reconnect_toast:
            boot["toast"] = False
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(
            _PAGE.format(
                title=tornado.escape.xhtml_escape(self.ctx.app.title),
                body=body,
                boot=json.dumps(boot).replace("</", "<\\/"),
                version=_JS_VERSION,
            )
        )


class ScriptHandler(Base):
    """The thin client. The page links it with ``?v=<hash>``, so that URL is immutable."""

    def get(self) -> None:
        self.set_header("Content-Type", "application/javascript; charset=utf-8")
        if self.get_argument("v", "") == _JS_VERSION:
            self.set_header("Cache-Control", "public, max-age=31536000, immutable")
        else:
            self.set_header("Cache-Control", "no-cache")
        self.set_header("ETag", f'"{_JS_VERSION}"')
        if self.check_etag_header():
            self.set_status(304)
            return
        self.finish(_JS)

    def compute_etag(self) -> str | None:
        return f'"{_JS_VERSION}"'


class HealthHandler(Base):
    def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.finish(self.ctx.health())


class MetricsHandler(Base):
    """Prometheus text for every worker (peers' figures from their last heartbeat)."""

    async def get(self) -> None:
        rows = await cluster_metrics(self.ctx)
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.finish(metrics.render(rows))


def make_app(ctx: WorkerContext) -> tornado.web.Application:
    """The Tornado application of one worker."""
    args = {"ctx": ctx}
    s = ctx.settings
    return tornado.web.Application(
        [
            (r"/_vango/ws", LiveSocket, args),
            (r"/_vango/vango\.js", ScriptHandler, args),
            (r"/_vango/health", HealthHandler, args),
            (r"/_vango/metrics", MetricsHandler, args),
            (r"/(.*)", PageHandler, args),
        ],
        # Tornado closes with 1009 past this many bytes (MaxMessageSize).
        websocket_max_message_size=s.max_message_size,
        # No per-connection ping task: _heartbeat pings every socket from one timer.
        xheaders=False,
        vango_worker=str(ctx.slot),
    )



def serve(
    settings: Settings, slot: int, sock: socket.socket, *, bus_path: str | None = None,
    secret: bytes, app: App, on_ready: Any = None,
) -> None:
    """Run one worker on an already-listening socket until it is told to stop."""
    asyncio.run(_serve(settings, slot, sock, bus_path=bus_path, secret=secret, app=app, on_ready=on_ready))


async def _serve(
    settings: Settings, slot: int, sock: socket.socket, *, bus_path: str | None,
    secret: bytes, app: App, on_ready: Any,
) -> None:
    ctx = WorkerContext(settings, slot, app, secret)
    if settings.dev:
        log.warning("DEV MODE: origin check, CSRF and secure cookies are OFF — never use in production")
    stopped = asyncio.get_running_loop().create_future()
    if bus_path is not None:
        # Join before serving: the first page must already see the globals snapshot.
        ctx.bus = await join(ctx, bus_path)
        ctx.bus.on_lost = lambda: stopped.done() or stopped.set_result(None)
    server = DrainingHTTPServer(make_app(ctx), idle_connection_timeout=60, max_body_size=1 << 20)
    server.add_sockets([sock])
    sweeper = tornado.ioloop.PeriodicCallback(lambda: _maintain(ctx), _sweep_period(settings) * 1000)
    sweeper.start()
    pinger = tornado.ioloop.PeriodicCallback(lambda: _heartbeat(ctx), settings.heartbeat_interval * 1000)
    pinger.start()
    persister = None
    if ctx.store is not None and settings.persist_interval > 0:
        persister = tornado.ioloop.PeriodicCallback(checkpoint.Checkpointer(ctx).tick, settings.persist_interval * 1000)
        persister.start()
    _install_signals(ctx, server, stopped)
    _tune_gc()
    ctx.memory.monitor.start()
    if ctx.bus is not None:
        ctx.bus.ready()
    if on_ready is not None:
        await _maybe_await(on_ready(ctx))
    await stopped
    ctx.memory.monitor.stop()
    sweeper.stop()
    pinger.stop()
    if persister is not None:
        persister.stop()
    if ctx.bus is not None:
        ctx.bus.close()


HANDOVER_PASSES = 3  # hand-over rounds on a graceful stop (sessions adopted meanwhile go in the next)
DRAIN_LIMIT = 5.0  # seconds a stopping worker waits for its HTTP connections to finish


def _sweep_period(settings: Settings) -> float:
    """Seconds between housekeeping passes: often enough for the shortest window configured."""
    return max(0.05, min(settings.cleanup_interval, settings.resume_window / 4 or 1.0, settings.cold_after / 2 or 1.0))


def _tune_gc() -> None:
    """Collect generation 0 less often.

    Every session holds a few thousand small objects; with the default
    threshold (700) the collector re-walks them so often that it took ~25 % of
    a worker's CPU at 500 sessions (bench/load.py: 175 -> 137 µs per click).
    """
    gc.set_threshold(20_000, 10, 10)


def _heartbeat(ctx: WorkerContext) -> None:
    """Ping every attached socket; drop those silent past ReadTimeout."""
    now = time.monotonic()
    for session in ctx.manager:
        conn = session.conn
        if isinstance(conn, LiveSocket):
            conn.heartbeat(now, ctx.settings.read_timeout)


def _maintain(ctx: WorkerContext) -> None:
    """Periodic housekeeping: expire past ResumeWindow, move idle detached sessions to the cold tier."""
    ctx.manager.sweep_expired()
    ctx.manager.chill()
    if ctx.store is not None:
        ctx.store.purge()


async def _maybe_await(value: Any) -> None:
    if asyncio.iscoroutine(value):
        await value


def _install_signals(ctx: WorkerContext, server: DrainingHTTPServer, stopped: asyncio.Future[None]) -> None:
    loop = asyncio.get_running_loop()

    def finish() -> None:
        if not stopped.done():
            stopped.set_result(None)

    def graceful() -> None:
        ctx.memory.monitor.pause()  # no evictions while the sessions are handed over
        server.stop()
        loop.create_task(_stop(ctx, server, finish))

    loop.add_signal_handler(signal.SIGTERM, graceful)
    loop.add_signal_handler(signal.SIGINT, graceful)
    loop.add_signal_handler(signal.SIGQUIT, finish)


async def _stop(ctx: WorkerContext, server: DrainingHTTPServer, finish: Any) -> None:
    """Graceful stop: stop accepting, hand sessions to a peer, tell clients to reconnect (1001), drain HTTP."""
    ctx.stopping = True
    # Connections still queued on the slot socket wait there for our successor
    # (the supervisor and it hold the same socket), so stop taking them now.
    server.stop()
    deadline = time.monotonic() + ctx.settings.graceful_timeout / 2
    # A resume that was fetching its session from a peer when we stopped
    # lands here after the first hand-over: it goes in the next pass.
    for _ in range(HANDOVER_PASSES):
        for session in ctx.manager:
            if session.conn is not None:
                conn = session.conn
                ctx.manager.detach(session)
                conn.close(Close.GOING_AWAY, "server stopping")
        if not len(ctx.manager) or time.monotonic() >= deadline:
            break
        try:
            await asyncio.wait_for(adoption.deposit_all(ctx), deadline - time.monotonic())
        except asyncio.TimeoutError:
            log.warning("graceful stop: session hand-over timed out")
    ctx.manager.close_all(Close.GOING_AWAY, "server stopping")
    await server.drain(min(DRAIN_LIMIT, ctx.settings.graceful_timeout / 2))
    try:
        await asyncio.wait_for(server.close_all_connections(), ctx.settings.graceful_timeout / 2)
    except asyncio.TimeoutError:
        log.warning("graceful timeout: dropping remaining connections")
    finish()


def persistence_secrets(settings: Settings, fallback: bytes) -> list[bytes]:
    """Current secret first, then the previous one (rotation)."""
    current = bytes.fromhex(settings.persistence_secret) if settings.persistence_secret else fallback
    previous = bytes.fromhex(settings.persistence_secret_previous) if settings.persistence_secret_previous else b""
    return [current, previous] if previous else [current]


def listen(bind: str) -> socket.socket:
    """A SO_REUSEPORT listening socket for ``HOST:PORT`` (port 0 picks one)."""
    host, _, port = bind.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Every slot binds its own socket to the same address; the kernel hashes
    # connections over them.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, int(port)))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def load_app(spec: str) -> App:
    """Import ``module:attr``."""
    import importlib

    module_name, _, attr = spec.partition(":")
    obj = getattr(importlib.import_module(module_name), attr or "app")
    if not isinstance(obj, App):
        raise TypeError(f"{spec} is a {type(obj).__name__}, not a vango_mp.router.App")
    return obj


def main(argv: list[str] | None = None) -> None:
    """``python -m vango_mp.worker``: one worker, no supervisor (development)."""
    parser = argparse.ArgumentParser(prog="python -m vango_mp.worker")
    parser.add_argument("--bind", default="127.0.0.1:8080")
    parser.add_argument("--app", default="vango_mp.demo:app")
    parser.add_argument("--dev", action="store_true")
    parser.add_argument("--slot", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = Settings(bind=args.bind, app=args.app, dev=args.dev, workers=1)
    sock = listen(args.bind)
    print(f"vango-mp worker {args.slot} listening on {sock.getsockname()[0]}:{sock.getsockname()[1]}", file=sys.stderr, flush=True)
    serve(settings, args.slot, sock, secret=secrets.token_bytes(32), app=load_app(args.app))


if __name__ == "__main__":
    main()
