"""One worker process: build its parts, serve until told to stop, stop gracefully.

Availability: Unix. :func:`serve` must run in a process that has no IOLoop
yet (after the supervisor's fork); it creates its own. The parts, each with
one job: the session owner and its hand-over arm (:mod:`vango_mp.sessions`),
the memory response (:mod:`vango_mp.pressure`), the HTTP handlers
(:mod:`vango_mp.handlers`) and the live socket (:mod:`vango_mp.live`), the
bus connection (:mod:`vango_mp.cluster`).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

import tornado.ioloop
import tornado.web

from . import assets, auth, cluster, fdlimit, navigation, reactive
from .observability import devtools, exposition, logs
from .observability.status import StatusService
from . import login
from .authlife import AuthLife
from .uploadhandler import UploadHandler, upload_directory
from .uploads import Registry
from .bus import BusClient
from .headers import HeaderPolicy
from .security import HostPolicy
from .handlers import AppHandler, AssetHandler, CsrfHandler, HealthHandler, MetricsHandler, ScriptHandler
from .httpserver import DrainingHTTPServer
from .census import Census
from .vdom.component import check_restored_types
from .live import LiveSocket
from .wsout import OutputWatch
from .pressure import WorkerMemory
from .router import App
from .session import Session
from .sessions import Checkpoints, Handover, Sealer, SessionOwner
from .settings import Settings
from .stores import open_store

log = logging.getLogger("vango_mp.worker")

DRAIN_LIMIT = 5.0  # seconds a stopping worker waits for its HTTP connections to finish
TORNADO_FRAME_SLACK = 4  # Tornado buffers frames up to this many times max_message_size before we see them


class Worker:
    """The parts of one worker process, wired together (the composition root)."""

    def __init__(self, settings: Settings, slot: int, app: App, secret: bytes) -> None:
        self.settings, self.slot, self.app = settings, slot, app
        reactive.set_debug(settings.debug)  # signal writes during render raise
        reactive.set_effect_budget(settings.max_effect_runs_per_tick)  # storm budget (vango_mp.tasks)
        keys = persistence_secrets(settings, secret)
        # CSRF tokens must outlive a restart exactly when sessions do.
        self.csrf_secret = hashlib.sha256(b"vango-csrf:" + keys[0]).digest() if settings.persistence_secret else secret

        def mount(path: str, session: Session, values: dict[str, Any] | None, render: bool = True) -> Any:
            return navigation.mount(app, path, worker=slot, session=session, on_dirty=session.notify_dirty,
                                    values=values, render=render,
                                    allowed_redirect_hosts=settings.allowed_redirect_hosts)

        # --dev: sessions resume under edited code (--reload), keeping the values whose types still fit.
        check_restored_types(settings.dev)
        self.sealer = Sealer(keys, schema=app.routes_schema() if settings.dev else app.schema, debug=settings.debug, max_age=settings.max_blob_age,
                             mount=mount)
        self.store = open_store(settings, keys[0])
        self.checkpoints = Checkpoints(self.store, self.sealer, stopping=lambda: self.handover.stopping) \
            if self.store is not None else None
        self.census = Census(settings)
        self.owner = SessionOwner(settings, self.sealer, keeper=self.checkpoints, census=self.census,
                                  before_admit=lambda: self.memory.before_admit())
        self.memory = WorkerMemory(self.owner, settings)
        self.handover = Handover(self.owner, settings, slot=slot, store=self.store,
                                 vet=lambda binding, creds, in_memory: auth.vet(app, binding, creds, in_memory=in_memory))
        self.owner.make_room_elsewhere = self.handover.make_room
        if self.store is not None:
            self.store.on_stale = lambda ids: cluster.close_stale(self.owner, ids)
        self.output = OutputWatch(write_timeout=settings.write_timeout, max_pending=settings.max_pending_output_bytes)
        self.bus: BusClient | None = None
        self.auth = AuthLife(self.owner, app.auth_check).install()  # revalidation, logout on every worker
        login.install_secret(self.csrf_secret)  # login cookies every worker of the cluster reads
        self.uploads = Registry(self.owner, slot)  # uploads into this worker's sessions
        self.upload_dir = ""  # created with the application (after the fork)
        exposition.install(self.health)  # gauges in /_vango/metrics, GC pauses timed
        logs.set_worker(slot)
        self.status = StatusService(self)  # /_vango/status (when enabled) and the worker's 10-minute history
        self.sockets = fdlimit.SocketBudget(0)  # unlimited until _serve plans it (fdlimit.plan)

    def health(self) -> dict[str, Any]:
        return {**cluster.health(self.slot, self.owner, self.memory, self.store), "sockets": self.sockets.report()}

    def bus_handlers(self) -> dict[str, Any]:
        """Bus request/broadcast handlers this worker answers, by kind."""
        return {**self.handover.handlers(), **self.auth.handlers(), **self.uploads.handlers(), "memory.pressure": self.memory.on_notice,
                "metrics.samples": exposition.answer_samples, **self.status.handlers(), **devtools.handlers(self)}

    async def join(self, bus_path: str) -> BusClient:
        self.bus = await cluster.join(bus_path, self.slot, self.settings, report=self.health,
                                      handlers=self.bus_handlers())
        self.handover.bus = self.census.hub = self.bus
        self.auth.transport = self.bus  # logouts reach the other workers (a Redis transport: other machines)
        await cluster.learn_machine(self.bus, self.store)
        return self.bus

    async def metrics_text(self) -> bytes:
        machine = self.store.machine if self.store is not None else ""  # set with a store shared by machines
        return await exposition.cluster_exposition(self.slot, self.bus, machine)

    def application(self) -> tornado.web.Application:
        """The Tornado application of this worker."""
        s = self.settings
        assets.activate(self.app.assets)  # asset() in this worker's components: this app's static_dir
        page = {"app": self.app, "slot": self.slot, "settings": s, "csrf_secret": self.csrf_secret}
        live = {**page, "owner": self.owner, "handover": self.handover, "census": self.census, "output": self.output,
                "sockets": self.sockets}
        return tornado.web.Application(
            [
                (r"/_vango/ws", LiveSocket.serving(**live)),
                (r"/_vango/vango\.js", ScriptHandler),
                (r"/_vango/csrf", CsrfHandler),
                (r"/_vango/health", HealthHandler, {"health": self.health}),
                (r"/_vango/metrics", MetricsHandler, {"exposition": self.metrics_text}),
                (r"/_vango/assets/(.*)", AssetHandler, {"manifest": self.app.assets}),
                (r"/_vango/upload", UploadHandler, self.upload_route()),
                *self.status.routes(page, live),
                *devtools.routes(self),
                (r"/(.*)", AppHandler, page),
            ],
            # Tornado aborts (the peer sees 1006, not 1009) past its limit: ours is checked
            # per frame (protocol.decode_client -> 1009); Tornado's only caps a hostile frame.
            websocket_max_message_size=TORNADO_FRAME_SLACK * s.max_message_size,
            xheaders=False,
            vango_worker=str(self.slot),
            log_function=logs.access_logger(s.access_log),  # one line per request only with access_log
            vango_headers=HeaderPolicy(self.app.csp),
            vango_settings=s,
            vango_csrf_secret=self.csrf_secret,
            # gzip for browsers that take it (pages, JSON); assets and vango.js come pre-gzipped.
            compress_response=True,
            vango_hosts=HostPolicy(s.allowed_hosts, s.canonical_host),
        )

    # -- periodic work ---------------------------------------------------------

    def heartbeat(self) -> None:
        """Ping every attached socket; drop those silent (no frame, no pong) past ReadTimeout or IdleTimeout.

        One timer for all, instead of Tornado's per-connection ping task.
        """
        now = time.monotonic()
        s = self.settings
        silent = min(s.read_timeout, s.idle_timeout) if s.idle_timeout > 0 else s.read_timeout
        for session in self.owner:
            conn = session.conn
            if isinstance(conn, LiveSocket):
                conn.heartbeat(now, silent)

    def upload_route(self) -> dict[str, Any]:
        """What ``/_vango/upload`` needs (vango_mp.uploadhandler); its temporary directory is made here."""
        if not self.upload_dir:
            self.upload_dir = upload_directory(self.slot)
        return {"registry": self.uploads, "settings": self.settings, "csrf_secret": self.csrf_secret,
                "directory": self.upload_dir, "bus": lambda: self.bus}

    def maintain(self) -> None:
        """Expire past ResumeWindow, move idle detached sessions to the cold tier, purge the store."""
        self.owner.sweep_expired()
        self.owner.chill()
        self.uploads.sweep()
        if self.store is not None:
            self.store.purge()

    def timers(self) -> list[tornado.ioloop.PeriodicCallback]:
        s = self.settings
        sweep = max(0.05, min(s.cleanup_interval, s.resume_window / 4 or 1.0, s.cold_after / 2 or 1.0))
        out = [tornado.ioloop.PeriodicCallback(self.maintain, sweep * 1000),
               tornado.ioloop.PeriodicCallback(self.heartbeat, s.heartbeat_interval * 1000),
               tornado.ioloop.PeriodicCallback(self.output.tick, min(1.0, s.write_timeout / 4) * 1000),
               *self.status.timers()]
        if self.auth.tick_interval:
            out.append(tornado.ioloop.PeriodicCallback(self.auth.tick, self.auth.tick_interval * 1000))
        if self.checkpoints is not None and s.persist_interval > 0:
            checkpoints = self.checkpoints
            out.append(tornado.ioloop.PeriodicCallback(lambda: checkpoints.tick(lambda: self.owner),
                                                       s.persist_interval * 1000))
        return out

    # -- stopping --------------------------------------------------------------

    async def stop(self, server: DrainingHTTPServer) -> None:
        """Graceful stop: stop accepting, hand sessions over (1001 to their sockets), drain HTTP."""
        # Connections still queued on the slot socket wait there for our successor
        # (the supervisor and it hold the same socket), so stop taking them now.
        server.stop()
        budget = self.settings.graceful_timeout / 2
        await self.handover.stop(time.monotonic() + budget)
        # --dev: a browser's idle keep-alive connections would hold every stop (and
        # every --reload) for the whole drain; nobody else's request is at stake.
        if not self.settings.dev:
            await server.drain(min(DRAIN_LIMIT, budget))
        try:
            await asyncio.wait_for(server.close_all_connections(), budget)
        except asyncio.TimeoutError:
            log.warning("graceful timeout: dropping remaining connections")


def persistence_secrets(settings: Settings, fallback: bytes) -> list[bytes]:
    """Current secret first, then the previous one (rotation)."""
    current = bytes.fromhex(settings.persistence_secret) if settings.persistence_secret else fallback
    previous = bytes.fromhex(settings.persistence_secret_previous) if settings.persistence_secret_previous else b""
    return [current, previous] if previous else [current]


def serve(
    settings: Settings, slot: int, sock: socket.socket, *, bus_path: str | None = None,
    secret: bytes, app: App,
) -> None:
    """Run one worker on an already-listening socket until it is told to stop (on uvloop with ``uvloop = true``)."""
    with asyncio.Runner(loop_factory=event_loop_factory(settings.uvloop)) as runner:
        runner.run(_serve(settings, slot, sock, bus_path=bus_path, secret=secret, app=app))


def event_loop_factory(use_uvloop: bool) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when asked for and installed (``pip install 'vango-mp[uvloop]'``), else asyncio's (None).

    Off by default: bench/baseline.py measures both on the same load (see bench/README.md).
    """
    if not use_uvloop:
        return None
    try:
        import uvloop
    except ImportError:
        log.warning("uvloop = true but uvloop is not installed (pip install 'vango-mp[uvloop]'): using asyncio")
        return None
    log.info("event loop: uvloop %s", uvloop.__version__)
    return uvloop.new_event_loop


