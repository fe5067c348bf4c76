"""vango_mp.wsread: the callback frame reader keeps Tornado's rules, and an idle socket holds no coroutine.

A real Tornado server on 127.0.0.1 (ephemeral port) with a handler using
:class:`LeanProtocol13`; the peer is a raw TCP socket writing hand-made
frames, so frames can be split, coalesced, fragmented or malformed.
"""

from __future__ import annotations

import asyncio
import base64
from collections import deque
import gc
import os
import socket
import struct
from typing import Any

import tornado.httpserver
import tornado.iostream
import tornado.netutil
import tornado.web
import tornado.websocket

from vango_mp.wsout import SMALL_QUEUE_MAX, SmallQueue, pending_bytes, slim_stream, widen_stream
from vango_mp.wsread import DirectStream, LeanProtocol13

DEADLINE = 5.0


class Echo(tornado.websocket.WebSocketHandler):
    """Records what arrives and echoes it; a message b'slow' is held until ``release`` is set."""

    lean = True
    got: list[Any]
    closes: list[tuple[int | None, str | None]]
    release: asyncio.Event
    opened: list[Echo]

    def open(self) -> None:
        type(self).opened.append(self)

    def get_websocket_protocol(self) -> tornado.websocket.WebSocketProtocol | None:
        if not self.lean:
            return super().get_websocket_protocol()
        return LeanProtocol13(self, False, tornado.websocket._WebSocketParams(max_message_size=1024))

    def on_message(self, message: str | bytes) -> Any:
        type(self).got.append(message)
        if message == b"slow":
            return self._slow()
        self.write_message(message, binary=isinstance(message, bytes))
        return None

    async def _slow(self) -> None:
        await type(self).release.wait()
        self.write_message(b"slow done", binary=True)

    def on_close(self) -> None:
        type(self).closes.append((self.close_code, self.close_reason))


class Plain(Echo):
    lean = False


class Big(Echo):
    """Takes messages up to 1 MiB (more than one read callback's chunk); a small send buffer."""

    def open(self) -> None:
        super().open()
        self.ws_connection.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)

    def get_websocket_protocol(self) -> tornado.websocket.WebSocketProtocol | None:
        return LeanProtocol13(self, False, tornado.websocket._WebSocketParams(max_message_size=1 << 20))


def frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0) -> bytes:
    """One masked client frame."""
    mask = os.urandom(4)
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class Peer:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int, path: str = "/ws", rcvbuf: int = 0) -> Peer:
        sock = socket.socket()
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connecting: the window it offers
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                      "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), DEADLINE)
        assert head.startswith(b"HTTP/1.1 101"), head
        assert tornado.websocket.WebSocketProtocol13.compute_accept_value(key).encode() in head
        assert b"permessage-deflate" not in head  # compression not offered by the handler: declined
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def recv(self) -> tuple[int, bytes]:
        """The next server frame: (opcode, payload); server frames are unmasked."""
        b0, b1 = await asyncio.wait_for(self.reader.readexactly(2), DEADLINE)
        assert not b1 & 0x80
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        return b0 & 0x0F, await asyncio.wait_for(self.reader.readexactly(n), DEADLINE)

    async def eof(self) -> bool:
        """True when the server ends the TCP connection (after any frames)."""
        try:
            while await asyncio.wait_for(self.reader.read(4096), DEADLINE):
                pass
        except ConnectionResetError:
            pass
        return True


async def serve() -> tuple[tornado.httpserver.HTTPServer, int]:
    for cls in (Echo, Plain, Big):
        cls.got, cls.closes, cls.release, cls.opened = [], [], asyncio.Event(), []
    app = tornado.web.Application([("/ws", Echo), ("/plain", Plain), ("/big", Big)])
    [sock] = tornado.netutil.bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets([sock])
    return server, sock.getsockname()[1]


