"""Each limit refuses with its own close reason and metric, and touches no other session."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator

import pytest

from tests.conftest import Server, start_server
from vango_mp import protocol
from vango_mp.protocol import Close

from .rawws import Raw, fetch_page
from .test_live_protocol import find_hid

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def tight() -> Iterator[Server]:
    srv = start_server("--workers", "1", env={
        "VANGO_HANDSHAKE_TIMEOUT": "300ms",
        "VANGO_MAX_CONCURRENT_HANDSHAKES_PER_IP": "3",
        "VANGO_DOM_EVENT_RATE": "5",
        "VANGO_DOM_EVENT_BURST": "5",
    })
    yield srv
    srv.stop()


def metric(srv: Server, name: str, **labels: str) -> float:
    text = srv.get("/_vango/metrics")[2].decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_handshake_timeout(tight: Server) -> None:
    async def go() -> None:
        ws = await Raw.connect(tight.url)
        code, reason = await ws.closed(timeout=5)
        assert (code, reason) == (Close.HANDSHAKE_TIMEOUT, "handshake timeout")

    asyncio.run(go())


def test_concurrent_handshakes_per_ip(tight: Server) -> None:
    async def go() -> None:
        before = metric(tight, "vango_refusals_total", reason="handshakes")
        waiting = [await Raw.connect(tight.url) for _ in range(3)]
        extra = await Raw.connect(tight.url)
        code, reason = await extra.closed(timeout=2)
        assert code == Close.RATE_LIMITED and "concurrent handshakes" in (reason or "")
        assert metric(tight, "vango_refusals_total", reason="handshakes") == before + 1
        for ws in waiting:  # they time out on their own; the slots free up again
            assert (await ws.closed(timeout=5))[0] == Close.HANDSHAKE_TIMEOUT
        page = fetch_page(tight.url, "/counter")
        ok = await Raw.connect(tight.url, cookie=page.cookie)
        assert (await ok.hello(page))[0] == protocol.WELCOME
        ok.close()

    asyncio.run(go())


def test_dom_event_rate_limit_drops_and_counts(tight: Server) -> None:
    async def go() -> None:
        page = fetch_page(tight.url, "/counter")
        ws = await Raw.connect(tight.url, cookie=page.cookie)
        await ws.hello(page)
        inc = find_hid(page.html, "inc")
        before = metric(tight, "vango_events_dropped_total", reason="rate_limited")
        for i in range(30):
            await ws.send([protocol.EVENT, i + 1, inc, "click", None])
        frames = []
        while True:
            try:
                frames.append(await ws.recv(timeout=0.5))
            except asyncio.TimeoutError:
                break
        # Burst of 5 plus at most a few refills while 30 frames arrived.
        assert 5 <= len(frames) <= 8, len(frames)
        dropped = metric(tight, "vango_events_dropped_total", reason="rate_limited") - before
        assert dropped == 30 - len(frames)
        assert ws.conn.close_code is None  # dropped, not disconnected
        ws.close()

    asyncio.run(go())


def test_resync_flood_is_refused(tight: Server) -> None:
    async def go() -> None:
        page = fetch_page(tight.url, "/counter")
        ws = await Raw.connect(tight.url, cookie=page.cookie)
        await ws.hello(page)
        for _ in range(12):
            await ws.send([protocol.RESYNC, 1000])
        code, reason = await ws.closed(timeout=5)
        assert code == Close.RATE_LIMITED and "resync" in (reason or "")

    asyncio.run(go())


@pytest.fixture(scope="module")
def per_ip() -> Iterator[Server]:
    srv = start_server("--workers", "1", env={"VANGO_MAX_SESSIONS_PER_IP": "2"})
    yield srv
    srv.stop()


def test_ip_limit_evicts_oldest_detached_then_refuses(per_ip: Server) -> None:
    async def go() -> None:
        page = fetch_page(per_ip.url, "/counter")
        first = await Raw.connect(per_ip.url, cookie=page.cookie)
        old_sid = (await first.hello(page))[1]
        first.close()
        await asyncio.to_thread(per_ip.wait_health, lambda h: h["sessions"]["detached"] == 1)
        second = await Raw.connect(per_ip.url, cookie=page.cookie)
        await second.hello(page)
        third = await Raw.connect(per_ip.url, cookie=page.cookie)
        assert (await third.hello(page))[0] == protocol.WELCOME  # the detached one made room
        gone = await Raw.connect(per_ip.url, cookie=page.cookie)
        await gone.send([protocol.HELLO, 1, page.csrf, "/counter", old_sid, 0, None])
        assert (await gone.closed())[0] == Close.SESSION_EXPIRED
        fourth = await Raw.connect(per_ip.url, cookie=page.cookie)
        await fourth.send([protocol.HELLO, 1, page.csrf, "/counter", None, 0, None])
        code, reason = await fourth.closed()
        assert code == Close.RATE_LIMITED and "too many sessions" in (reason or "")
        second.close()
        third.close()

    asyncio.run(go())


@pytest.fixture(scope="module")
def one_session() -> Iterator[Server]:
    srv = start_server("--workers", "1", env={"VANGO_MAX_SESSIONS": "1"})
    yield srv
    srv.stop()


def test_max_sessions_says_server_busy(one_session: Server) -> None:
    async def go() -> None:
        page = fetch_page(one_session.url, "/counter")
        held = await Raw.connect(one_session.url, cookie=page.cookie)
        await held.hello(page)
        extra = await Raw.connect(one_session.url, cookie=page.cookie)
        await extra.send([protocol.HELLO, 1, page.csrf, "/counter", None, 0, None])
        code, reason = await extra.closed()
        assert (code, reason) == (Close.SERVER_BUSY, "max sessions reached")
        assert re.search(r'vango_refusals_total\{reason="max_sessions_reached",worker="0"\} 1(\.0)?$',
                         one_session.get("/_vango/metrics")[2].decode(), re.M)
        held.close()

    asyncio.run(go())


@pytest.fixture(scope="module")
def two_workers() -> Iterator[Server]:
    srv = start_server("--workers", "2", env={
        "VANGO_MAX_SESSIONS": "6", "VANGO_MAX_SESSIONS_PER_IP": "4", "VANGO_MAX_CONCURRENT_HANDSHAKES_PER_IP": "3",
        "VANGO_HANDSHAKE_TIMEOUT": "3s"})
    yield srv
    srv.stop()


def detached_somewhere(srv: Server, timeout: float = 10.0) -> None:
    """Wait until one of the two workers reports a detached session (health answers for one worker)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if srv.health()["sessions"]["detached"]:
            return
    raise AssertionError("no worker reported the detached session")


