"""A global write reaching many sessions: one encoding per state and seq, the same bytes in every history.

Sessions whose patches are exactly a shared transition's (vdom.shared) send
the same bytes object; a session at another seq gets its own frame, and one
whose tree differs (other hids, same number of patches) never gets another
session's bytes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.unit.fakes import Conn
from vango_mp import protocol
from vango_mp.globals import GlobalSignal
from vango_mp.router import App
from vango_mp.settings import Settings
from vango_mp.vdom import component, h, shared, use_signal
from vango_mp.worker import Worker

VALUE = GlobalSignal("test.fanout_frames", 0)


@component(shared=True)
def Value() -> Any:
    return h.span(str(VALUE.get()), id="v")


@component
def Page(first: bool) -> Any:
    mine = use_signal(0)
    return h.main(
        h.p("first", id="first") if first else None,  # shifts every hid below: another numbering
        h.section(Value()),
        h.button(str(mine.get()), id="mine", on_click=lambda: mine.set(mine.get() + 1)),
    )


app = App({"/plain": lambda: Page(first=False), "/first": lambda: Page(first=True)}, title="t")


class Raw(Conn):
    def __init__(self) -> None:
        super().__init__()
        self.frames: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.frames.append(data)


async def _sessions(paths: list[str]) -> tuple[list[Any], list[Raw]]:
    worker = Worker(Settings(), 0, app, b"k" * 32)
    sessions, conns = [], []
    for i, path in enumerate(paths):
        ip = f"10.0.0.{i + 1}"
        await worker.owner.admit(ip, "b")
        session = worker.owner.open(path, ip)
        conn = Raw()
        worker.owner.attach(session, conn)
        sessions.append(session)
        conns.append(conn)
    return sessions, conns


async def _write(value: int, sessions: list[Any]) -> None:
    VALUE.set(value)
    while any(s.root.dirty or s.queued for s in sessions):
        await asyncio.sleep(0)


def _hid(session: Any, id_: str) -> int:
    return next(hid for hid, el in _elements(session.root.nodes) if el.attrs.get("id") == id_)


def _elements(nodes: list[Any]) -> list[tuple[int, Any]]:
    out = []
    for n in nodes:
        if hasattr(n, "tag"):
            out.append((n.hid, n))
            out.extend(_elements(n.children))
    return out


def test_sessions_in_the_same_state_send_one_bytes_object_and_others_their_own() -> None:
    async def go() -> None:
        shared.enable(True)
        sessions, conns = await _sessions(["/plain", "/plain", "/plain", "/first", "/plain"])
        clicker = sessions[4]
        clicker.root.handler(_hid(clicker, "mine"), "click")()  # one frame more: its seq runs ahead
        clicker.flush()
        for n in range(1, 4):
            await _write(n, sessions)
            last = [c.frames[-1] for c in conns]
            assert last[0] is last[1] is last[2]  # same state, same seq: one encoding
            for session, frame in zip(sessions, last):
                kind, seq, patches = protocol.unpack_message(frame)
                assert (kind, seq) == (protocol.PATCHES, session.seq)
                assert patches == [[protocol.SET_TEXT, _hid(session, "v"), 0, str(n)]]
                assert session.history.frames[-1][1] is frame
            assert last[3] is not last[0] and last[3] != last[0]  # other hids: its own frame
            assert last[4] is not last[0] and sessions[4].seq == sessions[0].seq + 1
        assert _hid(sessions[3], "v") != _hid(sessions[0], "v")
        for s in sessions:
            s.release()

    asyncio.run(go())


def test_a_session_with_changes_of_its_own_encodes_its_frame() -> None:
    async def go() -> None:
        shared.enable(True)
        sessions, conns = await _sessions(["/plain", "/plain"])
        own = sessions[1]
        VALUE.set(10)
        own.root.handler(_hid(own, "mine"), "click")()  # its counter and the global, in one flush
        while any(s.root.dirty or s.queued for s in sessions):
            await asyncio.sleep(0)
        a, b = conns[0].frames[-1], conns[1].frames[-1]
        assert a is not b
        patches = protocol.unpack_message(b)[2]
        assert [protocol.SET_TEXT, _hid(own, "v"), 0, "10"] in patches and len(patches) == 2
        for s in sessions:
            s.release()

    asyncio.run(go())
