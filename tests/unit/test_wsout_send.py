"""vango_mp.wsout.send: bytes go straight to the socket when nothing is queued, in order always.

A real ``IOStream`` over a socketpair with small kernel buffers, so writes
are taken whole, in part or not at all; the peer reads everything back.
"""

from __future__ import annotations

import asyncio
import select
import socket
import time

import pytest
from tornado.iostream import IOStream

from vango_mp.wsout import frame, pending_bytes, send

DEADLINE = 5.0


def _pair() -> tuple[IOStream, socket.socket]:
    """A TCP connection over 127.0.0.1 with a small send buffer: (our stream, the peer's socket)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        ours = socket.create_connection(listener.getsockname())
        peer, _ = listener.accept()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    ours.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    peer.setblocking(False)
    return IOStream(ours), peer


def _read_some(peer: socket.socket, n: int) -> bytes:
    """Read ``n`` bytes now, without letting the stream's loop run (it does not learn there is room)."""
    got = bytearray()
    deadline = time.monotonic() + DEADLINE
    while len(got) < n and time.monotonic() < deadline:
        try:
            got += peer.recv(n - len(got))
        except BlockingIOError:
            time.sleep(0.001)
    return bytes(got)


async def _drain(peer: socket.socket, expected: int) -> bytes:
    got = bytearray()
    deadline = time.monotonic() + DEADLINE
    while len(got) < expected and time.monotonic() < deadline:
        try:
            chunk = peer.recv(65536)
        except BlockingIOError:
            await asyncio.sleep(0.001)
            continue
        if not chunk:
            break
        got += chunk
    return bytes(got)


async def _test_frames_arrive_whole_and_in_order_through_partial_writes() -> None:
    stream, peer = _pair()
    frames = [b"<", b"B" * 300_000]  # more than the kernel takes at once: it takes a part
    frames += [bytes([i % 251]) * (1 + (i * 997) % 5000) for i in range(200)]
    taken = [send(stream, data) for data in frames]
    assert taken[0] and not taken[1]  # all of the first went to the socket, a part of the second
    assert not any(taken[2:])  # queued behind it
    assert pending_bytes(stream) > 0  # the peer has not read: the rest is queued in the stream
    got = await _drain(peer, sum(map(len, frames)))
    assert got == b"".join(frames)
    stream.close()
    peer.close()


class Reading(IOStream):
    """A subclass, as the live socket's stream is once open (wsread.DirectStream)."""


async def _test_a_small_write_goes_to_the_socket_without_a_future() -> None:
    stream, peer = _pair()
    stream.__class__ = Reading
    writes: list[bytes] = []
    real = stream.write
    stream.write = lambda data: writes.append(bytes(data)) or real(data)  # type: ignore[method-assign]
    assert send(stream, b"hello") is True
    assert writes == [] and pending_bytes(stream) == 0
    assert await _drain(peer, 5) == b"hello"
    stream.close()
    peer.close()


async def _test_a_write_after_queued_output_waits_behind_it() -> None:
    stream, peer = _pair()
    stream.write(b"x" * 200_000)  # more than the kernel takes: the stream keeps the rest
    assert pending_bytes(stream) > 0
    head = _read_some(peer, 60_000)
    assert select.select([], [stream.socket], [], DEADLINE)[1]  # the kernel has room again, the stream still holds bytes
    assert send(stream, b"END") is False
    got = head + await _drain(peer, 200_003 - len(head))
    assert got == b"x" * 200_000 + b"END"
    stream.close()
    peer.close()


async def _test_a_peer_gone_closes_the_stream_quietly() -> None:
    stream, peer = _pair()
    peer.close()
    deadline = time.monotonic() + DEADLINE
    while not stream.closed() and time.monotonic() < deadline:
        send(stream, b"lost")  # once the reset is back, the stream's own write meets it and closes
        await asyncio.sleep(0.001)
    assert stream.closed()
    with pytest.raises(Exception):
        stream.write(b"more")


def test_frames_arrive_whole_and_in_order_through_partial_writes() -> None:
    asyncio.run(_test_frames_arrive_whole_and_in_order_through_partial_writes())


def test_a_small_write_goes_to_the_socket_without_a_future() -> None:
    asyncio.run(_test_a_small_write_goes_to_the_socket_without_a_future())


def test_a_write_after_queued_output_waits_behind_it() -> None:
    asyncio.run(_test_a_write_after_queued_output_waits_behind_it())


def test_a_peer_gone_closes_the_stream_quietly() -> None:
    asyncio.run(_test_a_peer_gone_closes_the_stream_quietly())


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536])
def test_frame_headers_and_a_payload_sent_to_many_framed_once(size: int) -> None:
    payload = bytes([7]) * size
    wire = frame(payload)
    header = len(wire) - size
    assert wire[0] == 0x82 and wire[header:] == payload  # final, binary, unmasked
    assert header == (2 if size < 126 else 4 if size <= 0xFFFF else 10)
    assert wire[1] == {2: size, 4: 126, 10: 127}[header]  # the length, or the marker of a longer one
    assert header == 2 or int.from_bytes(wire[2:header], "big") == size
    assert frame(payload) is wire  # the same payload object (a fan-out's): framed once
    other = bytes([8]) * size  # the next payload is framed on its own
    assert frame(other)[header:] == other and frame(payload) == wire