async def _hello_on(srv: Server, page, worker: int, *, ip: str = "127.0.0.1") -> tuple[Raw, list | None]:
    """A new session's HELLO from a socket on ``worker`` (the 101 names it)."""
    for _ in range(200):
        ws = await Raw.connect(srv.url, cookie=page.cookie)
        if ws.conn.headers.get("X-Vango-Worker") == str(worker):
            await ws.send([protocol.HELLO, 1, page.csrf, "/counter", None, 0, None])
            frame = await ws.recv()
            return ws, frame
        ws.close()
    raise AssertionError(f"never landed on worker {worker}")


def test_limits_hold_for_the_whole_server_not_per_worker(two_workers: Server) -> None:
    """Per-IP sessions (4) and handshakes (3) count across both workers; a neighbour is never evicted."""
    async def go() -> None:
        alice = fetch_page(two_workers.url, "/counter")  # one browser
        held: list[Raw] = []
        for i in range(4):  # alternate workers: per worker this would allow 8
            ws, frame = await _hello_on(two_workers, alice, i % 2)
            assert frame is not None and frame[0] == protocol.WELCOME, (i, frame)
            held.append(ws)
        for worker in (0, 1):
            ws, frame = await _hello_on(two_workers, alice, worker)
            assert frame is None and ws.conn.close_code == Close.RATE_LIMITED, (worker, frame)
        # Bob, behind the same IP with his own browser: alice's detached session is not his to evict.
        held[0].close()
        await asyncio.to_thread(detached_somewhere, two_workers)
        bob = fetch_page(two_workers.url, "/counter")
        for worker in (0, 1):
            ws, frame = await _hello_on(two_workers, bob, worker)
            assert frame is None and ws.conn.close_code == Close.RATE_LIMITED, (worker, frame)
        # Alice's own detached session (on worker 0) makes room for her next one, on either worker.
        ws, frame = await _hello_on(two_workers, alice, 1)
        assert frame is not None and frame[0] == protocol.WELCOME
        held.append(ws)
        # Handshakes: three sockets that never say HELLO, spread over both workers, use up the IP's share.
        waiting = [await Raw.connect(two_workers.url) for _ in range(3)]
        extra = await Raw.connect(two_workers.url)
        code, reason = await extra.closed(timeout=2)
        assert code == Close.RATE_LIMITED and "concurrent handshakes" in (reason or "")
        for ws in [*held, *waiting]:
            ws.close()

    asyncio.run(go())
