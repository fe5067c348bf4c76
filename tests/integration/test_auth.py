"""AuthResumePolicy: an authenticated session never resumes on its id alone (strict)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import Server, start_server, vango_command
from vango_mp import protocol
from vango_mp.protocol import Close

from .rawws import Page, Raw, fetch_page

pytestmark = pytest.mark.timeout(90)


def serve(app: str, workers: int = 1, **env: str) -> Iterator[Server]:
    srv = start_server("--workers", str(workers), "--app", f"tests.apps.authapp:{app}", env=env)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def strict() -> Iterator[Server]:
    yield from serve("strict", workers=2)


@pytest.fixture(scope="module")
def start_only() -> Iterator[Server]:
    yield from serve("start_only")


@pytest.fixture(scope="module")
def guest_hook() -> Iterator[Server]:
    yield from serve("guest_hook")


@pytest.fixture(scope="module")
def trust() -> Iterator[Server]:
    yield from serve("trust", workers=2, VANGO_RESUME_WINDOW="30s")


async def start(srv: Server, user: str | None) -> tuple[Page, str, int, str]:
    page = fetch_page(srv.url, "/")
    cookie = page.cookie + (f"; user={user}" if user else "")
    ws = await Raw.connect(srv.url, cookie=cookie)
    welcome = await ws.hello(page)
    assert welcome[0] == protocol.WELCOME
    ws.close()
    return page, welcome[1], welcome[4], cookie


async def resume(srv: Server, page: Page, sid: str, cookie: str, worker: int | None = None) -> tuple[int | None, int | None]:
    """Resume ``sid``; returns (worker that welcomed or None, close code or None).

    With ``worker`` set, retries until the socket lands there (the 101 names it).
    """
    for _ in range(200):
        ws = await Raw.connect(srv.url, cookie=cookie)
        landed = int(ws.conn.headers.get("X-Vango-Worker"))
        if worker is not None and landed != worker:
            ws.close()
            continue
        welcome = await ws.hello(page, sid=sid)
        if welcome is None:
            return None, ws.conn.close_code
        ws.close()  # a resume racing this close still wins: the newer socket takes over
        return welcome[4], None
    raise AssertionError("never landed on the wanted worker")


def test_strict_resume_revalidates_with_auth_func(strict: Server) -> None:
    async def go() -> None:
        page, sid, worker, cookie = await start(strict, "alice")
        assert await resume(strict, page, sid, cookie, worker) == (worker, None)
        assert await resume(strict, page, sid, page.cookie, worker) == (None, Close.NOT_AUTHORIZED)

    asyncio.run(go())


def test_strict_holds_on_another_worker_too(strict: Server) -> None:
    async def go() -> None:
        page, sid, worker, cookie = await start(strict, "bob")
        other = 1 - worker
        assert await resume(strict, page, sid, page.cookie, other) == (None, Close.NOT_AUTHORIZED)
        # The adopter holds it now; with the credential it resumes.
        assert await resume(strict, page, sid, cookie, other) == (other, None)

    asyncio.run(go())


def test_strict_without_revalidation_hooks_refuses_authenticated(start_only: Server) -> None:
    async def go() -> None:
        page, sid, _, cookie = await start(start_only, "carol")
        assert await resume(start_only, page, sid, cookie) == (None, Close.NOT_AUTHORIZED)

    asyncio.run(go())


def test_guest_resumes_without_hooks(start_only: Server) -> None:
    async def go() -> None:
        page, sid, worker, cookie = await start(start_only, None)
        assert await resume(start_only, page, sid, cookie) == (worker, None)

    asyncio.run(go())


def test_guest_resumes_even_when_resume_hook_raises(guest_hook: Server) -> None:
    async def go() -> None:
        page, sid, worker, cookie = await start(guest_hook, None)
        assert await resume(guest_hook, page, sid, cookie) == (worker, None)

    asyncio.run(go())


def test_trust_session_id_resumes_in_memory_only(trust: Server) -> None:
    async def go() -> None:
        page, sid, worker, cookie = await start(trust, "dave")
        # Same worker, no credential: trusted on the id alone.
        assert await resume(trust, page, sid, page.cookie, worker) == (worker, None)
        # Another worker: the user object did not travel; without hooks, refused.
        assert await resume(trust, page, sid, page.cookie, 1 - worker) == (None, Close.NOT_AUTHORIZED)

    asyncio.run(go())


@pytest.mark.parametrize(
    "app, env, fragment",
    [
        ("trust_unacknowledged", {}, "allow_trust_session_id_in_production"),
        ("trust", {"VANGO_RESUME_WINDOW": "5m"}, "resume_window <= 30s"),
    ],
)
def test_trust_session_id_misconfig_refused_at_startup(app: str, env: dict[str, str], fragment: str) -> None:
    import os

    from tests.conftest import ROOT

    proc = subprocess.run(
        [*vango_command(), "--workers", "1", "--bind", "127.0.0.1:0", "--app", f"tests.apps.authapp:{app}"],
        capture_output=True, text=True, timeout=30, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )
    assert proc.returncode == 2
    assert fragment in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
