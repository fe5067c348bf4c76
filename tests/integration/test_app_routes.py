"""App routes against a real one-worker server: methods, CSRF, middleware, responses, cookies, redirects."""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from tests.conftest import Server, start_server

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def web() -> Iterator[Server]:
    """tests.apps.webapp:web; the test runner is a trusted proxy (X-Forwarded-* name the browser)."""
    srv = start_server("--workers", "1", "--app", "tests.apps.webapp:web", env={
        "VANGO_ALLOWED_REDIRECT_HOSTS": "accounts.example", "VANGO_TRUSTED_PROXIES": "127.0.0.1",
    })
    yield srv
    srv.stop()


class Browser:
    """A cookie jar and plain requests, no redirects followed."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.cookies: dict[str, str] = {}

    def call(self, method: str, path: str, *, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
        conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=5)
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            conn.request(method, path, body=body, headers=sent)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        for line in resp.headers.get_all("Set-Cookie") or []:
            name, _, value = line.split(";", 1)[0].partition("=")
            self.cookies[name] = value
        return resp.status, resp.headers, data

    def token(self) -> str:
        """Load a page (as a browser does first): the CSRF cookie and the token of the form."""
        _, _, html = self.call("GET", "/form")
        found = re.search(r'name="_csrf" value="([^"]+)"', html.decode())
        assert found and found.group(1) == self.cookies["vango_csrf"]
        return found.group(1)

    def post_form(self, path: str, fields: dict[str, str]) -> tuple[int, http.client.HTTPMessage, bytes]:
        return self.call("POST", path, body=urlencode(fields).encode(),
                         headers={"Content-Type": "application/x-www-form-urlencoded"})


def test_a_json_endpoint_with_params_query_and_middleware(web: Server) -> None:
    status, headers, body = Browser(web).call("GET", "/api/hello/ada?lang=fr")
    assert status == 200 and headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(body) == {"hello": "ada", "lang": "fr", "order": ["tag", "who"]}
    assert headers["X-Middleware"] == "tag,who"
    assert headers["X-Frame-Options"] == "DENY", "app routes get the security headers too"


def test_middleware_wraps_pages_and_can_short_circuit(web: Server) -> None:
    browser = Browser(web)
    status, headers, _ = browser.call("GET", "/counter")
    assert status == 200 and headers["X-Middleware"] == "tag,who"
    status, headers, body = browser.call("GET", "/api/private/me")
    assert status == 401 and json.loads(body) == {"error": "login first"}
    assert headers["X-Middleware"] == "tag,who"
    browser.cookies["user"] = "ada"
    assert browser.call("GET", "/api/private/me")[2] == b"user=ada"


def test_a_form_post_with_the_token_redirects_and_sets_a_cookie(web: Server) -> None:
    browser = Browser(web)
    token = browser.token()
    status, headers, _ = browser.post_form("/feedback", {"_csrf": token, "text": "great"})
    assert status == 303 and headers["Location"] == "/form?sent=1"
    assert browser.cookies["last_feedback"].isdigit()
    set_cookie = headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie and "Secure" not in set_cookie
    assert "great" in json.loads(browser.call("GET", "/api/feedback")[2])
    _, _, html = browser.call("GET", "/form?sent=1")
    assert re.search(rb'id="sent"[^>]*>Thanks!</p>', html)


@pytest.mark.parametrize("fields, headers", [
    ({"text": "no token"}, {}),
    ({"text": "forged", "_csrf": "x.y"}, {}),
    ({"text": "another browser's token"}, "other"),
])
def test_unsafe_methods_without_this_browsers_token_are_refused(web: Server, fields, headers) -> None:
    browser = Browser(web)
    browser.token()
    if headers == "other":
        fields = {**fields, "_csrf": Browser(web).token()}
        headers = {}
    status, _, body = browser.post_form("/feedback", fields)
    assert status == 403 and b"CSRF" in body
    assert fields["text"] not in json.loads(browser.call("GET", "/api/feedback")[2]), "the handler never ran"


def test_the_token_in_a_header_for_json(web: Server) -> None:
    browser = Browser(web)
    token = browser.token()
    for method in ("POST", "PUT"):
        status, _, body = browser.call(method, "/api/echo", body=b'{"n": 1}',
                                       headers={"Content-Type": "application/json", "X-CSRF-Token": token})
        assert status == 200 and json.loads(body) == {"method": method, "got": {"n": 1}}
    assert browser.call("PUT", "/api/echo", body=b"{}", headers={"X-CSRF-Token": "nope"})[0] == 403
    assert browser.call("DELETE", "/api/nothing", headers={"X-CSRF-Token": token})[0] == 204


def test_a_route_may_opt_out_of_csrf(web: Server) -> None:
    status, headers, body = Browser(web).call("POST", "/hook", body=b"{}")
    assert (status, body, headers["X-Hook"]) == (202, b"hooked", "1")


def test_methods_and_not_found(web: Server) -> None:
    browser = Browser(web)
    status, headers, _ = browser.call("POST", "/api/hello/ada", body=b"")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    status, headers, _ = browser.call("GET", "/feedback")
    assert status == 405 and headers["Allow"] == "POST"
    token = browser.token()
    status, _, body = browser.post_form("/counter", {"_csrf": token})
    assert (status, body) == (200, b"posted to the counter")
    assert b"Count: 0" in browser.call("GET", "/counter")[2]
    status, headers, body = browser.call("HEAD", "/api/hello/ada")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0
    status, _, _ = browser.call("GET", "/api/nope")
    assert status == 404


def test_status_and_headers(web: Server) -> None:
    status, headers, body = Browser(web).call("GET", "/api/teapot")
    assert (status, body, headers["X-Custom"], headers["Cache-Control"]) == (418, b"short and stout", "yes",
                                                                            "max-age=60")


def test_a_page_sets_status_headers_cookies_or_redirects(web: Server) -> None:
    browser = Browser(web)
    status, headers, body = browser.call("GET", "/gone")
    assert status == 410 and headers["X-Page"] == "gone" and b'id="gone"' in body
    assert browser.cookies["seen_gone"] == "1"
    status, headers, body = browser.call("GET", "/moved")
    assert status == 301 and headers["Location"] == "/counter" and body == b""


def test_strict_cookies_need_https_except_from_loopback(web: Server) -> None:
    browser = Browser(web)
    status, headers, _ = browser.call("GET", "/api/cookie")  # loopback, plain HTTP: local development
    assert status == 200 and "Secure" not in headers["Set-Cookie"] and "HttpOnly" in headers["Set-Cookie"]
    assert "Max-Age=3600" in headers["Set-Cookie"]
    outside = {"X-Forwarded-For": "203.0.113.5"}
    status, headers, _ = browser.call("GET", "/api/cookie", headers={**outside, "X-Forwarded-Proto": "https"})
    assert status == 200 and "; Secure" in headers["Set-Cookie"]
    status, _, _ = browser.call("GET", "/api/cookie", headers=outside)  # the world, plain HTTP
    assert status == 500
    web.wait_output(r"secure cookies require HTTPS")


def test_redirects_leave_only_for_allowed_hosts(web: Server) -> None:
    browser = Browser(web)
    status, headers, _ = browser.call("GET", "/go/accounts")
    assert status == 302 and headers["Location"] == "https://accounts.example/login?next=%2F"
    for target in ("https://evil.example/", "https://accounts.example@evil.example/", "javascript:alert(1)",
                   "//evil.example/"):
        status, headers, _ = browser.call("GET", "/go/elsewhere?" + urlencode({"to": target}))
        assert status == 500 and "Location" not in headers, target
