"""Who may see ``/_vango/status``: nobody when off; loopback or the status token when on."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.conftest import Server, start_server
from vango_mp.testing import TestClient

from .test_http_security import request

TOKEN = "status-token-0123456789"
OUTSIDE = {"X-Forwarded-For": "203.0.113.5"}  # relayed by an untrusted proxy: not a loopback client


@pytest.fixture(scope="module")
def on() -> Iterator[Server]:
    srv = start_server("--workers", "1", env={"VANGO_STATUS_PAGE": "1", "VANGO_STATUS_TOKEN": TOKEN})
    yield srv
    srv.stop()


def test_off_unless_enabled(server: Server) -> None:
    for path in ("/_vango/status", "/_vango/status.css", "/_vango/status/ws"):
        assert request(server, path)[0] == 404, path


def test_loopback_sees_it_outsiders_do_not(on: Server) -> None:
    status, headers, body = request(on, "/_vango/status")
    assert status == 200 and b'data-worker="0"' in body
    assert "unsafe-inline" not in headers["Content-Security-Policy"].split("script-src")[1].split(";")[0]
    assert request(on, "/_vango/status", headers=OUTSIDE)[0] == 403
    assert request(on, "/_vango/status", headers={**OUTSIDE, "Authorization": "Bearer wrong-token-xxxxxxx"})[0] == 403
    assert request(on, "/_vango/status", headers={**OUTSIDE, "Authorization": f"Bearer {TOKEN}"})[0] == 200


def test_token_in_the_url_once_becomes_a_scoped_cookie(on: Server) -> None:
    status, headers, _ = request(on, f"/_vango/status?token={TOKEN}", headers=OUTSIDE)
    assert status == 303 and headers["Location"] == "/_vango/status"
    cookie = headers["Set-Cookie"]
    assert "Path=/_vango/status" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert TOKEN not in cookie
    jar = cookie.split(";", 1)[0]
    assert request(on, "/_vango/status", headers={**OUTSIDE, "Cookie": jar})[0] == 200
    assert request(on, "/_vango/status", headers={**OUTSIDE, "Cookie": jar[:-2] + "00"})[0] == 403


def test_live_over_its_socket_with_csrf_and_origin_checks_on(on: Server) -> None:
    """Not --dev: the page's socket passes the same CSRF and origin checks as any page, and patches arrive."""
    async def go() -> None:
        async with TestClient(on.url) as c:
            page = await c.open("/_vango/status")
            assert [n.attrs["data-worker"] for n in page.query_all("[data-worker]")] == ["0"]
            before = int(page.text("[data-worker] .attached"))
            counter = await c.open("/counter")
            await page.wait_for(lambda p: int(p.text("[data-worker] .attached")) == before + 1, timeout=5)
            await counter.disconnect()
            await page.wait_for(lambda p: int(p.text("[data-worker] .detached")) >= 1, timeout=5)

    asyncio.run(go())
    assert request(on, "/_vango/status", method="POST")[0] == 405
    assert request(on, "/_vango/status", method="HEAD")[0] == 200
