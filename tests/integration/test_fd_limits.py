"""Open-file limits at the edge: a worker under a low ``ulimit -n`` raises it, holds its capacity, refuses past it.

The server runs under soft 64 / hard 200 open files (set before exec), so
the edge is reachable here: the worker must raise the soft limit to 200,
log its capacity once, give each attached session exactly one descriptor,
refuse sockets past capacity with 1013 "server busy" (counted), keep the
sessions it has, and rest its accept loop through EMFILE without a traceback.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator

import pytest
import tornado.websocket

from tests.conftest import Server, start_server, vango_command
from vango_mp import protocol
from vango_mp.protocol import Close

from .rawws import Raw, fetch_page
from .test_limits import metric
from .test_live_protocol import find_hid

pytestmark = pytest.mark.timeout(120)

SOFT, HARD = 64, 200
_LIMITED = ("import os, resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard}));"
            " os.execv(sys.argv[1], sys.argv[1:])")


@pytest.fixture(scope="module")
def limited() -> Iterator[Server]:
    wrapper = [sys.executable, "-c", _LIMITED.format(soft=SOFT, hard=HARD)]
    srv = start_server("--workers", "1", command=[*wrapper, *vango_command()], env={
        "VANGO_MAX_SESSIONS_PER_IP": "0",
        "VANGO_MAX_CONCURRENT_HANDSHAKES_PER_IP": "0",
    })
    yield srv
    srv.stop()


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def settled(read: Callable[[], int], want: int, timeout: float = 10.0) -> int:
    """``read()`` once it equals ``want`` (the server closes finished HTTP connections on its own time)."""
    deadline = time.monotonic() + timeout
    value = read()
    while value != want and time.monotonic() < deadline:
        time.sleep(0.02)
        value = read()
    return value


def stable(read: Callable[[], int], timeout: float = 10.0) -> int:
    """``read()`` once it gives the same value 10 times in a row (20 ms apart)."""
    deadline = time.monotonic() + timeout
    last, same = read(), 0
    while same < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
        now = read()
        same = same + 1 if now == last else 0
        last = now
    return last


def test_worker_raises_limit_and_logs_capacity_once(limited: Server) -> None:
    found = limited.wait_output(rf"open files limit {HARD} \(soft was {SOFT}, hard {HARD}\): capacity (\d+) live")
    health = limited.health()
    assert health["sockets"]["open_files_limit"] == HARD
    assert int(found.group(1)) == health["sockets"]["capacity"] > 0
    assert health["sockets"]["capacity"] + health["sockets"]["reserve"] == HARD
    assert limited.output().count("open files limit") == 1
    with open(f"/proc/{health['pid']}/limits") as f:
        line = next(x for x in f if x.startswith("Max open files"))
    assert line.split()[3:5] == [str(HARD), str(HARD)]


def test_one_fd_per_session_refusal_past_capacity_and_emfile(limited: Server) -> None:
    health = limited.health()
    pid, capacity = health["pid"], health["sockets"]["capacity"]
    page = fetch_page(limited.url, "/counter")
    inc = find_hid(page.html, "inc")

    async def open_one() -> Raw:
        ws = await Raw.connect(limited.url, cookie=page.cookie)
        assert (await ws.hello(page))[0] == protocol.WELCOME
        return ws

    async def go() -> None:
        base = stable(lambda: fd_count(pid))
        first = [await open_one() for _ in range(20)]
        assert settled(lambda: fd_count(pid), base + 20) == base + 20  # exactly one descriptor each
        rest = [await open_one() for _ in range(capacity - 20)]
        held = first + rest
        assert limited.health()["sockets"]["sockets"] == capacity
        before = metric(limited, "vango_refusals_total", reason="fd_limit")
        extra = await Raw.connect(limited.url, cookie=page.cookie)
        assert await extra.closed() == (Close.SERVER_BUSY, "server busy")
        assert metric(limited, "vango_refusals_total", reason="fd_limit") == before + 1

        # A flood of plain connections past the last descriptor: accept rests, nothing crashes.
        flood = []
        for _ in range(HARD):
            s = socket.create_connection((limited.host, limited.port), timeout=5)
            flood.append(s)
        limited.wait_output(r"pausing accept until descriptors free up")
        # Every session kept its socket and still answers a click.
        for i, ws in enumerate(held[:: max(1, len(held) // 10)]):
            await ws.send([protocol.EVENT, 1, inc, "click", None])
            frame = await ws.recv()
            assert frame[0] == protocol.PATCHES, frame
        for s in flood:
            s.close()
        held.pop().close()
        again = None
        deadline = time.monotonic() + 20
        while again is None and time.monotonic() < deadline:  # the closed session's socket frees a slot
            ws = await Raw.connect(limited.url, cookie=page.cookie)
            try:
                first_frame = await ws.hello(page)
            except tornado.websocket.WebSocketClosedError:  # refused (1013) before HELLO went out
                first_frame = None
            if first_frame and first_frame[0] == protocol.WELCOME:
                again = ws
            else:
                ws.close()
                await asyncio.sleep(0.05)
        assert again is not None, "no session admitted after one left"
        for ws in [*held, again]:
            ws.close()
        assert settled(lambda: limited.health()["sockets"]["sockets"], 0) == 0

    asyncio.run(go())
    limited.wait_output(r"accepting connections again after \d+ pauses")
    out = limited.output()
    assert "Traceback" not in out and "Exception in callback" not in out, out[-3000:]
    assert out.count("pausing accept") == 1
