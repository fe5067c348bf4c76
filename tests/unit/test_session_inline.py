"""An idle session applies a client event inline (no Task, no loop turn); a busy one keeps the queue order."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from vango_mp import navigation, protocol
from vango_mp.demo import app
from vango_mp.session import Session
from vango_mp.settings import Settings


class Conn:
    def __init__(self) -> None:
        self.frames: list[list[Any]] = []

    def send(self, data: bytes) -> None:
        self.frames.append(protocol.unpack_message(data))

    def close(self, code: int, reason: str) -> None:
        pass

    def pending_output(self) -> int:
        return 0


def counter_session() -> tuple[Session, Conn, int]:
    session = Session("s" * 22, None, settings=Settings(), ip="127.0.0.1", path="/counter")
    session.root = navigation.mount(app, "/counter", worker=0, session=session, on_dirty=session.notify_dirty,
                                    values=None)
    session.start()
    conn = Conn()
    session.conn = conn
    tag = re.search(r'<[^>]*id="inc"[^>]*>', session.root.html())
    assert tag is not None
    return session, conn, int(re.search(r'data-hid="(\d+)"', tag.group(0)).group(1))  # type: ignore[union-attr]


async def settled(session: Session) -> None:
    """Let the session finish what its mount started (effects after the first render)."""
    for _ in range(100):
        if session._task is None:
            return
        await asyncio.sleep(0)
    raise AssertionError("the session never went idle")


def count_in(session: Session) -> str:
    found = re.search(r'id="count"[^>]*>([^<]*)<', session.root.html())
    assert found is not None
    return found.group(1)


def test_an_idle_session_applies_the_click_before_queue_event_returns() -> None:
    async def go() -> None:
        session, conn, inc = counter_session()
        await settled(session)
        conn.frames.clear()
        before = count_in(session)
        session.queue_event(protocol.ClientEvent(1, inc, "click", None))
        assert session._task is None and not session._events  # no task was woken
        assert [f[0] for f in conn.frames] == [protocol.PATCHES]
        assert count_in(session) != before

    asyncio.run(go())


def test_a_busy_session_queues_the_click_behind_earlier_work() -> None:
    async def go() -> None:
        session, conn, inc = counter_session()
        await settled(session)
        conn.frames.clear()
        order: list[str] = []
        session.dispatch(lambda: order.append("dispatch"))  # wakes the task
        session.queue_event(protocol.ClientEvent(1, inc, "click", None))
        assert not conn.frames and len(session._events or ()) == 1  # waits for its turn
        await settled(session)
        assert order == ["dispatch"] and [f[0] for f in conn.frames] == [protocol.PATCHES]

    asyncio.run(go())


def test_without_a_running_loop_nothing_runs_inline() -> None:
    session, conn, inc = counter_session()  # started outside a loop: nothing runs until flush
    session.queue_event(protocol.ClientEvent(1, inc, "click", None))
    assert not conn.frames and len(session._events or ()) == 1
