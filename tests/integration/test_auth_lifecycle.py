"""Auth lifecycle over real sockets: the user before the first render, login/logout routes and their
cookies, logout on every worker, revocation within the interval (tests/apps/accountapp.py, 2 workers)."""

from __future__ import annotations

import asyncio
import urllib.parse

import pytest

from tests.conftest import Server, module_server
from vango_mp import protocol

from .accounts import Live, login, logout, open_live, page, request, set_cookies

pytestmark = pytest.mark.timeout(120)


srv = module_server("--workers", "2", "--app", "tests.apps.accountapp:app",
                    env={"VANGO_TRUSTED_PROXIES": "127.0.0.1"})


def is_nav_load(to: str):
    return lambda f: f[0] == protocol.NAV and f[3] == protocol.NAV_LOAD and f[2] == to


def test_login_sets_a_strict_cookie_and_redirects(srv: Server) -> None:
    cookie, status, headers = login(srv, "alice", "wonderland")
    assert status == 303 and headers["Location"] == "/profile"
    line = set_cookies(headers)["vango_login"]
    assert "HttpOnly" in line and "SameSite=Lax" in line
    assert "Secure" not in line  # plain HTTP from loopback: allowed without Secure (localhost is a secure context)
    _, status, headers = login(srv, "alice", "not-her-password")
    assert status == 303 and headers["Location"] == "/login?error=1"
    assert "vango_login" not in set_cookies(headers)
    _, status, headers = login(srv, "mallory", "wonderland")
    assert (status, headers["Location"]) == (303, "/login?error=1")


def test_login_cookie_is_secure_behind_tls(srv: Server) -> None:
    form, _ = page(srv, "/login")
    body = urllib.parse.urlencode({"_csrf": form.csrf, "username": "bob", "password": "builder"}).encode()
    status, headers, _ = request(srv, "POST", "/login", cookie=form.cookie, body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Forwarded-Proto": "https"})
    assert status == 303
    assert "Secure" in set_cookies(headers)["vango_login"]


def test_login_without_the_csrf_token_is_refused(srv: Server) -> None:
    form, _ = page(srv, "/login")
    body = urllib.parse.urlencode({"username": "alice", "password": "wonderland"}).encode()
    status, headers, text = request(srv, "POST", "/login", cookie=form.cookie, body=body,
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403 and b"CSRF" in text
    assert "vango_login" not in set_cookies(headers)


def test_first_html_and_first_live_render_have_the_user(srv: Server) -> None:
    status, headers, _ = request(srv, "GET", "/profile")
    assert (status, headers["Location"]) == (302, "/login")  # the guard, logged out
    cookie, _, _ = login(srv, "alice", "wonderland")

    async def run() -> None:
        live = await open_live(srv, "/profile", cookie)
        assert '<strong id="user" data-hid=' in live.page.html and ">Alice</strong>" in live.page.html
        # The live session mounted with the user: its first render hashes like the server's HTML,
        # so no FULL replaces the page (a PING's PONG is the next frame).
        await live.ws.send([protocol.PING, 1])
        frame = await live.ws.recv()
        assert frame[0] == protocol.S_PONG, frame
        live.ws.close()

    asyncio.run(run())


async def one_per_worker(srv: Server, cookie: str, path: str = "/profile") -> dict[int, Live]:
    """Live sessions of this browser until there is one on each of the two workers."""
    lives: dict[int, Live] = {}
    for _ in range(60):
        live = await open_live(srv, path, cookie)
        if live.worker in lives:
            live.ws.close()
        else:
            lives[live.worker] = live
        if len(lives) == 2:
            return lives
    raise AssertionError("never reached both workers")


def test_logout_reaches_every_session_of_the_user_on_every_worker(srv: Server) -> None:
    cookie, _, _ = login(srv, "bob", "builder")
    other, _, _ = login(srv, "alice", "wonderland")

    async def run() -> None:
        lives = await one_per_worker(srv, cookie)
        bystander = await open_live(srv, "/profile", other)
        status, headers = logout(srv, cookie)
        assert (status, headers["Location"]) == (303, "/login")
        assert "expires=Thu, 01 Jan 1970" in set_cookies(headers)["vango_login"]
        for live in lives.values():  # both workers, whichever answered the POST
            await live.frames_until(is_nav_load("/login"))
        # Alice is not Bob: her page stays.
        await bystander.ws.send([protocol.PING, 7])
        assert (await bystander.ws.recv())[0] == protocol.S_PONG
        for live in [*lives.values(), bystander]:
            live.ws.close()

    asyncio.run(run())


def test_a_revoked_user_is_logged_out_within_the_interval(srv: Server) -> None:
    from tests.apps.accountapp import INTERVAL

    cookie, _, _ = login(srv, "alice", "wonderland")

    async def run() -> None:
        lives = await one_per_worker(srv, cookie)
        form, _ = page(srv, "/login", cookie)
        status, _, _ = request(srv, "POST", "/revoke/alice", cookie=form.cookie, headers={"X-CSRF-Token": form.csrf})
        assert status == 200
        # Within one interval (plus the timer's quarter-interval tick), with slack for a loaded machine.
        for live in lives.values():
            await live.frames_until(is_nav_load("/login"), timeout=INTERVAL * 2 + 1)
        status, headers, _ = request(srv, "GET", "/profile", cookie=cookie)
        assert (status, headers["Location"]) == (302, "/login")  # the reload lands on the login page
        for live in lives.values():
            live.ws.close()

    asyncio.run(run())
    cookie, status, _ = login(srv, "alice", "wonderland")  # logging in again lifts it
    assert request(srv, "GET", "/profile", cookie=cookie)[0] == 200


def test_a_resume_on_the_other_worker_keeps_the_users_guarded_page(srv: Server) -> None:
    from .rawws import Raw

    cookie, _, _ = login(srv, "bob", "builder")

    async def run() -> None:
        live = await open_live(srv, "/profile", cookie)
        live.ws.close()
        for _ in range(60):
            ws = await Raw.connect(srv.url, cookie=live.page.cookie)
            welcome = await ws.hello(live.page, sid=live.sid, last_seq=0)
            assert welcome[0] == protocol.WELCOME and welcome[1] == live.sid, welcome
            if welcome[4] != live.worker:
                break
            ws.close()
        else:
            pytest.fail("never resumed on the other worker")
        # Remounted there with Bob already known: the same page, nothing to patch (no login form).
        await ws.send([protocol.PING, 3])
        assert (await ws.recv())[0] == protocol.S_PONG
        ws.close()

    asyncio.run(run())
