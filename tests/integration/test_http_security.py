"""The HTTP surface of a real one-worker server: security headers, hosts, proxies."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import urllib.request
from collections.abc import Iterator

import pytest
import tornado.httpclient
import tornado.websocket

from tests.conftest import Server, start_server

pytestmark = pytest.mark.timeout(60)

SECURITY = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


def request(server: Server, path: str, method: str = "GET", headers: dict[str, str] | None = None,
            data: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request, redirects not followed."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        conn.request(method, path, body=data, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


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


# -- hosts and proxies ---------------------------------------------------------

@pytest.fixture(scope="module")
def hosted() -> Iterator[Server]:
    """Allowed: good.test (any port) and www.good.test; canonical good.test; the test runner is a trusted proxy."""
    srv = start_server("--workers", "1", env={
        "VANGO_ALLOWED_HOSTS": "good.test,www.good.test", "VANGO_CANONICAL_HOST": "good.test",
        "VANGO_TRUSTED_PROXIES": "127.0.0.1",
    })
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def strict_hosts() -> Iterator[Server]:
    srv = start_server("--workers", "1", env={"VANGO_ALLOWED_HOSTS": "good.test"})
    yield srv
    srv.stop()


def ws_status(server: Server, host: str) -> int:
    """HTTP status of a WebSocket upgrade naming ``host`` (101 when it upgrades)."""
    async def go() -> int:
        req = tornado.httpclient.HTTPRequest(
            server.url.replace("http://", "ws://") + "/_vango/ws",
            headers={"Host": host, "Origin": f"http://{host}"})
        try:
            conn = await tornado.websocket.websocket_connect(req)
        except tornado.httpclient.HTTPClientError as err:
            return err.code
        conn.close()
        return 101

    return asyncio.run(go())


def test_a_foreign_host_is_refused(strict_hosts: Server) -> None:
    status, headers, _ = request(strict_hosts, "/counter", headers={"Host": "rebound.attacker.test"})
    assert status == 400
    assert_secure(headers, "400 host")
    assert request(strict_hosts, "/counter", headers={"Host": "good.test:8080"})[0] == 200
    assert request(strict_hosts, "/counter", method="POST", data=b"",
                   headers={"Host": "rebound.attacker.test"})[0] == 400


def test_a_foreign_host_cannot_upgrade(strict_hosts: Server) -> None:
    assert ws_status(strict_hosts, "rebound.attacker.test") == 400
    assert ws_status(strict_hosts, f"good.test:{strict_hosts.port}") == 101


def test_operational_endpoints_answer_any_host(strict_hosts: Server) -> None:
    assert request(strict_hosts, "/_vango/health", headers={"Host": "10.1.2.3"})[0] == 200


def test_other_hosts_are_redirected_to_the_canonical_one(hosted: Server) -> None:
    for host in ("www.good.test", "rebound.attacker.test"):
        status, headers, _ = request(hosted, "/counter?x=1", headers={"Host": host})
        assert status == 301 and headers["Location"] == "http://good.test/counter?x=1", host
    status, headers, _ = request(hosted, "/counter", headers={"Host": "www.good.test", "X-Forwarded-Proto": "https"})
    assert headers["Location"] == "https://good.test/counter"
    assert request(hosted, "/counter", headers={"Host": "good.test"})[0] == 200
    assert ws_status(hosted, "rebound.attacker.test") == 400


def csrf_cookie(headers: list[tuple[str, str]]) -> str:
    cookies = [v for k, v in headers if k.lower() == "set-cookie" and v.startswith("vango_csrf=")]
    assert len(cookies) == 1, headers
    return cookies[0]


def raw_headers(server: Server, path: str, headers: dict[str, str]) -> list[tuple[str, str]]:
    req = urllib.request.Request(server.url + path, headers=headers)
    with urllib.request.urlopen(req, timeout=5) as resp:
        return list(resp.headers.items())


def test_csrf_cookie_is_secure_behind_a_trusted_tls_proxy(hosted: Server, server: Server) -> None:
    https = {"Host": "good.test", "X-Forwarded-Proto": "https"}
    assert "; Secure" in csrf_cookie(raw_headers(hosted, "/counter", https))
    assert "; Secure" not in csrf_cookie(raw_headers(hosted, "/counter", {"Host": "good.test"}))
    # Not a trusted proxy: its X-Forwarded-Proto is not believed.
    assert "; Secure" not in csrf_cookie(raw_headers(server, "/counter", {"X-Forwarded-Proto": "https"}))


# -- operational endpoints -------------------------------------------------------

OPS_TOKEN = "ops-token-for-the-tests-0123456789"


@pytest.fixture(scope="module")
def ops_server() -> Iterator[Server]:
    """The test runner (127.0.0.1) is a trusted proxy, so X-Forwarded-For names the client."""
    srv = start_server("--workers", "1", env={
        "VANGO_TRUSTED_PROXIES": "127.0.0.1", "VANGO_OPS_TOKEN": OPS_TOKEN, "VANGO_OPS_NETWORKS": "198.51.100.0/24",
    })
    yield srv
    srv.stop()


def health_of(server: Server, headers: dict[str, str]) -> dict:
    status, _, body = request(server, "/_vango/health", headers=headers)
    assert status == 200
    return json.loads(body)


def test_health_details_only_for_operators(ops_server: Server) -> None:
    outsider = {"X-Forwarded-For": "203.0.113.5"}
    assert health_of(ops_server, outsider) == {"status": "ok"}
    for who in ({}, {"X-Forwarded-For": "198.51.100.7"}, {**outsider, "Authorization": f"Bearer {OPS_TOKEN}"}):
        report = health_of(ops_server, who)
        assert {"status", "worker", "pid", "sessions", "rss_bytes", "pressure"} <= report.keys(), who
    assert health_of(ops_server, {**outsider, "Authorization": "Bearer nope"}) == {"status": "ok"}


def test_metrics_only_for_operators(ops_server: Server) -> None:
    status, headers, _ = request(ops_server, "/_vango/metrics", headers={"X-Forwarded-For": "203.0.113.5"})
    assert status == 403
    assert_secure(headers, "403 metrics")
    status, _, body = request(ops_server, "/_vango/metrics",
                              headers={"X-Forwarded-For": "203.0.113.5", "Authorization": f"Bearer {OPS_TOKEN}"})
    assert status == 200 and b"vango_rss_bytes" in body
    assert request(ops_server, "/_vango/metrics")[0] == 200


def test_a_proxy_nobody_trusts_does_not_make_the_world_loopback(server: Server) -> None:
    assert health_of(server, {"X-Forwarded-For": "203.0.113.5"}) == {"status": "ok"}
    assert request(server, "/_vango/metrics", headers={"X-Forwarded-For": "203.0.113.5"})[0] == 403
