"""BusClient against a real in-process hub: requests, timeouts, EOF, global signals."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_bus_hub import HubThread
from vango_mp import bus
from vango_mp import globals as vglobals
from vango_mp import reactive


@pytest.fixture()
def hub(tmp_path: Path) -> Iterator[HubThread]:
    h = HubThread(str(tmp_path / "bus.sock"))
    yield h
    h.stop()


@pytest.fixture(autouse=True)
def local_globals() -> Iterator[None]:
    yield
    vglobals.install_backend(None)


def run(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(coro_fn(), 10))


async def until(condition: Callable[[], Any], timeout: float = 5.0) -> None:
    """Yield to the loop until ``condition()`` holds (the bus delivers meanwhile); fail after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.005)


async def clients(hub: HubThread, n: int, **kwargs: Any) -> list[bus.BusClient]:
    out = []
    for slot in range(n):
        client = bus.BusClient(hub.hub.path, slot=slot, pid=os.getpid(), heartbeat=0.05,
                               on_lost=kwargs.get("on_lost", lambda: None))
        await client.connect()
        out.append(client)
    return out


def test_request_response_between_workers(hub: HubThread) -> None:
    async def go() -> None:
        a, b = await clients(hub, 2)

        async def double(body: int, peer: int) -> int:
            return body * 2 + peer

        b.on("double", double)
        assert await a.request(1, "double", 20) == 40
        b.on("fail", lambda body, peer: 1 / 0)
        with pytest.raises(bus.BusError, match="ZeroDivisionError"):
            await a.request(1, "fail")
        for c in (a, b):
            c.close()

    run(go)


def test_request_times_out(hub: HubThread) -> None:
    async def go() -> None:
        a, b = await clients(hub, 2)
        b.on("slow", lambda body, peer: asyncio.sleep(5))
        with pytest.raises(bus.BusTimeout):
            await a.request(1, "slow", timeout=0.2)
        assert not a.pending
        for c in (a, b):
            c.close()

    run(go)


def test_request_any_and_broadcast(hub: HubThread) -> None:
    async def go() -> None:
        a, b, c = await clients(hub, 3)
        got: list[Any] = []
        b.on("adopt", lambda sid, peer: None)
        c.on("adopt", lambda sid, peer: {"sid": sid})
        assert await a.request_any("adopt", "s1") == {"sid": "s1"}
        b.on("note", lambda body, peer: got.append((body, peer)))
        c.on("note", lambda body, peer: got.append((body, peer)))
        a.broadcast("note", "hi")
        await until(lambda: len(got) >= 2)
        assert got == [("hi", 0), ("hi", 0)]
        for x in (a, b, c):
            x.close()

    run(go)


def test_heartbeats_carry_stats(hub: HubThread) -> None:
    async def go() -> None:
        (a,) = await clients(hub, 1)
        a.stats_provider = lambda: {"attached": 3, "detached": 1, "rss": 5, "pressure": "none"}
        a.ready()
        stats: list[Any] = []

        async def reported() -> bool:
            stats[:] = await a.request(bus.HUB, "stats")
            return bool(stats) and stats[0]["stats"].get("attached") == 3 and stats[0]["ready"]

        deadline = asyncio.get_running_loop().time() + 5
        while not await reported():  # the next heartbeat (every 0.05 s) carries them
            assert asyncio.get_running_loop().time() < deadline, stats
        assert stats[0]["stats"] == {"attached": 3, "detached": 1, "rss": 5, "pressure": "none"}
        a.close()

    run(go)


def test_eof_fails_pending_requests_and_calls_on_lost(hub: HubThread) -> None:
    async def go() -> None:
        lost, arrived = asyncio.Event(), asyncio.Event()
        a, b = await clients(hub, 2, on_lost=lost.set)

        async def never(body: Any, peer: int) -> None:
            arrived.set()
            await asyncio.sleep(30)

        b.on("never", never)
        pending = asyncio.ensure_future(a.request(1, "never", timeout=20))
        await asyncio.wait_for(arrived.wait(), 5)  # the request is under way through the hub
        assert not pending.done()
        hub.stop()  # the supervisor went away
        await asyncio.wait_for(lost.wait(), 5)
        with pytest.raises(bus.BusClosed):
            await pending
        with pytest.raises(bus.BusClosed):
            a.broadcast("x")

    run(go)


def test_global_incr_from_many_writers_loses_nothing(hub: HubThread) -> None:
    counter = vglobals.GlobalSignal("test.client.count", 0)

    async def go() -> None:
        a, b = await clients(hub, 2)
        vglobals.install_backend(vglobals.BusBackend(a))  # this process acts as worker 0
        seqs = await asyncio.gather(*(counter.incr() for _ in range(100)))
        assert sorted(seqs) == list(range(1, 101))
        assert counter.peek() == 100 and counter.seq == 100
        # Worker 1 writes raw; worker 0 applies the hub's broadcast in order.
        b.write_global("test.client.count", "incr", [5], 0)
        await until(lambda: counter.peek() == 105)
        with pytest.raises(vglobals.GlobalWriteError):
            await counter.append("x")
        for c in (a, b):
            c.close()

    run(go)


def test_global_change_rerenders_readers(hub: HubThread) -> None:
    shared = vglobals.GlobalSignal("test.client.render", "a")
    seen: list[str] = []

    async def go() -> None:
        (a,) = await clients(hub, 1)
        vglobals.install_backend(vglobals.BusBackend(a))
        dispose = reactive.effect(lambda: seen.append(shared.get()))
        await shared.set("b")
        dispose()
        a.close()

    run(go)
    assert seen == ["a", "b"]


def test_reconnecting_worker_gets_the_snapshot_first(hub: HubThread) -> None:
    shared = vglobals.GlobalSignal("test.client.snap", [])

    async def go() -> None:
        (a,) = await clients(hub, 1)
        a.write_global("test.client.snap", "append", ["x", 3], [])
        a.write_global("test.client.snap", "append", ["y", 3], [])
        await a.request(bus.HUB, "stats")  # the hub handles a peer's frames in order: both writes are in
        assert hub.hub.globals["test.client.snap"] == [2, ["x", "y"]]
        a.close()
        (b,) = await clients(hub, 1)  # fresh connection; backend built after connect
        vglobals.install_backend(vglobals.BusBackend(b))
        assert shared.peek() == ["x", "y"] and shared.seq == 2
        b.close()

    run(go)
