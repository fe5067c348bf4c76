"""A lean WebSocket client for load at scale: raw frames on ``asyncio.Protocol``, thousands of peers per process.

One :class:`Peer` is one connection (~4 KiB of client memory, measured by
bench/scale.py as client_rss_per_peer_kib; no task of
its own). :class:`VangoPeer` speaks vango's protocol as ``vango.js`` does
(HELLO, EVENT, PATCHES taken in order by seq (not applied to a DOM), ACK every 16 frames or 1 s,
PING answered); :class:`EchoPeer` speaks the bare echo baseline's ("click"
-> "Count: N"). Peers bind to a loopback source address of their own
(``127.0.0.x``) so that ports do not run out past ~28,000 connections.

Used by ``bench/scale.py`` (idle sessions by the thousand) and
``bench/baseline.py`` (clicks flat out, vango-mp next to a bare Tornado echo).
Loopback only: :func:`check_loopback` refuses any other host.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import json
import os
import re
import struct
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
from tornado.util import _websocket_mask  # the C mask of the server's own library

from vango_mp import protocol

MAX_MESSAGE = 1 << 24
ACK_DELAY, ACK_EVERY = 1.0, 16  # as vango.js
_OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING, _OP_PONG = 1, 2, 8, 9, 10


def check_loopback(host: str) -> None:
    if not (host.startswith("127.") or host in ("localhost", "::1")):
        raise SystemExit(f"{host}: this bench talks to loopback addresses only")


def source_address(index: int, sources: int) -> str:
    """The loopback source address of the ``index``-th peer: 127.0.0.2 .. 127.0.0.(1+sources), then 127.0.1.x."""
    n = 1 + index % max(1, sources)
    return f"127.0.{n // 254}.{n % 254 + 1}"


@dataclass
class PageInfo:
    """What a browser learns from a page load and what every tab of that browser may share."""

    cookie: str
    csrf: str
    path: str
    ssr_hash: str | None
    html: str

    def hid(self, element_id: str) -> int:
        tag = re.search(rf'<[^>]*id="{re.escape(element_id)}"[^>]*>', self.html)
        if tag is None:
            raise LookupError(f"no #{element_id} on {self.path}")
        found = re.search(r'data-hid="(\d+)"', tag.group(0))
        if found is None:
            raise LookupError(f"#{element_id} on {self.path} has no data-hid")
        return int(found.group(1))


def fetch_page(base: str, path: str, timeout: float = 10.0) -> PageInfo:
    """GET ``path``: its CSRF cookie and token, SSR hash and HTML."""
    with urllib.request.urlopen(base + path, timeout=timeout) as resp:
        html = resp.read().decode()
        cookies = resp.headers.get_all("Set-Cookie") or []
    boot_text = re.search(r"window.__vango=(\{.*?\})</script>", html)
    if boot_text is None:
        raise LookupError(f"{path}: no bootstrap object in the page")
    boot = json.loads(boot_text.group(1))
    return PageInfo("; ".join(c.split(";", 1)[0] for c in cookies), boot["csrf"], boot["path"], boot.get("h"), html)


class Peer(asyncio.Protocol):
    """One client WebSocket: the upgrade, masked frames out, frames in (``on_message``)."""

    def __init__(self, host: str, port: int, path: str, cookie: str = "") -> None:
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
                        f"Sec-WebSocket-Version: 13\r\nOrigin: http://{host}:{port}\r\n"
                        + (f"Cookie: {cookie}\r\n" if cookie else "") + "\r\n").encode()
        loop = asyncio.get_running_loop()
        self.upgraded: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[tuple[int, str]] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.open = False
        self.closing = False  # we closed it

    # -- asyncio.Protocol --------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.open:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buf[:self.buf.find(b"\r\n")]).decode(errors="replace")
            del self.buf[:end + 4]
            if " 101 " not in status + " ":
                self._fail(f"http {status.split(' ', 2)[1] if ' ' in status else status}")
                return
            self.open = True
            if not self.upgraded.done():
                self.upgraded.set_result(None)
        self._frames()

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if not self.upgraded.done():
            self.upgraded.set_exception(ConnectionError("eof before upgrade"))
        if not self.closed.done():
            self.closed.set_result((1006, "eof"))
        self.on_closed()

    # -- frames ------------------------------------------------------------------

    def _frames(self) -> None:
        buf = self.buf
        while len(buf) >= 2:
            b1, b2 = buf[0], buf[1]
            length, at = b2 & 0x7F, 2
            if length == 126:
                if len(buf) < 4:
                    return
                length, at = struct.unpack_from(">H", buf, 2)[0], 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length, at = struct.unpack_from(">Q", buf, 2)[0], 10
            if length > MAX_MESSAGE:
                self._fail("frame too large")
                return
            if len(buf) < at + length:
                return
            payload = bytes(buf[at:at + length])
            del buf[:at + length]
            opcode = b1 & 0x0F
            if opcode in (_OP_TEXT, _OP_BINARY):
                self.on_message(payload)
            elif opcode == _OP_CLOSE:
                code = struct.unpack_from(">H", payload)[0] if len(payload) >= 2 else 1005
                if not self.closed.done():
                    self.closed.set_result((code, payload[2:].decode(errors="replace")))
                self._write(_OP_CLOSE, payload[:2])
                if self.transport is not None:
                    self.transport.close()
                return
            elif opcode == _OP_PING:
                self._write(_OP_PONG, payload)

    def _write(self, opcode: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        n = len(payload)
        head = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else
                                         struct.pack(">BH", 0x80 | 126, n) if n < 65536 else
                                         struct.pack(">BQ", 0x80 | 127, n))
        mask = os.urandom(4)
        self.transport.write(head + mask + _websocket_mask(mask, payload))

    def send(self, payload: bytes, text: bool = False) -> None:
        self._write(_OP_TEXT if text else _OP_BINARY, payload)

    def close(self) -> None:
        self.closing = True
        if self.transport is not None and not self.transport.is_closing():
            self._write(_OP_CLOSE, struct.pack(">H", 1000))
            self.transport.close()

    def _fail(self, reason: str) -> None:
        if not self.upgraded.done():
            self.upgraded.set_exception(ConnectionError(reason))
        if not self.closed.done():
            self.closed.set_result((1006, reason))
        if self.transport is not None:
            self.transport.close()

    # -- for subclasses ----------------------------------------------------------

    def on_message(self, payload: bytes) -> None:
        pass

    def on_closed(self) -> None:
        pass


class VangoPeer(Peer):
    """A ``vango.js`` stand-in: HELLO, in-order PATCHES, batched ACKs; ``click`` awaits the patch it caused."""

    def __init__(self, host: str, port: int, page: PageInfo) -> None:
        super().__init__(host, port, "/_vango/ws", page.cookie)
        self.page = page
        self.welcomed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.seq = 0
        self.cseq = 0
        self.unacked = 0
        self.ack_timer: asyncio.TimerHandle | None = None
        self.waiter: asyncio.Future[float] | None = None
        self.patched_at = 0.0  # monotonic time of the last PATCHES frame
        self.on_patch: Callable[[VangoPeer], None] | None = None  # after each PATCHES frame
        self.on_drop: Callable[[str], None] | None = None  # the server closed an open session: why
        self.seen = False  # free for the caller (bench/scale.py: reached by the global write)

    def hello(self) -> None:
        p = self.page
        self.send(b"\x00" + msgpack.packb([protocol.HELLO, protocol.VERSION, p.csrf, p.path, None, 0, p.ssr_hash]))

    def on_message(self, payload: bytes) -> None:
        frame = protocol.unpack_message(payload, MAX_MESSAGE)
        kind = frame[0]
        if kind == protocol.PATCHES or kind == protocol.FULL:
            self.seq = frame[1]
            self.patched_at = time.monotonic()
            self.unacked += 1
            if self.unacked >= ACK_EVERY:
                self.ack()
            elif self.ack_timer is None:
                self.ack_timer = asyncio.get_running_loop().call_later(ACK_DELAY, self.ack)
            if kind == protocol.PATCHES:
                if self.waiter is not None and not self.waiter.done():
                    self.waiter.set_result(self.patched_at)
                if self.on_patch is not None:
                    self.on_patch(self)
        elif kind == protocol.WELCOME:
            self.seq = frame[2]
            if not self.welcomed.done():
                self.welcomed.set_result(frame)
        elif kind == protocol.S_PING:
            self.send(b"\x00" + msgpack.packb([protocol.PONG, frame[1]]))

    def ack(self) -> None:
        if self.ack_timer is not None:
            self.ack_timer.cancel()
            self.ack_timer = None
        if self.unacked:
            self.unacked = 0
            self.send(b"\x00" + msgpack.packb([protocol.ACK, self.seq]))

    def on_closed(self) -> None:
        if self.ack_timer is not None:
            self.ack_timer.cancel()
            self.ack_timer = None
        if not self.welcomed.done():
            self.welcomed.set_exception(Refusal(*self.closed.result()) if self.closed.done() else
                                        ConnectionError("eof before welcome"))
        elif not self.closing and self.on_drop is not None:
            code, reason = self.closed.result() if self.closed.done() else (1006, "eof")
            self.on_drop(f"close {code} {reason}".strip())
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("closed"))

    def expect_patch(self) -> asyncio.Future[float]:
        self.waiter = asyncio.get_running_loop().create_future()
        return self.waiter

    async def click(self, hid: int, timeout: float = 5.0) -> float:
        """Click ``hid``; the seconds until its PATCHES frame arrived."""
        self.cseq += 1
        waiter = self.expect_patch()
        t0 = time.perf_counter()
        self.send(b"\x00" + msgpack.packb([protocol.EVENT, self.cseq, hid, "click", None]))
        await asyncio.wait_for(waiter, timeout)
        return time.perf_counter() - t0


class EchoPeer(Peer):
    """The bare echo baseline's client: text "click" out, "Count: N" back."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port, "/ws")
        self.waiter: asyncio.Future[bytes] | None = None
        self.count = 0

    def on_message(self, payload: bytes) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(payload)

    def on_closed(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("closed"))

    async def click(self, hid: int = 0, timeout: float = 5.0) -> float:
        self.waiter = asyncio.get_running_loop().create_future()
        t0 = time.perf_counter()
        self.send(b"click", text=True)
        answer = await asyncio.wait_for(self.waiter, timeout)
        elapsed = time.perf_counter() - t0
        self.count += 1
        if answer != b"Count: %d" % self.count:
            raise ConnectionError(f"echo answered {answer!r} to click {self.count}")
        return elapsed


