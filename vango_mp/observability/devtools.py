"""Devtools (``--dev`` only): what a session holds, for ``window.vango.inspect()`` and the panel.

:func:`inspect_state` is the reference's ``InspectState``: the component tree
(name, key, renders), each component's signal values (``repr``, shortened),
the last events the session received and the last patch frames it sent.
``/_vango/devtools/inspect?sid=<id>`` serves it as JSON to a loopback client
of a ``--dev`` server; the session may live on another worker, which is
asked over the bus (``devtools.inspect``). ``/_vango/devtools.js`` is the
panel; pages link it only in ``--dev``, and without ``--dev`` neither URL
exists (404): nothing of it reaches production.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tornado.web

from .. import assets, security
from ..bus import ANY, BusError
from ..handlers import WorkerHeader, send_asset

if TYPE_CHECKING:
    from ..session import Session
    from ..worker import Worker

KEEP = 20  # events and patch frames shown per session
MAX_SESSIONS = 256  # sessions whose recent events are remembered (dev: a handful)
VALUE_CHARS = 200  # a signal value's repr is cut here

_JS = assets.load((Path(__file__).parent.parent / "static" / "devtools.js").read_bytes(), "devtools.js",
                  "application/javascript")
class _Recent:
    """One session's last events and frames, and its totals (the reference's SessionStats counts)."""

    __slots__ = ("events", "frames", "event_count", "frame_count", "bytes_sent")

    def __init__(self) -> None:
        self.events: deque[dict[str, Any]] = deque(maxlen=KEEP)
        self.frames: deque[bytes] = deque(maxlen=KEEP)
        self.event_count = self.frame_count = self.bytes_sent = 0


_recent: OrderedDict[str, _Recent] = OrderedDict()


def _rings(session_id: str) -> _Recent:
    rings = _recent.get(session_id)
    if rings is None:
        rings = _recent[session_id] = _Recent()
        while len(_recent) > MAX_SESSIONS:
            _recent.popitem(last=False)
    _recent.move_to_end(session_id)
    return rings


def note_event(session_id: str, name: str, hid: int, payload: Any) -> None:
    """Remember an event a session received (``--dev`` only; the socket calls it)."""
    rings = _rings(session_id)
    rings.event_count += 1
    rings.events.append({"t": round(time.time(), 3), "name": name, "hid": hid, "payload": short(payload)})


def note_frame(session_id: str, frame: bytes) -> None:
    """Remember a frame a session sent (``--dev`` only; decoded when someone inspects)."""
    rings = _rings(session_id)
    rings.frame_count += 1
    rings.bytes_sent += len(frame)
    rings.frames.append(frame)


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= VALUE_CHARS else text[:VALUE_CHARS] + "…"


def inspect_state(session: Session) -> dict[str, Any]:
    """InspectState: the tree with signal values, the last events and the last patch frames."""
    root = session.root
    tree = [_component(c) for c in root._scope.children.values()] if root is not None else []
    recent = _recent.get(session.id) or _Recent()
    return {
        "session": security.redact(session.id),
        "state": session.state.value,
        "path": session.path,
        "seq": session.seq,
        "stats": {"age_s": round(time.monotonic() - session.created, 1),
                  "idle_s": round(time.monotonic() - session.last_active, 1),
                  "components": _count(tree), "handlers": len(getattr(root, "_registry", ())),
                  "events": recent.event_count, "frames": recent.frame_count, "bytes_sent": recent.bytes_sent},
        "tree": tree,
        "events": list(recent.events),
        "patches": _patches(recent),
    }


def _count(tree: list[dict[str, Any]]) -> int:
    return sum(1 + _count(n["children"]) for n in tree)


def _component(inst: Any) -> dict[str, Any]:
    from ..vdom.component import SIGNAL

    return {
        "name": inst.name,
        "key": short(inst.key) if inst.key is not None else None,
        "renders": inst.renders,
        "signals": [short(value.peek()) for kind, value in inst.hooks if kind == SIGNAL],
        "children": [_component(c) for c in inst.children.values()],
    }


def _patches(recent: _Recent) -> list[dict[str, Any]]:
    """The frames that carried patches (PATCHES, FULL, NAV), decoded, oldest first."""
    from .. import protocol
    from ..testing.wire import decode_server  # the client's decoder, generous bounds: dev only

    out = []
    for frame in list(recent.frames):
        try:
            decoded = decode_server(frame)
        except ValueError:
            continue
        if decoded and decoded[0] in (protocol.PATCHES, protocol.FULL, protocol.NAV):
            out.append({"seq": decoded[1], "bytes": len(frame), "frame": short(decoded)})
    return out


class DevGate:
    """404 without ``--dev``; 403 unless the client is on this machine."""

    request: Any
    application: tornado.web.Application
    host_checked = False

    def prepare(self) -> None:
        s = self.application.settings["vango_settings"]
        if not s.dev:
            raise tornado.web.HTTPError(404)
        if not security.local_client(self.request, s.trusted_proxies):
            raise tornado.web.HTTPError(403)


class DevtoolsScript(DevGate, WorkerHeader, tornado.web.RequestHandler):  # type: ignore[misc]
    def get(self) -> None:
        send_asset(self, _JS, assets.REVALIDATE)


class InspectHandler(DevGate, WorkerHeader, tornado.web.RequestHandler):  # type: ignore[misc]
    """``?sid=<session id>`` -> :func:`inspect_state` as JSON, from whichever worker holds the session."""

    def initialize(self, worker: Worker) -> None:
        self.worker = worker

    async def get(self) -> None:
        sid = self.get_query_argument("sid", "")
        state = answer(self.worker, sid)
        if state is None and self.worker.bus is not None and sid:
            try:
                state = await self.worker.bus.request(ANY, "devtools.inspect", sid, timeout=2.0)
            except BusError:
                state = None
        if state is None:
            raise tornado.web.HTTPError(404, reason="no such session")
        self.set_header("Cache-Control", "no-store")
        self.finish(state)


def answer(worker: Worker, sid: Any) -> dict[str, Any] | None:
    """Bus handler of ``devtools.inspect`` (None: not here)."""
    if not worker.settings.dev or not isinstance(sid, str):
        return None
    session = worker.owner.get(sid)
    return inspect_state(session) if session is not None else None


def routes(worker: Worker) -> list[Any]:
    """The devtools' URLs; none without ``--dev``."""
    if not worker.settings.dev:
        return []
    return [(r"/_vango/devtools\.js", DevtoolsScript),
            (r"/_vango/devtools/inspect", InspectHandler, {"worker": worker})]


def handlers(worker: Worker) -> dict[str, Any]:
    return {"devtools.inspect": lambda body, peer: answer(worker, body)}