async def until(cond: Any) -> None:
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_coalesced_and_split_frames_arrive_in_order() -> None:
    async def main() -> None:
        server, port = await serve()
        peer = await Peer.connect(port)
        await peer.send(frame(2, b"one") + frame(2, b"two") + frame(1, "drei €".encode()))
        for byte in frame(2, b"x" * 300):  # a 16-bit length, one byte per write
            await peer.send(bytes([byte]))
        assert [await peer.recv() for _ in range(4)] == [(2, b"one"), (2, b"two"), (1, "drei €".encode()),
                                                          (2, b"x" * 300)]
        assert Echo.got == [b"one", b"two", "drei €", b"x" * 300]
        server.stop()

    run(main())


def test_a_message_larger_than_a_read_chunk_then_a_small_one() -> None:
    async def main() -> None:
        server, port = await serve()
        peer = await Peer.connect(port, "/big")
        big = os.urandom(200_000)  # a 64-bit length, over three 64 KiB reads
        await peer.send(frame(2, big) + frame(2, b"small"))
        assert await peer.recv() == (2, big)
        assert await peer.recv() == (2, b"small")
        assert Echo.got == [] and Big.got == [big, b"small"]
        server.stop()

    run(main())


def test_fragments_with_a_ping_between_and_close_handshake() -> None:
    async def main() -> None:
        server, port = await serve()
        peer = await Peer.connect(port)
        await peer.send(frame(2, b"ab", fin=False) + frame(9, b"p!") + frame(0, b"cd", fin=False) + frame(0, b"e"))
        assert await peer.recv() == (0xA, b"p!")  # the pong, while the message is still open
        assert await peer.recv() == (2, b"abcde")
        await peer.send(frame(8, struct.pack("!H", 1000) + b"bye"))
        assert await peer.recv() == (8, struct.pack("!H", 1000))  # the close echoed
        assert await peer.eof()
        await until(lambda: Echo.closes)
        assert Echo.closes == [(1000, "bye")]  # on_close once, with the peer's code and reason
        server.stop()

    run(main())


def test_an_awaited_on_message_holds_the_next_frame() -> None:
    async def main() -> None:
        server, port = await serve()
        peer = await Peer.connect(port)
        await peer.send(frame(2, b"slow") + frame(2, b"after"))
        await until(lambda: Echo.got)
        await peer.send(frame(9, b"?"))  # a round trip: it is parsed only after "slow" is done too
        stream = Echo.opened[0].ws_connection.stream
        await until(lambda: stream._read_buffer_size > 0 or len(Echo.got) > 1)  # the stream holds it meanwhile
        assert Echo.got == [b"slow"]
        Echo.release.set()
        assert await peer.recv() == (2, b"slow done")
        assert await peer.recv() == (2, b"after")
        assert await peer.recv() == (0xA, b"?")
        server.stop()

    run(main())


def test_too_big_reserved_bits_bad_continuation_and_fragmented_control_end_the_socket() -> None:
    async def main() -> None:
        server, port = await serve()
        peer = await Peer.connect(port)
        await peer.send(frame(2, b"y" * 1025)[:20])  # the header is enough to refuse it
        opcode, payload = await peer.recv()
        assert (opcode, payload[:2]) == (8, struct.pack("!H", 1009))
        assert await peer.eof()
        for bad in (frame(2, b"z", rsv=0x40), frame(0, b"lost"), frame(9, b"p", fin=False),
                    frame(2, b"a", fin=False) + frame(2, b"b")):
            peer = await Peer.connect(port)
            await peer.send(bad)
            assert await peer.eof()
        await until(lambda: len(Echo.closes) == 5)
        assert Echo.got == []  # none of them reached on_message
        server.stop()

    run(main())


def _frame_loops() -> int:
    """Suspended coroutines of Tornado's frame loop alive now."""
    gc.collect()
    return sum(1 for o in gc.get_objects()
               if asyncio.iscoroutine(o) and getattr(o, "cr_code", None) is not None
               and o.cr_code.co_name in ("_receive_frame_loop", "_receive_frame", "_execute"))


