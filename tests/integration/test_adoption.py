"""Sessions move between workers: adoption on reconnect, the race, the cold tier."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from tests.conftest import Server, start_server
from vango_mp import protocol
from vango_mp.protocol import Close

from .rawws import Page, Raw, fetch_page
from .test_live_protocol import find_hid

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def pair() -> Iterator[Server]:
    srv = start_server("--workers", "2", env={"VANGO_COLD_AFTER": "300ms"})
    yield srv
    srv.stop()


async def connect_on(url: str, page: Page, worker: int, **hello: object) -> tuple[Raw, list]:
    """Open sockets until one lands on ``worker`` (SO_REUSEPORT hashes the 4-tuple)."""
    for _ in range(200):
        ws = await Raw.connect(url, cookie=page.cookie)
        welcome = await ws.hello(page, **hello)  # type: ignore[arg-type]
        if welcome is None:
            return ws, welcome  # type: ignore[return-value]
        if welcome[4] == worker or welcome[0] != protocol.WELCOME:
            return ws, welcome
        ws.close()
    raise AssertionError(f"never landed on worker {worker}")


async def probe_worker(url: str, page: Page, worker: int) -> Raw:
    """A socket on ``worker`` that has not said HELLO yet (the 101 names its worker)."""
    for _ in range(200):
        ws = await Raw.connect(url, cookie=page.cookie)
        if ws.conn.headers.get("X-Vango-Worker") == str(worker):
            return ws
        ws.close()
    raise AssertionError(f"never landed on worker {worker}")


async def click_n(ws: Raw, hid: int, n: int) -> int:
    """Click and await each PATCHES frame (a FULL may come first: the SSR was another worker's);
    the seq of the last frame."""
    seq = 0
    for i in range(n):
        await ws.send([protocol.EVENT, i + 1, hid, "click", None])
        frame = await ws.recv()
        while frame[0] == protocol.FULL:
            frame = await ws.recv()
        assert frame[0] == protocol.PATCHES
        seq = frame[1]
    return seq


async def resume_on(url: str, page: Page, worker: int, sid: str, last_seq: int) -> tuple[Raw, list]:
    """Resume ``sid`` over sockets until the WELCOME comes from ``worker``.

    A resume that lands on the current owner just resumes there (and we retry),
    so this walks the session across workers exactly like a browser would.
    """
    for _ in range(100):
        ws = await Raw.connect(url, cookie=page.cookie)
        welcome = await ws.hello(page, sid=sid, last_seq=last_seq)
        assert welcome is not None and welcome[0] == protocol.WELCOME, welcome
        if welcome[4] == worker:
            return ws, welcome
        await caught_up(ws, welcome, last_seq)
        last_seq = welcome[2]
        ws.close()
    raise AssertionError("never resumed on the other worker")


async def caught_up(ws: Raw, welcome: list, last_seq: int) -> list:
    """Read the frames that bring the client from ``last_seq`` to the seq WELCOME announced.

    WELCOME tells the seq the client will be caught up to (docs/PROTOCOL.md):
    replayed PATCHES, or one FULL. Returns those frames; [] if the socket closed.
    """
    frames: list = []
    seq = last_seq
    while seq != welcome[2]:
        frame = await ws.recv()
        if frame is None:
            return []
        if frame[0] in (protocol.PATCHES, protocol.FULL):
            frames.append(frame)
            seq = frame[1]
    return frames


async def outcome(ws: Raw, last_seq: int) -> tuple[list | None, list]:
    """A racing resume's outcome: (WELCOME, the frames catching it up), or (None, []) once closed."""
    welcome = await ws.recv()
    if welcome is None:
        return None, []
    assert welcome[0] == protocol.WELCOME, welcome
    return welcome, await caught_up(ws, welcome, last_seq)


async def session_counts(server: Server, worker: int) -> int:
    """Sessions ``worker`` holds, from its own /_vango/health: attached + detached (cold ones are
    detached too: ``cold`` counts a part of ``detached``, so a session going cold changes nothing)."""
    counts = (await asyncio.to_thread(server.per_worker, "sessions"))[worker]
    return counts["attached"] + counts["detached"]


def inc_hid(frames: list, html: str) -> int:
    """#inc's hid as the client now sees it: from the last FULL if one came, else the page it had."""
    html = next((f[2] for f in reversed(frames) if f[0] == protocol.FULL), html)
    return int(html.split('id="inc" data-hid="')[1].split('"')[0])


def test_reconnect_on_other_worker_adopts_state(pair: Server) -> None:
    async def go() -> None:
        page = fetch_page(pair.url, "/counter")
        inc = find_hid(page.html, "inc")
        ws, welcome = await connect_on(pair.url, page, 0)
        sid = welcome[1]
        seen = await click_n(ws, inc, 3)
        ws.close()
        on_a = await session_counts(pair, 0)  # this session is one of them, attached or detached
        other, welcome = await resume_on(pair.url, page, 1, sid, seen)
        # The old owner handed it over and kept no copy: one session fewer there, at once.
        assert await session_counts(pair, 0) == on_a - 1
        assert welcome[1] == sid and welcome[3] is True
        # Remounted on worker 1 against the tree the client shows: no FULL, the
        # client's element ids stay valid, and what differs here (#worker) is a patch.
        moved = await other.recv()
        assert moved[:2] == [protocol.PATCHES, welcome[2]], moved
        assert [op[-1] for op in moved[2]] == ["1"]
        await other.send([protocol.EVENT, 9, inc, "click", None])
        patch = await other.recv()
        assert patch[0] == protocol.PATCHES and patch[2][0][-1] == "Count: 4"
        other.close()
        on_b = await session_counts(pair, 1)
        # A resume aimed at the old owner finds no live copy there (it would be the
        # stale one, "Count: 3"): worker 0 must take it back from worker 1.
        back = await probe_worker(pair.url, page, 0)
        again = await back.hello(page, sid=sid, last_seq=patch[1])
        assert again[:2] == [protocol.WELCOME, sid] and again[3:] == [True, 0], again
        assert again[2] >= patch[1], f"worker 0 answered with seq {again[2]}, older than the client's {patch[1]}"
        frames = await caught_up(back, again, patch[1])
        await back.send([protocol.EVENT, 10, inc_hid(frames, page.html), "click", None])
        clicked = await back.recv()
        assert clicked[0] == protocol.PATCHES and clicked[2][0][-1] == "Count: 5", clicked
        assert await session_counts(pair, 1) == on_b - 1  # and worker 1 gave it up in turn
        back.close()

    asyncio.run(go())


@pytest.mark.parametrize("workers", [(1, 1), (0, 1)], ids=["both-remote", "owner-and-remote"])
def test_racing_resumes_leave_one_owner(pair: Server, workers: tuple[int, int]) -> None:
    async def go() -> None:
        page = fetch_page(pair.url, "/counter")
        inc = find_hid(page.html, "inc")
        ws, welcome = await connect_on(pair.url, page, 0)
        sid = welcome[1]
        await click_n(ws, inc, 2)
        ws.close()
        a = await probe_worker(pair.url, page, workers[0])
        b = await probe_worker(pair.url, page, workers[1])
        hello = [protocol.HELLO, 1, page.csrf, "/counter", sid, 2, None]
        await asyncio.gather(a.send(hello), b.send(hello))
        seen = dict(zip((a, b), await asyncio.gather(outcome(a, 2), outcome(b, 2))))
        # Each socket has now been caught up or closed. One caught up first may
        # still lose the session to the other: wait (bounded) until one is closed.
        waits = [asyncio.ensure_future(ws_.closed(10)) for ws_ in (a, b) if ws_.conn.close_code is None]
        if len(waits) == 2:
            await asyncio.wait(waits, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
        open_ = [ws_ for ws_ in (a, b) if ws_.conn.close_code is None]
        closed = [ws_ for ws_ in (a, b) if ws_.conn.close_code is not None]
        assert len(open_) == 1 and len(closed) == 1, [w.conn.close_code for w in (a, b)]
        assert closed[0].conn.close_code == Close.SESSION_TAKEN
        winner = open_[0]
        welcome, frames = seen[winner]
        assert welcome is not None and welcome[1] == sid
        # State intact: the next click on the winner says 3 (it may first get a FULL).
        await winner.send([protocol.EVENT, 50, inc_hid(frames, page.html), "click", None])
        patch = await winner.recv()
        assert patch[0] == protocol.PATCHES and patch[2][0][-1] == "Count: 3"
        winner.close()

    asyncio.run(go())


@pytest.fixture(scope="module")
def cold_server() -> Iterator[Server]:
    """One worker of its own, so its cold-tier count is this test's session alone."""
    srv = start_server("--workers", "1", env={"VANGO_COLD_AFTER": "300ms"})
    yield srv
    srv.stop()


def test_cold_session_resumes_exactly(cold_server: Server) -> None:
    async def go() -> None:
        page = fetch_page(cold_server.url, "/todos")
        ws = await Raw.connect(cold_server.url, cookie=page.cookie)
        sid = (await ws.hello(page))[1]
        form = find_hid(page.html, "new-todo") - 1
        for i, title in enumerate(["milk", "eggs", "bread"]):
            await ws.send([protocol.EVENT, i + 1, form, "submit", {"form": {"title": title}}])
            assert (await ws.recv())[1] == i + 1
        ws.close()
        # cold_after is 300 ms: wait until the sweep froze it.
        await asyncio.to_thread(cold_server.wait_health, lambda h: h["sessions"]["cold"] == 1, 10)
        again = await Raw.connect(cold_server.url, cookie=page.cookie)
        welcome = await again.hello(page, sid=sid, last_seq=1)
        # Remounted from the blob with its element ids: no FULL, the two missed
        # frames are replayed, and the client's hids still address the same elements.
        assert welcome[:4] == [protocol.WELCOME, sid, 3, True]
        assert [(await again.recv())[:2] for _ in range(2)] == [[protocol.PATCHES, 2], [protocol.PATCHES, 3]]
        await again.send([protocol.EVENT, 4, form, "submit", {"form": {"title": "jam"}}])
        patch = await again.recv()
        assert patch[:2] == [protocol.PATCHES, 4] and "jam" in repr(patch[2])
        health = json.loads((await asyncio.to_thread(cold_server.get, "/_vango/health"))[2])
        assert health["sessions"] == {"attached": 1, "detached": 0, "cold": 0}
        again.close()

    asyncio.run(go())
