"""``/_vango/status``: the cluster at a glance, served live by vango-mp over its own protocol.

Off unless enabled (``status_page = true``, or ``--dev``). When on, only a
loopback client (not relayed by an unknown proxy) or one holding
``status_token`` may see it: as ``Authorization: Bearer <token>``, or once as
``?token=<token>``, which sets an HttpOnly cookie scoped to ``/_vango/status``
and redirects to the bare URL (the token leaves the address bar and history).
Everyone else gets 404 when it is off and 403 when they are not allowed;
the WebSocket upgrade of the page is checked the same way.

The page is its own small app (:mod:`.status_page`) with its own sessions
(:class:`~vango_mp.sessions.SessionOwner`, census and hand-over arm, no store),
so the operator's tab never counts against the app's limits or shows up in
the figures it reads. While at least one status session lives here, the feed
asks the hub for the worker list and every worker for its
:func:`~.report.worker_report` once a second (``status.report`` on the bus),
and sets :data:`.status_page.SNAPSHOT`: the pages re-render and get patches.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tornado.ioloop
import tornado.web

from .. import navigation, security
from ..bus import HUB, BusError
from ..census import Census
from ..handlers import AppHandler, WorkerHeader, send_asset
from ..live import LiveSocket
from ..reactive import batch
from ..sessions import Handover, Sealer, SessionOwner
from .. import assets
from .report import History, worker_report
from .status_page import SNAPSHOT, status_app

if TYPE_CHECKING:
    from ..worker import Worker

SHOWN = False  # --dev: the demo's home page links the status page
COOKIE = "vango_status"
PATH = "/_vango/status"
REFRESH = 1.0  # seconds between snapshots while someone watches
_CSS = assets.load((Path(__file__).parent.parent / "static" / "status.css").read_bytes(), "status.css", "text/css")


class StatusGate:
    """Mixed into the page, socket and stylesheet handlers: 404 when off, 403 when not allowed."""

    request: Any
    application: tornado.web.Application
    host_checked = False  # like health and metrics: operators reach it by address

    def prepare(self) -> None:
        s = self.application.settings["vango_settings"]
        if not (s.status_page or s.dev):
            raise tornado.web.HTTPError(404)
        if not allowed(self.request, s, self.application.settings["vango_csrf_secret"]):
            raise tornado.web.HTTPError(403)


def enabled(settings: Any) -> bool:
    return bool(settings.status_page or settings.dev)


def cookie_value(token: str, secret: bytes) -> str:
    return hmac.new(secret, b"vango-status:" + token.encode(), hashlib.sha256).hexdigest()


def given_token(request: Any, secret: bytes, token: str) -> bool:
    """The request carries ``token``: bearer header, ``?token=``, or the cookie a ``?token=`` set."""
    if not token:
        return False
    scheme, _, bearer = (request.headers.get("Authorization") or "").partition(" ")
    query = request.query_arguments.get("token", [b""])[0].decode(errors="replace")
    cookie = request.cookies.get(COOKIE)
    return any((
        scheme.lower() == "bearer" and hmac.compare_digest(bearer.strip().encode(), token.encode()),
        bool(query) and hmac.compare_digest(query.encode(), token.encode()),
        cookie is not None and hmac.compare_digest(cookie.value.encode(), cookie_value(token, secret).encode()),
    ))


def allowed(request: Any, settings: Any, secret: bytes) -> bool:
    """Loopback clients, and anyone with ``status_token``."""
    return (security.local_client(request, settings.trusted_proxies)
            or given_token(request, secret, settings.status_token))


class StatusPageHandler(StatusGate, AppHandler):  # type: ignore[misc]
    """The first load of ``/_vango/status`` (stateless SSR, like any page; its socket is ``/_vango/status/ws``)."""

    ws_path = PATH + "/ws"
    SUPPORTED_METHODS = ("GET", "HEAD")  # not AppHandler's: the status page has no forms or app routes

    def initialize(self, service: StatusService, **page: Any) -> None:  # type: ignore[override]
        super().initialize(**page)
        self.service = service

    async def get(self, path: str = "") -> None:  # type: ignore[override]
        s = self.vango_settings
        given = self.get_query_argument("token", "")
        if given and s.status_token and hmac.compare_digest(given.encode(), s.status_token.encode()):
            self.set_cookie(COOKIE, cookie_value(s.status_token, self.csrf_secret), path=PATH, httponly=True,
                            samesite="Strict", secure=s.secure_cookies and not s.dev)
            self.redirect(PATH, status=303)
            return
        await self.service.refresh()  # the first HTML already shows the cluster
        await super().get(PATH.lstrip("/"))

    head = get


class StatusSocket(StatusGate, LiveSocket):  # type: ignore[misc]
    """The status page's WebSocket: the live protocol, on the status sessions."""


class StatusStyle(StatusGate, WorkerHeader, tornado.web.RequestHandler):  # type: ignore[misc]
    def get(self) -> None:
        send_asset(self, _CSS, assets.REVALIDATE)