def test_an_idle_socket_holds_no_coroutine() -> None:
    async def main() -> None:
        server, port = await serve()
        plain = await Peer.connect(port, "/plain")
        await plain.send(frame(2, b"hi"))
        assert await plain.recv() == (2, b"hi")
        assert _frame_loops() >= 3  # the probe sees Tornado's own chain
        plain.writer.close()
        await until(lambda: Plain.closes)
        assert _frame_loops() == 0
        lean = [await Peer.connect(port) for _ in range(3)]
        for peer in lean:
            await peer.send(frame(2, b"hi"))
            assert await peer.recv() == (2, b"hi")
        assert _frame_loops() == 0
        for peer in lean:
            peer.writer.close()
        await until(lambda: len(Echo.closes) == 3)
        assert Echo.closes == [(None, None)] * 3  # a dropped TCP connection still calls on_close once
        server.stop()

    run(main())


def test_an_open_socket_reads_straight_into_its_parser_with_no_future_pending() -> None:
    async def main() -> None:
        server, port = await serve()
        peer = await Peer.connect(port)
        await peer.send(frame(2, b"hi"))
        assert await peer.recv() == (2, b"hi")
        [handler] = Echo.opened
        stream = handler.ws_connection.stream
        assert type(stream) is DirectStream and stream.sink is handler.ws_connection
        assert stream._read_future is None  # nothing pending: each readable event goes to the parser
        sock = peer.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.writer.transport.abort()  # a reset, not a FIN
        await until(lambda: Echo.closes)
        assert Echo.closes == [(None, None)] and stream.closed() and stream.sink is None
        server.stop()

    run(main())


def test_frames_are_read_while_output_waits_for_a_slow_peer() -> None:
    async def main() -> None:
        server, port = await serve()
        peer = await Peer.connect(port, "/big", rcvbuf=4096)
        big = os.urandom(600_000)
        await peer.send(frame(2, big) + frame(2, big))  # echoed back to a peer that reads nothing yet
        await until(lambda: len(Big.got) == 2)
        [handler] = Big.opened
        await until(lambda: pending_bytes(handler.ws_connection.stream) > 0)
        await peer.send(frame(2, b"still heard"))
        await until(lambda: len(Big.got) == 3)  # read although the stream is busy writing
        assert pending_bytes(handler.ws_connection.stream) > 0
        assert Big.got[2] == b"still heard"
        assert [await peer.recv() for _ in range(3)] == [(2, big), (2, big), (2, b"still heard")]
        server.stop()

    run(main())


def test_slim_stream_swaps_empty_deques_and_still_writes_in_order() -> None:
    async def main() -> None:
        a, b = socket.socketpair()
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        stream = tornado.iostream.IOStream(a)
        slim_stream(stream)
        assert type(stream._write_futures) is SmallQueue
        assert type(stream._write_buffer._buffers) is SmallQueue
        chunks = [bytes([i]) * 3000 for i in range(40)]  # more than the socket takes at once
        futures = [stream.write(c) for c in chunks]
        assert pending_bytes(stream) > 0
        assert len(stream._write_futures) > SMALL_QUEUE_MAX
        widen_stream(stream)  # a reader falling behind: deques again, contents kept
        assert type(stream._write_futures) is deque
        assert [f for _, f in stream._write_futures] == futures[-len(stream._write_futures):]
        other = tornado.iostream.IOStream(b)
        got = await asyncio.wait_for(other.read_bytes(sum(map(len, chunks))), DEADLINE)
        assert got == b"".join(chunks)
        await asyncio.wait_for(asyncio.gather(*futures), DEADLINE)
        assert pending_bytes(stream) == 0 and not stream._write_futures
        busy = tornado.iostream.IOStream(socket.socketpair()[0])
        busy._write_futures.append((1, None))
        slim_stream(busy)  # something queued: left alone
        assert type(busy._write_futures) is not SmallQueue
        busy._write_futures.clear()
        for s in (stream, other, busy):
            s.close()

    run(main())
