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
        while len(got) < 2:
            await asyncio.sleep(0.01)
        assert got == [("hi", 0), ("hi", 0)]
        for x in (a, b, c):
            x.close()

    run(go)


def test_heartbeats_carry_stats(hub: HubThread) -> None:
    async def go() -> None:
        (a,) = await clients(hub, 1)
        a.stats_provider = lambda: {"attached": 3, "detached": 1, "rss": 5, "pressure": "none"}
        a.ready()
        for _ in range(100):
            stats = await a.request(bus.HUB, "stats")
            if stats and stats[0]["stats"].get("attached") == 3 and stats[0]["ready"]:
                break
            await asyncio.sleep(0.02)
        assert stats[0]["stats"]["attached"] == 3 and stats[0]["ready"]
        a.close()

    run(go)


def test_eof_fails_pending_requests_and_calls_on_lost(hub: HubThread) -> None:
    async def go() -> None:
        lost = asyncio.Event()
        a, b = await clients(hub, 2, on_lost=lost.set)
        b.on("never", lambda body, peer: asyncio.sleep(30))
        pending = asyncio.ensure_future(a.request(1, "never", timeout=20))
        await asyncio.sleep(0.1)
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
        while counter.peek() != 105:
            await asyncio.sleep(0.01)
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
        await asyncio.sleep(0.2)
        a.close()
        (b,) = await clients(hub, 1)  # fresh connection; backend built after connect
        vglobals.install_backend(vglobals.BusBackend(b))
        assert shared.peek() == ["x", "y"] and shared.seq == 2
        b.close()

    run(go)
