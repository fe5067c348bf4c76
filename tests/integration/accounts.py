"""Helpers for the auth-lifecycle and upload tests: log in over HTTP, open a live session, stream an upload."""

from __future__ import annotations

import http.client
import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from tests.conftest import Server
from vango_mp import protocol

from .rawws import Page, Raw


def request(srv: Server, method: str, path: str, *, cookie: str = "", body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request without following redirects."""
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={**({"Cookie": cookie} if cookie else {}), **(headers or {})})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def set_cookies(headers: http.client.HTTPMessage) -> dict[str, str]:
    """name -> the whole Set-Cookie line."""
    return {line.split("=", 1)[0]: line for line in headers.get_all("Set-Cookie") or []}


def page(srv: Server, path: str, cookie: str = "") -> tuple[Page, int]:
    """GET a page with ``cookie``; its CSRF token, cookie header (ours plus any it set), boot and HTML."""
    status, headers, body = request(srv, "GET", path, cookie=cookie)
    html = body.decode()
    found = re.search(r"window.__vango=(\{.*?\})</script>", html)
    boot = json.loads(found.group(1)) if found else {}
    jar = dict(part.split("=", 1) for part in cookie.split("; ") if "=" in part)
    jar.update({name: line.split(";", 1)[0].split("=", 1)[1] for name, line in set_cookies(headers).items()})
    return Page(boot.get("csrf", ""), "; ".join(f"{k}={v}" for k, v in jar.items()), boot, html), status


def login(srv: Server, username: str, password: str, cookie: str = "") -> tuple[str, int, http.client.HTTPMessage]:
    """POST the login form (with this browser's CSRF token); (cookie header after it, status, headers)."""
    form, _ = page(srv, "/login", cookie)
    body = urllib.parse.urlencode({"_csrf": form.csrf, "username": username, "password": password}).encode()
    status, headers, _ = request(srv, "POST", "/login", cookie=form.cookie, body=body,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    jar = dict(part.split("=", 1) for part in form.cookie.split("; "))
    for name, line in set_cookies(headers).items():
        jar[name] = line.split(";", 1)[0].split("=", 1)[1]
    return "; ".join(f"{k}={v}" for k, v in jar.items() if v), status, headers


def logout(srv: Server, cookie: str) -> tuple[int, http.client.HTTPMessage]:
    """POST /logout from the profile page (with this browser's CSRF token); (status, headers)."""
    form, _ = page(srv, "/profile", cookie)
    status, headers, _ = request(srv, "POST", "/logout", cookie=form.cookie,
                                 body=urllib.parse.urlencode({"_csrf": form.csrf}).encode(),
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    return status, headers


def hid_of(html: str, element_id: str) -> int:
    found = re.search(rf'<[^>]*\bid="{element_id}"[^>]*>', html)
    assert found, f"#{element_id} not in the page"
    return int(re.search(r'data-hid="(\d+)"', found.group(0)).group(1))  # type: ignore[union-attr]


@dataclass
class Live:
    """A live session: its socket, id, worker, and the page it was served with."""

    ws: Raw
    sid: str
    worker: int
    page: Page

    async def frames_until(self, predicate: Any, timeout: float = 10.0) -> list[Any]:
        """Read frames until one satisfies ``predicate``; all read (AssertionError at the deadline)."""
        import asyncio

        seen: list[Any] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"no such frame in {timeout}s; saw {seen[-5:]}")
            try:
                frame = await self.ws.recv(left)
            except asyncio.TimeoutError:
                continue
            if frame is None:
                raise AssertionError(f"socket closed ({self.ws.conn.close_code}); saw {seen[-5:]}")
            seen.append(frame)
            if predicate(frame):
                return seen


async def open_live(srv: Server, path: str, cookie: str) -> Live:
    served, status = page(srv, path, cookie)
    assert status == 200, status
    ws = await Raw.connect(srv.url, cookie=served.cookie)
    welcome = await ws.hello(served)
    assert welcome[0] == protocol.WELCOME, welcome
    return Live(ws, welcome[1], welcome[4], served)


def texts(frames: list[Any]) -> list[str]:
    """Every text a PATCHES/NAV frame set (SET_TEXT, or INSERT of a text node), in order."""
    out = []
    for frame in frames:
        patches = frame[2] if frame[0] == protocol.PATCHES else frame[5] if frame[0] == protocol.NAV else []
        out += [str(op[3]) for op in patches if op[0] == protocol.SET_TEXT
                or op[0] == protocol.INSERT and isinstance(op[3], str)]  # a text node where there was none
    return out


def attrs(frames: list[Any], name: str) -> list[str]:
    out = []
    for frame in frames:
        if frame[0] == protocol.PATCHES:
            out += [str(op[3]) for op in frame[2] if op[0] == protocol.SET_ATTR and op[2] == name]
    return out


def upload_headers(live: Live, files: list[tuple[str, str, int]]) -> dict[str, str]:
    return {"X-CSRF-Token": live.page.csrf, "X-Vango-Session": live.sid,
            "X-Vango-Files": quote(json.dumps([list(f) for f in files])), "Cookie": live.page.cookie,
            "Content-Type": "application/octet-stream"}


def stream_upload(srv: Server, path: str, headers: dict[str, str], chunks: Any, length: int,
                  on_chunk: Any = None) -> tuple[int, bytes]:
    """POST ``chunks`` (an iterable of bytes) with Content-Length ``length``; (status, body) or (0, b"") if cut."""
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=30)
    try:
        conn.putrequest("POST", path)
        for k, v in {**headers, "Content-Length": str(length)}.items():
            conn.putheader(k, v)
        conn.endheaders()
        for i, chunk in enumerate(chunks):
            conn.send(chunk)
            if on_chunk is not None:
                on_chunk(i)
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (ConnectionError, http.client.HTTPException):
        return 0, b""
    finally:
        conn.close()
