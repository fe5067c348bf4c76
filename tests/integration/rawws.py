"""A bare WebSocket peer for protocol-abuse tests (the test client is too polite)."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from dataclasses import dataclass
from typing import Any

import msgpack
import tornado.httpclient
import tornado.websocket

from vango_mp import protocol


@dataclass
class Page:
    csrf: str
    cookie: str
    boot: dict[str, Any]
    html: str


def fetch_page(base: str, path: str) -> Page:
    """GET a page; return its CSRF token, cookie header and bootstrap object."""
    with urllib.request.urlopen(base + path, timeout=5) as resp:
        html = resp.read().decode()
        cookies = resp.headers.get_all("Set-Cookie") or []
    boot = json.loads(re.search(r"window.__vango=(\{.*?\})</script>", html).group(1))  # type: ignore[union-attr]
    cookie = "; ".join(c.split(";", 1)[0] for c in cookies)
    return Page(boot["csrf"], cookie, boot, html)


class Raw:
    """One WebSocket with helpers to send frames and read decoded ones."""

    def __init__(self, conn: tornado.websocket.WebSocketClientConnection) -> None:
        self.conn = conn

    @classmethod
    async def connect(cls, base: str, *, cookie: str = "", origin: str | None = None) -> Raw:
        url = base.replace("http://", "ws://") + "/_vango/ws"
        headers = {"Origin": origin if origin is not None else base}
        if cookie:
            headers["Cookie"] = cookie
        req = tornado.httpclient.HTTPRequest(url, headers=headers)
        return cls(await tornado.websocket.websocket_connect(req))

    async def hello(self, page: Page, path: str | None = None, sid: str | None = None, last_seq: int = 0) -> list[Any]:
        await self.send([protocol.HELLO, 1, page.csrf, path or page.boot["path"], sid, last_seq, page.boot["h"]])
        return await self.recv()

    async def send(self, frame: list[Any]) -> None:
        await self.conn.write_message(b"\x00" + msgpack.packb(frame), binary=True)

    async def send_bytes(self, data: bytes | str, binary: bool = True) -> None:
        await self.conn.write_message(data, binary=binary)

    async def recv(self, timeout: float = 5.0) -> Any:
        """The next decoded frame, or None once the server closed."""
        msg = await asyncio.wait_for(self.conn.read_message(), timeout)
        return None if msg is None else protocol.unpack_message(msg, 1 << 24)

    async def closed(self, timeout: float = 5.0) -> tuple[int | None, str | None]:
        """Read until the server closes; return (code, reason)."""
        async def drain() -> None:
            while await self.conn.read_message() is not None:
                pass

        await asyncio.wait_for(drain(), timeout)
        return self.conn.close_code, self.conn.close_reason

    def close(self) -> None:
        self.conn.close()
