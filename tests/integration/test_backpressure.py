"""Slow readers: a client that stops reading is dropped; bystanders, idle sessions and memory are not harmed.

The attack (issue 17): open a live socket on a page of ~1 MB, stop reading,
and send RESYNC within its rate limit so the server answers with a FULL each
time. The server must bound what it keeps for that socket, drop it, and
leave everyone else alone.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import time

import msgpack
import pytest

from tests.conftest import Server, start_server
from vango_mp import protocol
from vango_mp.testing import TestClient
from vango_mp.wsout import frame, pending_bytes

from .rawws import Page, fetch_page

pytestmark = pytest.mark.timeout(90)

MIB = 1024 * 1024
ATTACKERS = 3
ATTACK_SECONDS = 20.0


class SlowReader:
    """A WebSocket peer with a tiny receive buffer that never reads after the handshake."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, server: Server, page: Page, path: str = "/big", *, hello: bool = True) -> SlowReader:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (server.host, server.port))
        reader, writer = await asyncio.open_connection(sock=sock)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((
            f"GET /_vango/ws HTTP/1.1\r\nHost: {server.host}:{server.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {server.url}\r\nCookie: {page.cookie}\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 101"), head
        peer = cls(reader, writer)
        if hello:
            peer.send([protocol.HELLO, 1, page.csrf, path, None, 0, "stale"])  # stale SSR hash: a FULL comes
        return peer

    def send(self, msg: list) -> None:
        data = b"\x00" + msgpack.packb(msg)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.writer.write(struct.pack("!BB", 0x82, 0x80 | len(data)) + mask + masked)

    async def attack(self, deadline: float) -> None:
        """RESYNC twice a second (the default rate limit) until the server hangs up or time is up."""
        while time.monotonic() < deadline:
            try:
                self.send([protocol.RESYNC, 0])
                await self.writer.drain()
            except (ConnectionError, OSError):
                return
            await asyncio.sleep(0.5)


def test_slow_readers_are_dropped_and_nobody_else_is_harmed() -> None:
    server = start_server(
        "--workers", "1", "--app", "tests.apps.bigpage:app",
        env={"VANGO_MAX_PENDING_OUTPUT_BYTES": "2MiB", "VANGO_WRITE_TIMEOUT": "3s"},
    )
    try:
        asyncio.run(scenario(server))
        output = server.output()
    finally:
        server.stop()
    assert output.count("dropping socket: client too slow") == ATTACKERS, output[-3000:]
    assert "Traceback" not in output and "ERROR" not in output, output[-3000:]


async def scenario(server: Server) -> None:
    async with TestClient(server.url) as client:
        bystander = await client.open("/counter")
        idle = [await client.open("/counter") for _ in range(3)]
        baseline = server.health()
        page = await asyncio.to_thread(fetch_page, server.url, "/big")
        attackers = [await SlowReader.open(server, page) for _ in range(ATTACKERS)]
        deadline = time.monotonic() + ATTACK_SECONDS
        attacks = [asyncio.create_task(a.attack(deadline)) for a in attackers]
        clicks = 0
        peak = baseline["rss_bytes"]
        while time.monotonic() < deadline:
            await bystander.click("#inc")  # the bystander is served throughout
            clicks += 1
            assert bystander.text("#count") == f"Count: {clicks}"
            health = await asyncio.to_thread(server.health)
            peak = max(peak, health["rss_bytes"])
            if health.get("refusals", {}).get("slow_reader", 0) >= ATTACKERS:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"slow readers not dropped in {ATTACK_SECONDS}s: {health}")
        await asyncio.gather(*attacks)
        for a in attackers:
            a.writer.close()
        after = await asyncio.to_thread(server.health)
        # Each attacker's output stayed bounded (a few FULLs of ~1 MB at most), then was freed.
        assert peak - baseline["rss_bytes"] < 64 * MIB, (peak, baseline["rss_bytes"])
        # Idle attached sessions and the bystander are untouched: no evictions, nobody closed.
        assert after["sessions"]["attached"] == 1 + len(idle), after["sessions"]
        assert not after["evictions"], after["evictions"]
        for page_ in idle:
            await page_.click("#inc")
            assert page_.text("#count") == "Count: 1"


def test_frames_are_framed_as_rfc6455_and_tornado_still_counts_pending_output() -> None:
    """The writer bypasses write_message; its frames and the pending count it relies on are checked here."""
    assert frame(b"x") == b"\x82\x01x"
    assert frame(b"y" * 200)[:4] == b"\x82\x7e\x00\xc8"
    assert frame(b"z" * 70_000)[:10] == b"\x82\x7f" + (70_000).to_bytes(8, "big")

    import tornado.iostream

    async def go() -> None:
        a, b = socket.socketpair()
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        stream = tornado.iostream.IOStream(a)
        stream.write(b"x" * (4 * MIB))  # nobody reads b: most of it stays in the stream
        assert pending_bytes(stream) > MIB
        stream.close()
        b.close()

    asyncio.run(go())


def test_a_dead_peer_is_dropped_and_resumable_while_a_tab_that_answers_pings_stays() -> None:
    """IdleTimeout: no traffic at all (not even pongs) drops the socket; its session detaches, resumable."""
    server = start_server("--workers", "1", "--app", "tests.apps.bigpage:app",
                          env={"VANGO_IDLE_TIMEOUT": "1s", "VANGO_HEARTBEAT_INTERVAL": "200ms"})
    try:
        asyncio.run(idle_scenario(server))
    finally:
        server.stop()


async def idle_scenario(server: Server) -> None:
    async with TestClient(server.url) as client:
        tab = await client.open("/counter")  # Tornado's client answers every ping: alive
        page = await asyncio.to_thread(fetch_page, server.url, "/counter")
        dead = await SlowReader.open(server, page, path="/counter")  # never reads, never pongs
        health = await asyncio.to_thread(server.wait_health, lambda h: h["sessions"]["detached"] == 1, 10.0)
        assert health["sessions"]["attached"] == 1  # the tab that answers pings keeps its socket
        await tab.click("#inc")
        assert tab.text("#count") == "Count: 1"
        dead.writer.close()


def test_resets_and_frames_after_a_refusal_are_quiet() -> None:
    """A client that resets with output queued, or keeps talking after a refusal, logs nothing above INFO."""
    server = start_server("--workers", "1", "--app", "tests.apps.bigpage:app")
    try:
        asyncio.run(noisy_clients(server))
        output = server.output()
    finally:
        server.stop()
    assert "Traceback" not in output and " ERROR " not in output and " WARNING " not in output, output[-3000:]
    assert "HELLO twice" not in output and "first frame must be HELLO" not in output, output[-3000:]


async def noisy_clients(server: Server) -> None:
    page = await asyncio.to_thread(fetch_page, server.url, "/big")
    for _ in range(3):  # a reset (RST) while the server still has ~0.5 MB to send
        peer = await SlowReader.open(server, page)
        peer.send([protocol.RESYNC, 0])
        await peer.writer.drain()
        sock = peer.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.writer.transport.abort()
    for _ in range(3):  # refused (forged CSRF), then more frames
        peer = await SlowReader.open(server, page, hello=False)
        peer.send([protocol.HELLO, 1, "forged", "/big", None, 0, None])
        peer.send([protocol.EVENT, 1, 1, "click", None])
        await peer.writer.drain()
        peer.writer.close()
    await asyncio.to_thread(server.wait_health, lambda h: h["sessions"]["attached"] == 0, 10.0)
