"""A session id is not a bearer token: a resume must come from the session's browser and, once
authenticated, as the same user; a refused resume never disturbs the live owner (issue 17.2).

The victim is alice, logged in (``user`` cookie, strict policy with auth_func) and attached with
her socket open. The attempts come on her worker and on the other one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.conftest import Server, start_server
from vango_mp import protocol
from vango_mp.protocol import Close

from .rawws import Page, Raw, fetch_page
from .test_live_protocol import find_hid

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def strict() -> Iterator[Server]:
    srv = start_server("--workers", "2", "--app", "tests.apps.authapp:strict")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def guests() -> Iterator[Server]:
    srv = start_server("--workers", "2", "--app", "tests.apps.authapp:guest_hook")
    yield srv
    srv.stop()


async def on_worker(srv: Server, cookie: str, worker: int) -> Raw:
    """A socket (no HELLO yet) on ``worker``: the 101 names it."""
    for _ in range(200):
        ws = await Raw.connect(srv.url, cookie=cookie)
        if ws.conn.headers.get("X-Vango-Worker") == str(worker):
            return ws
        ws.close()
    raise AssertionError(f"never landed on worker {worker}")


async def victim(srv: Server, user: str | None) -> tuple[Page, Raw, str, int, str]:
    page = fetch_page(srv.url, "/")
    cookie = page.cookie + (f"; user={user}" if user else "")
    ws = await Raw.connect(srv.url, cookie=cookie)
    welcome = await ws.hello(page)
    assert welcome[0] == protocol.WELCOME
    if welcome[2] > 0:  # the page came from the other worker: a FULL follows
        assert (await ws.recv())[0] == protocol.FULL
    # A first click: the page renders her user from now on (the SSR had none; issue 11).
    await ws.send([protocol.EVENT, 1, find_hid(page.html, "inc"), "click", None])
    assert (await ws.recv())[0] == protocol.PATCHES
    return page, ws, welcome[1], welcome[4], cookie


async def still_owned(ws: Raw, page: Page, clicks: int) -> None:
    """The victim's socket is open and her session still answers her, as her.

    A click re-renders the page, user line included: had a refused resume
    cleared her user, this patch would say so.
    """
    assert ws.conn.close_code is None
    await ws.send([protocol.EVENT, 100 + clicks, find_hid(page.html, "inc"), "click", None])
    patch = await ws.recv()
    assert patch is not None and patch[0] == protocol.PATCHES, (patch, ws.conn.close_code)
    assert [op[-1] for op in patch[2]] == [f"clicks={clicks + 2}"], patch


async def attempt(srv: Server, page: Page, cookie: str, sid: str, worker: int) -> int | None:
    """Resume ``sid`` with ``cookie`` on ``worker``; the close code (None: it was accepted)."""
    ws = await on_worker(srv, cookie, worker)
    welcome = await ws.hello(page, sid=sid)
    if welcome is not None and welcome[0] == protocol.WELCOME:
        ws.close()
        return None
    return ws.conn.close_code


@pytest.mark.parametrize("where", ["same worker", "other worker"])
def test_refused_resumes_leave_the_logged_in_owner_alone(strict: Server, where: str) -> None:
    async def go() -> None:
        page, ws, sid, worker, cookie = await victim(strict, "alice")
        target = worker if where == "same worker" else 1 - worker
        stranger = fetch_page(strict.url, "/")  # another browser: its own CSRF cookie
        attempts = [
            (page, page.cookie),  # her browser's cookie, no login: anonymous
            (page, page.cookie + "; user=mallory"),  # her browser's cookie, another user
            (stranger, stranger.cookie),  # another browser, anonymous
            (stranger, stranger.cookie + "; user=alice"),  # another browser, even as alice
        ]
        for n, (p, c) in enumerate(attempts):
            assert await attempt(strict, p, c, sid, target) == Close.NOT_AUTHORIZED, n
            await still_owned(ws, page, n)  # not kicked (no 4009), not logged out, not moved
        # Her own browser, as herself: accepted (and the new socket takes over).
        assert await attempt(strict, page, cookie, sid, target) is None

    asyncio.run(go())


@pytest.mark.parametrize("where", ["same worker", "other worker"])
def test_a_guest_session_resumes_only_in_its_own_browser(guests: Server, where: str) -> None:
    async def go() -> None:
        page, ws, sid, worker, cookie = await victim(guests, None)
        target = worker if where == "same worker" else 1 - worker
        stranger = fetch_page(guests.url, "/")
        assert await attempt(guests, stranger, stranger.cookie, sid, target) == Close.NOT_AUTHORIZED
        await still_owned(ws, page, 0)
        ws.close()
        assert await attempt(guests, page, cookie, sid, target) is None  # same id, same browser

    asyncio.run(go())
