"""A session navigating in place: the old page unmounts (effects cleaned up), nothing piles up."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.unit.fakes import Conn
from vango_mp import protocol
from vango_mp.navigation import Pending, keep_alive, use_head, use_query
from vango_mp.router import App
from vango_mp.settings import Settings
from vango_mp.vdom import component, h, use_effect, use_signal
from vango_mp.worker import Worker

live_effects: list[str] = []


@component
def PageA() -> Any:
    return Counted(name="a")


@component
def PageB() -> Any:
    q = use_query()
    return h.div(Counted(name="b"), h.p(q.get("x", "-"), id="x"))


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


renders: dict[str, int] = {}


@component
def Counted(name: str) -> Any:
    renders[name] = renders.get(name, 0) + 1
    n = use_signal(0)

    def start() -> Any:
        live_effects.append(name)
        return lambda: live_effects.remove(name)

    use_effect(start)
    use_head(title=f"Page {name}")
    return h.main(h.p(f"{name}:{n.get()}", id="text"), h.button("+", id="inc", on_click=lambda: n.update(lambda v: v + 1)))


@keep_alive
@component
def Kept() -> Any:
    return Counted(name="kept")


@component
def Plain() -> Any:
    return Counted(name="plain")


@component
def Ahead() -> Any:
    return Counted(name="ahead")


aside_app = App({"/kept": Kept, "/plain": Plain, "/ahead": Ahead}, title="t")


async def session_at(path: str) -> tuple[Any, Frames]:
    worker = Worker(Settings(), 0, aside_app, b"k" * 32)
    await worker.owner.admit("10.0.0.1", "b")
    session = worker.owner.open(path, "10.0.0.1")
    conn = Frames()
    worker.owner.attach(session, conn)
    return session, conn


async def go_to(session: Any, url: str, mode: int = protocol.NAV_PUSH) -> None:
    session.queue_navigate(protocol.Navigate(url, mode))
    while session.queued or session.root.dirty:
        await asyncio.sleep(0)


def click(session: Any) -> None:
    hid = next(h for h, el in session.root._registry.items() if el.attrs.get("id") == "inc")
    session.root.handler(hid, "click")()
    session.flush()


def test_a_kept_alive_page_comes_back_with_its_state_unrendered() -> None:
    async def go() -> None:
        live_effects.clear()
        renders.clear()
        session, conn = await session_at("/kept")
        click(session)
        click(session)
        await go_to(session, "/plain")
        assert live_effects == ["kept", "plain"]  # kept aside, still alive
        await go_to(session, "/kept", protocol.NAV_POP)
        frame = conn.frames[-1]
        assert frame[0] == protocol.NAV and frame[4] == "Page kept" and "kept:2" in repr(frame[5]), frame
        assert renders["kept"] == 3  # the first render and two clicks: coming back rendered nothing
        assert live_effects == ["kept"]  # the plain page (not kept) was unmounted
        assert session.drop_aside() == 0  # it is in the tree again, nothing aside
        await go_to(session, "/plain")
        assert session.drop_aside() == 1 and live_effects == ["plain"]  # memory pressure takes it

    asyncio.run(go())


def test_a_prefetched_page_is_rendered_ahead_quietly_and_the_click_renders_nothing() -> None:
    async def go() -> None:
        live_effects.clear()
        renders.clear()
        session, conn = await session_at("/plain")
        sent = len(conn.frames)
        session.prefetch("/ahead")
        assert renders["ahead"] == 1 and live_effects == ["plain"]  # rendered; its effect held back
        assert len(conn.frames) == sent and session.root.context["location"].title == "Page plain"
        click(session)  # the current page renders and commits: the prefetched page's effect stays held
        assert live_effects == ["plain"] and "plain:1" in repr(conn.frames[-1])
        await go_to(session, "/ahead")
        frame = conn.frames[-1]
        assert frame[4] == "Page ahead" and "ahead:0" in repr(frame[5]), frame
        assert renders["ahead"] == 1  # the click used the prefetched render
        assert live_effects == ["ahead"]  # its effect started when it was placed

    asyncio.run(go())


def test_prefetch_is_rate_limited() -> None:
    async def go() -> None:
        session, _ = await session_at("/plain")
        location = session.root.context["location"]
        urls = [f"/ahead?n={i}" for i in range(8)]
        done = [location.prefetch(url) for url in urls]
        assert done.count(True) == 5  # burst of 5 per session, then 5 per second
        assert len(location.prefetched) == 5 and location.aside_nodes() > 0

    asyncio.run(go())


written: dict[str, int] = {}


@component
def Writer() -> Any:
    from vango_mp.globals import GlobalSignal

    hits = GlobalSignal("test.nav.hits", 0)
    local = use_signal(0)
    local.set(local.peek() + 1)  # a write during render (allowed outside debug): dropped ahead of time
    hits.incr()
    written["renders"] = written.get("renders", 0) + 1
    return h.p(f"local={local.peek()} hits={hits.peek()}", id="w")


writer_app = App({"/plain": Plain, "/writer": Writer}, title="t")


def test_a_prefetch_render_drops_signal_writes_local_and_global() -> None:
    from vango_mp.globals import GlobalSignal

    async def go() -> None:
        worker = Worker(Settings(), 0, writer_app, b"k" * 32)
        await worker.owner.admit("10.0.0.1", "b")
        session = worker.owner.open("/plain", "10.0.0.1")
        worker.owner.attach(session, Frames())
        hits = GlobalSignal("test.nav.hits", 0)
        before = hits.peek()
        assert session.root.context["location"].prefetch("/writer")
        assert written["renders"] == 1 and hits.peek() == before  # rendered; its global write dropped

    asyncio.run(go())


def test_navigate_elsewhere_only_to_allowed_hosts() -> None:
    import pytest

    from vango_mp.navigation import Location

    location = Location(aside_app, "/plain", allowed_redirect_hosts=["pay.example"])
    with pytest.raises(ValueError, match="evil.example is not in allowed_redirect_hosts"):
        location.go("https://evil.example/steal")
    with pytest.raises(ValueError):
        location.go("javascript:alert(1)")
    location.go("https://pay.example/checkout?id=3")
    assert location.take() == Pending("https://pay.example/checkout?id=3", protocol.NAV_LOAD)  # a full page load
    location.go("/plain//x/../")  # not canonical: the canonical page, the URL replaced
    assert location.take() == Pending("/plain", protocol.NAV_REPLACE)


def test_an_unmounted_page_is_freed_by_reference_counting() -> None:
    """Workers run the cyclic collector rarely: a page a navigation leaves must not wait for it."""
    import gc

    async def go() -> None:
        session, _ = await session_at("/plain")
        await go_to(session, "/ahead")
        gc.collect()
        gc.disable()
        try:
            for i in range(20):
                await go_to(session, "/plain" if i % 2 else "/ahead")
            left = gc.collect()
        finally:
            gc.enable()
        assert left < 20 * 20, f"{left} objects of unmounted pages were left to the cyclic collector"  # 38 per page before

    asyncio.run(go())


def test_acknowledged_frames_leave_the_patch_history() -> None:
    async def go() -> None:
        session, _ = await session_at("/plain")
        for _ in range(4):
            click(session)
        assert [seq for seq, _ in session.history] == [1, 2, 3, 4]
        size = session.history_bytes
        session.acked(2)
        assert [seq for seq, _ in session.history] == [3, 4] and 0 < session.history_bytes < size
        session.acked(4)
        assert session.history is None and session.history_bytes == 0  # no empty deque kept per idle session
        click(session)
        assert [seq for seq, _ in session.history] == [5]

    asyncio.run(go())


def test_the_patch_history_keeps_the_newest_frames_up_to_its_bound() -> None:
    async def go() -> None:
        worker = Worker(Settings(max_patch_history=3), 0, aside_app, b"k" * 32)
        await worker.owner.admit("10.0.0.1", "b")
        session = worker.owner.open("/plain", "10.0.0.1")
        worker.owner.attach(session, Frames())
        for _ in range(5):
            click(session)
        assert [seq for seq, _ in session.history] == [3, 4, 5]
        assert session.history_bytes == sum(len(f) for _, f in session.history)
        session.acked(3)
        assert [seq for seq, _ in session.history] == [4, 5]
        assert session.history_bytes == sum(len(f) for _, f in session.history)
        session.load_history([(s, b"x" * s) for s in range(1, 6)])  # a moved session's frames: the newest kept
        assert [seq for seq, _ in session.history] == [3, 4, 5] and session.history_bytes == 12

    asyncio.run(go())


def test_prefetched_pages_past_the_bound_go_oldest_first() -> None:
    from vango_mp.navigation import PREFETCH_ENTRIES
    from vango_mp.ratelimit import TokenBucket

    async def go() -> None:
        session, _ = await session_at("/plain")
        location = session.root.context["location"]
        location._prefetch_rate = TokenBucket(1000.0, 1000)  # the rate limit is another test's
        urls = [f"/ahead?n={i}" for i in range(PREFETCH_ENTRIES + 2)]
        assert all(location.prefetch(url) for url in urls)
        assert list(location.prefetched) == urls[2:]  # the two oldest were dropped (and disposed)

    asyncio.run(go())


def test_a_prefetched_page_stays_in_its_own_session() -> None:
    """kept/prefetched start as one shared empty dict: the first page must go to a dict of its own."""

    async def go() -> None:
        one, _ = await session_at("/plain")
        two, _ = await session_at("/plain")
        first, second = one.root.context["location"], two.root.context["location"]
        assert first.prefetch("/ahead?n=1")
        assert list(first.prefetched) == ["/ahead?n=1"]
        assert not second.prefetched and not second.kept

    asyncio.run(go())
