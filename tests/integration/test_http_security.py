"""The HTTP surface of a real one-worker server: security headers on every response."""

from __future__ import annotations

import re
import urllib.request

import pytest

from tests.conftest import Server

pytestmark = pytest.mark.timeout(60)

SECURITY = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


def request(server: Server, path: str, method: str = "GET", headers: dict[str, str] | None = None,
            data: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(server.url + path, method=method, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def assert_secure(headers: dict[str, str], what: str) -> str:
    for name, value in SECURITY.items():
        assert headers.get(name) == value, (what, name, headers)
    csp = headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in csp, what
    script_src = re.search(r"script-src ([^;]*)", csp)
    assert script_src and "'unsafe-inline'" not in script_src.group(1) and "unsafe-eval" not in csp, what
    return csp


@pytest.mark.parametrize("path, method, status", [
    ("/", "GET", 200), ("/counter", "GET", 200), ("/nope/at/all", "GET", 404),
    ("/_vango/vango.js", "GET", 200), ("/_vango/health", "GET", 200), ("/_vango/metrics", "GET", 200),
    ("/counter", "DELETE", 405), ("/_vango/ws", "GET", 400),
])
def test_every_response_carries_the_security_headers(server: Server, path: str, method: str, status: int) -> None:
    got, headers, _ = request(server, path, method)
    assert got == status
    assert_secure(headers, f"{method} {path}")


def test_a_not_modified_script_keeps_the_headers(server: Server) -> None:
    _, headers, _ = request(server, "/_vango/vango.js")
    status, headers304, _ = request(server, "/_vango/vango.js", headers={"If-None-Match": headers["Etag"]})
    assert status == 304
    assert_secure(headers304, "304 vango.js")


def test_the_bootstrap_script_carries_the_response_nonce(server: Server) -> None:
    nonces = []
    for _ in range(2):
        _, headers, body = request(server, "/counter")
        csp = assert_secure(headers, "page")
        nonce = re.search(r"'nonce-([A-Za-z0-9_-]+)'", csp).group(1)  # type: ignore[union-attr]
        scripts = re.findall(r"<script([^>]*)>", body.decode())
        inline = [attrs for attrs in scripts if "src=" not in attrs]
        assert inline == [f' nonce="{nonce}"'], scripts
        nonces.append(nonce)
    assert nonces[0] != nonces[1], "a nonce is never reused"
