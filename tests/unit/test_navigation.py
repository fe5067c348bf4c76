"""A session navigating in place: the old page unmounts (effects cleaned up), nothing piles up."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.unit.fakes import Conn
from vango_mp import protocol
from vango_mp.navigation import use_head, use_query
from vango_mp.router import App
from vango_mp.settings import Settings
from vango_mp.vdom import component, h, use_effect, use_signal
from vango_mp.worker import Worker

live_effects: list[str] = []


@component
def Layoutless(name: str = "a") -> Any:
    n = use_signal(0)

    def start() -> Any:
        live_effects.append(name)
        return lambda: live_effects.remove(name)

    use_effect(start)
    use_head(title=f"Page {name}")
    return h.main(h.p(f"{name}:{n.get()}", id="text"), h.button("+", id="inc", on_click=lambda: n.update(lambda v: v + 1)))


@component
def PageA() -> Any:
    return Layoutless(name="a")


@component
def PageB() -> Any:
    q = use_query()
    return h.div(Layoutless(name="b"), h.p(q.get("x", "-"), id="x"))


app = App({"/a": PageA, "/b": PageB}, title="test")


class Frames(Conn):
    def __init__(self) -> None:
        super().__init__()
        self.frames: list[list[Any]] = []

    def send(self, data: bytes) -> None:
        self.frames.append(protocol.unpack_message(data, 1 << 24))


def test_fifty_navigations_leave_one_page_mounted_and_its_effects_only() -> None:
    async def go() -> None:
        worker = Worker(Settings(), 0, app, b"k" * 32)
        await worker.owner.admit("10.0.0.1", "b")
        session = worker.owner.open("/a", "10.0.0.1")
        conn = Frames()
        worker.owner.attach(session, conn)
        first_seen: dict[str, int] = {}  # instances mounted on each page, the first time
        for i in range(50):
            url = "/b?x=%d" % i if i % 2 == 0 else "/a"
            session.queue_navigate(protocol.Navigate(url, protocol.NAV_PUSH))
            while session.queued or session.root.dirty:
                await asyncio.sleep(0)
            frame = conn.frames[-1]
            assert frame[0] == protocol.NAV and frame[2] == url.replace("%d" % i, str(i)), frame
            assert frame[4] == ("Page b" if i % 2 == 0 else "Page a")
            assert live_effects == (["b"] if i % 2 == 0 else ["a"])  # the old page's effect was cleaned up
            instances = len(list(session.root._instances(session.root._scope)))
            assert instances == first_seen.setdefault(url.split("?")[0], instances), (i, instances, first_seen)
        assert session.path == "/a"
        worker.owner.end(session, 1000, "bye", "test")
        assert live_effects == []

    asyncio.run(go())
