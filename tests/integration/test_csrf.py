"""One CSRF token per browser (double submit): stable across tabs and page loads."""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator

import pytest

from tests.conftest import Server, start_server

pytestmark = pytest.mark.timeout(60)


def get(server: Server, path: str, cookie: str | None = None) -> tuple[int, list[tuple[str, str]], str]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read().decode()
    finally:
        conn.close()


def set_cookies(headers: list[tuple[str, str]]) -> dict[str, str]:
    found = [v.split(";", 1)[0].split("=", 1) for k, v in headers if k.lower() == "set-cookie"]
    return {name: value for name, value in found}


def boot_token(html: str) -> str:
    return json.loads(re.search(r"window.__vango=(\{.*?\})</script>", html).group(1))["csrf"]  # type: ignore[union-attr]


def test_a_browser_keeps_one_token_across_tabs_and_loads(server: Server) -> None:
    _, headers, html = get(server, "/counter")
    token = set_cookies(headers)["vango_csrf"]
    assert boot_token(html) == token
    cookie = f"vango_csrf={token}"
    for path in ("/counter", "/todos", "/", "/counter"):
        _, headers, html = get(server, path, cookie)
        assert "vango_csrf" not in set_cookies(headers), path
        assert boot_token(html) == token, path


def test_an_invalid_cookie_is_replaced(server: Server) -> None:
    _, headers, html = get(server, "/counter", "vango_csrf=forged.token")
    token = set_cookies(headers)["vango_csrf"]
    assert token != "forged.token" and boot_token(html) == token


def test_the_token_endpoint_answers_the_cookie_it_sees(server: Server) -> None:
    status, headers, body = get(server, "/_vango/csrf")
    token = json.loads(body)["token"]
    assert status == 200 and set_cookies(headers) == {"vango_csrf": token}
    assert dict(headers)["Cache-Control"] == "no-store"
    assert dict(headers)["Content-Type"].startswith("application/json")
    status, headers, body = get(server, "/_vango/csrf", f"vango_csrf={token}")
    assert json.loads(body) == {"token": token} and set_cookies(headers) == {}


@pytest.fixture(scope="module")
def web() -> Iterator[Server]:
    srv = start_server("--workers", "1", "--app", "tests.apps.webapp:web")
    yield srv
    srv.stop()


def test_server_rendered_forms_carry_the_browser_token(web: Server) -> None:
    _, headers, html = get(web, "/form")
    token = set_cookies(headers)["vango_csrf"]
    field = re.search(r'<input type="hidden" name="_csrf" value="([^"]*)"', html)
    assert field and field.group(1) == token
    _, _, html = get(web, "/form", f"vango_csrf={token}")
    assert f'name="_csrf" value="{token}"' in html