async def _serve(
    settings: Settings, slot: int, sock: socket.socket, *, bus_path: str | None,
    secret: bytes, app: App,
) -> None:
    worker = Worker(settings, slot, app, secret)
    if settings.dev:
        log.warning("DEV MODE: origin check, CSRF and secure cookies are OFF — never use in production")
    stopped = asyncio.get_running_loop().create_future()
    if bus_path is not None:
        # Join before serving: the first page must already see the globals snapshot.
        bus = await worker.join(bus_path)
        bus.on_lost = lambda: stopped.done() or stopped.set_result(None)
    # After the store and the bus are open: what they hold is counted, the rest is for sockets.
    worker.sockets = fdlimit.plan(settings.fd_reserve)
    server = DrainingHTTPServer(worker.application(), idle_connection_timeout=60, max_body_size=1 << 20)
    server.add_sockets([sock])
    timers = worker.timers()
    for timer in timers:
        timer.start()
    _install_signals(worker, server, stopped)
    _tune_gc()
    worker.memory.monitor.start()
    if worker.bus is not None:
        worker.bus.ready()
    await stopped
    if worker.store is not None:
        await worker.store.drain(DRAIN_LIMIT)  # a shared store writes behind: the last checkpoints first
    worker.memory.monitor.stop()
    for timer in timers:
        timer.stop()
    if worker.bus is not None:
        worker.bus.close()


def _tune_gc() -> None:
    """Collect generation 0 less often.

    Every session holds a few thousand small objects; with the default
    threshold (700) the collector re-walks them so often that it took ~25 % of
    a worker's CPU at 500 sessions (bench/load.py: 175 -> 137 µs per click).
    """
    gc.set_threshold(20_000, 10, 10)


def _install_signals(worker: Worker, server: DrainingHTTPServer, stopped: asyncio.Future[None]) -> None:
    loop = asyncio.get_running_loop()

    def finish() -> None:
        if not stopped.done():
            stopped.set_result(None)

    def graceful() -> None:
        if worker.handover.stopping:
            return
        worker.memory.monitor.pause()  # no evictions while the sessions are handed over
        server.stop()
        task = loop.create_task(worker.stop(server))
        task.add_done_callback(lambda _: finish())

    loop.add_signal_handler(signal.SIGTERM, graceful)
    loop.add_signal_handler(signal.SIGINT, graceful)
    loop.add_signal_handler(signal.SIGQUIT, finish)