class Refusal(Exception):
    """The server closed the socket before WELCOME: its close code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code, self.reason = code, reason


def failure_reason(err: BaseException) -> str:
    """A short, countable reason for a session that did not open."""
    if isinstance(err, Refusal):
        return f"close {err.code} {err.reason}".strip()
    if isinstance(err, asyncio.TimeoutError):
        return "timeout"
    if isinstance(err, OSError) and err.errno:
        return errno.errorcode.get(err.errno, str(err.errno))
    return f"{type(err).__name__}: {err}"[:80]


async def _wait_or_close(peer: Any, step: asyncio.Future[Any], timeout: float) -> None:
    """Wait for one step of ``peer``'s opening; close the peer when it fails, times out or is cancelled."""
    try:
        await asyncio.wait_for(step, timeout)
    except BaseException:
        peer.close()
        raise


async def connect(peer_factory: Any, host: str, port: int, source: str | None, timeout: float) -> Any:
    """Open one peer (from ``source`` when given) and wait for its upgrade."""
    loop = asyncio.get_running_loop()
    local = (source, 0) if source else None
    _, peer = await asyncio.wait_for(loop.create_connection(peer_factory, host, port, local_addr=local), timeout)
    await _wait_or_close(peer, peer.upgraded, timeout)
    return peer


async def open_vango(host: str, port: int, page: PageInfo, source: str | None, timeout: float = 10.0) -> VangoPeer:
    """A vango session: upgrade, HELLO, WELCOME (Refusal with the close code when refused)."""
    peer: VangoPeer = await connect(lambda: VangoPeer(host, port, page), host, port, source, timeout)
    peer.hello()
    await _wait_or_close(peer, peer.welcomed, timeout)
    return peer