class StatusService:
    """The status page of one worker: its sessions, its history ring, its feed."""

    def __init__(self, worker: Worker) -> None:
        global SHOWN
        self.worker = worker
        s = worker.settings
        SHOWN = s.dev

        def mount(path: str, session: Any, values: dict[str, Any] | None, render: bool = True) -> Any:
            return navigation.mount(status_app, path, worker=worker.slot, session=session,
                                    on_dirty=session.notify_dirty, values=values, render=render)

        self.sealer = Sealer(worker.sealer.secrets, schema=status_app.schema, debug=s.debug, max_age=0, mount=mount)
        self.census = Census(s)
        self.owner = SessionOwner(s, self.sealer, census=self.census)
        self.handover = Handover(self.owner, s, slot=worker.slot)
        self.history = History(worker.health)
        self.last_ping = 0.0

    def report(self) -> dict[str, Any]:
        rep = worker_report(self.worker.slot, self.worker.health(), self.history)
        store = self.worker.store
        if store is not None and rep["store"] == "local":
            rep["store"] = type(store).__name__.replace("Store", "").lower() or "local"
        elif store is None and rep["store"] == "local":
            rep["store"] = "none"
        return rep

    def handlers(self) -> dict[str, Any]:
        """Bus handlers: every worker answers ``status.report``, enabled or not (the page may be elsewhere)."""
        return {"status.report": lambda body, peer: self.report()}

    def routes(self, page: dict[str, Any], live: dict[str, Any]) -> list[Any]:
        """Tornado routes of the page, its socket and its stylesheet; none when the page is off."""
        if not enabled(self.worker.settings):
            return []
        socket = {**live, "app": status_app, "owner": self.owner, "handover": self.handover, "census": self.census}
        return [(PATH + "/ws", StatusSocket.serving(**socket)), (PATH + r"\.css", StatusStyle),
                (PATH, StatusPageHandler, {**page, "app": status_app, "service": self})]

    def timers(self) -> list[tornado.ioloop.PeriodicCallback]:
        out = [tornado.ioloop.PeriodicCallback(self.history.sample, self.history.every * 1000)]
        if enabled(self.worker.settings):
            out.append(tornado.ioloop.PeriodicCallback(self.tick, REFRESH * 1000))
        return out

    # -- the feed ---------------------------------------------------------------

    async def tick(self) -> None:
        """Keep the status sessions alive and fed; nothing at all while nobody watches."""
        self.owner.sweep_expired()
        if not len(self.owner):
            return
        self._ping()
        await self.refresh()

    async def refresh(self) -> None:
        """Take a snapshot of the cluster and show it on every status page of this worker."""
        snapshot = await self.snapshot()
        with batch():
            SNAPSHOT.set(snapshot)

    def _ping(self) -> None:
        """What :meth:`Worker.heartbeat` does for the app's sockets."""
        now = time.monotonic()
        s = self.worker.settings
        if now - self.last_ping < s.heartbeat_interval:
            return
        self.last_ping = now
        for session in self.owner:
            if isinstance(session.conn, LiveSocket):
                session.conn.heartbeat(now, s.read_timeout)

    async def snapshot(self) -> dict[str, Any]:
        """Every worker's report (ours direct, peers' over the bus), bus state and round trip."""
        mine = self.report()
        bus = self.worker.bus
        workers: dict[int, dict[str, Any]] = {self.worker.slot: {**mine, "generation": 1}}
        state, rtt = ("none (single process)", 0.0)
        if bus is not None:
            started = time.perf_counter()
            try:
                peers = await bus.request(HUB, "stats", timeout=2.0)
                rtt, state = (time.perf_counter() - started) * 1000, "connected"
            except BusError as err:
                peers, state = [], f"unavailable ({type(err).__name__})"
            peers = [p for p in peers or [] if isinstance(p, dict)]
            for p in peers:
                if p.get("slot") == self.worker.slot and p.get("pid") == mine["pid"]:
                    workers[self.worker.slot]["generation"] = p.get("generation", 1)
            others = [p for p in peers if p.get("pid") != mine["pid"]]
            answers = await asyncio.gather(*(self._ask(bus, p) for p in others))
            for p, rep in zip(others, answers):
                workers[int(p["slot"])] = {**rep, "generation": p.get("generation", 1)}
        return {"workers": [workers[k] for k in sorted(workers)], "bus": {"state": state, "rtt_ms": rtt},
                "clock": time.strftime("%H:%M:%S")}

    @staticmethod
    async def _ask(bus: Any, peer: dict[str, Any]) -> dict[str, Any]:
        try:
            rep = await bus.request(int(peer["slot"]), "status.report", timeout=2.0)
            if isinstance(rep, dict):
                return rep
        except BusError:
            pass
        st = peer.get("stats") or {}  # its last heartbeat: enough for a row marked stale
        return {"slot": peer["slot"], "pid": peer.get("pid", 0), "uptime": 0.0, "rss": int(st.get("rss", 0)),
                "sessions": {"attached": st.get("attached", 0), "detached": st.get("detached", 0), "cold": 0},
                "limits": {"share": st.get("share", 0), "hard": st.get("hard", 0)},
                "pressure": str(st.get("pressure", "?")) + " (stale)", "events_per_s": 0.0, "history": [],
                "evictions": {}, "refusals": {}, "store": "?"}
