"""Output to a live socket: frame writing, pending bytes, and the slow-reader watch.

Frames are written as unmasked binary WebSocket frames (RFC 6455 §5.2)
straight to the socket when nothing is queued before them (:func:`send`),
else to the socket's stream. Tornado's ``write_message`` wraps every write
in a Task whose error nobody awaits: a client that resets with frames
queued logged two tracebacks per close, and the Task costs a loop turn per
frame on the hot path. The stream's own write futures are marked retrieved
when it closes, so a write here is quiet.

A socket whose peer stops reading keeps its output in memory. Every socket
with output still pending after a write is watched (only those: a check
costs nothing for the sockets that keep up); one that stays behind for
``write_timeout`` or holds more than ``max_pending_output_bytes`` is
dropped, its session detached (resumable: the client resyncs when it
comes back).
"""

from __future__ import annotations

import logging
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from tornado.iostream import IOStream, SSLIOStream

from . import metrics

log = logging.getLogger("vango_mp.live")

_BINARY_FIN = 0x82
_SHORT = struct.Struct("!BB")
_MEDIUM = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")


_last: list[Any] = [None, b""]  # the payload framed last and its frame


def frame(data: bytes) -> bytes:
    """``data`` as one final, unmasked binary WebSocket frame (server to client).

    A fan-out hands the same payload object to every session in the same
    state (vdom.shared.frame): it is framed once, not once per socket.
    """
    last = _last
    if data is last[0]:
        return last[1]
    n = len(data)
    if n < 126:
        out = _SHORT.pack(_BINARY_FIN, n) + data
    elif n <= 0xFFFF:
        out = _MEDIUM.pack(_BINARY_FIN, 126, n) + data
    else:
        out = _LONG.pack(_BINARY_FIN, 127, n) + data
    last[0], last[1] = data, out
    return out


def send(stream: IOStream, data: bytes) -> bool:
    """Write ``data`` to ``stream``: to its socket at once when nothing is queued before it; True when
    the kernel took all of it (nothing is left pending).

    ``IOStream.write`` costs a Future, its done callback and a loop turn per
    call (~15 µs of a click's ~200). A plain stream with an empty write
    buffer keeps the order if the bytes go to the socket directly; what the
    kernel does not take, and any error, go through ``stream.write`` as
    before (it queues the rest, or meets the error and closes). TLS streams
    always go through the stream (its handshake and record state are its own).
    """
    if not stream._write_buffer and not stream._connecting and not isinstance(stream, SSLIOStream):
        try:
            sent = stream.socket.send(data)
        except OSError:  # would block, or the peer is gone: the stream handles it as its own write would
            sent = 0
        if sent == len(data):
            return True
        data = data[sent:]
    stream.write(data)
    return False


SEND_BUFFER = 256 * 1024  # kernel send buffer per live socket (Linux doubles it for bookkeeping)


def limit_send_buffer(stream: Any) -> None:
    """Cap the kernel's send buffer of a live socket.

    Loopback and autotuned TCP let the kernel queue megabytes for a peer
    that does not read; that memory is invisible here (and not the
    worker's RSS, but the machine's). UI frames are small: with the cap,
    what a slow reader leaves unread shows up in :func:`pending_bytes`
    after a few hundred KiB.
    """
    sock = getattr(stream, "socket", None)
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)


class SmallQueue(list):  # type: ignore[type-arg]
    """A list standing in for a ``collections.deque`` that is empty nearly always.

    An empty deque allocates a 64-slot block (760 bytes); an IOStream holds
    two (its write buffer's pieces and its write futures), and an idle live
    socket needs neither: 1.4 KiB per session saved. ``pop(0)`` is cheap
    while it is short; a socket whose output piles up gets its deques back
    (:func:`widen_stream`, at ``SMALL_QUEUE_MAX`` entries).
    """

    __slots__ = ()

    def popleft(self) -> Any:
        return self.pop(0)


def slim_stream(stream: Any) -> None:
    """Swap an idle stream's two empty deques for :class:`SmallQueue` (Tornado 6.x internals).

    Only when both are empty (nothing written and unsent); a stream whose
    attributes are not there is left alone.
    """
    buffer = getattr(stream, "_write_buffer", None)
    pieces = getattr(buffer, "_buffers", None)
    futures = getattr(stream, "_write_futures", None)
    if type(pieces) is deque and not pieces and type(futures) is deque and not futures:
        buffer._buffers = SmallQueue()
        stream._write_futures = SmallQueue()


SMALL_QUEUE_MAX = 32


def widen_stream(stream: Any) -> None:
    """Give a slimmed stream its deques back once a queue holds more than ``SMALL_QUEUE_MAX`` entries.

    Called after a write leaves output pending: a slow reader's thousands of
    small frames would make each ``pop(0)`` move all the others.
    """
    futures = getattr(stream, "_write_futures", None)
    if type(futures) is SmallQueue and len(futures) > SMALL_QUEUE_MAX:
        stream._write_futures = deque(futures)
    buffer = getattr(stream, "_write_buffer", None)
    pieces = getattr(buffer, "_buffers", None)
    if type(pieces) is SmallQueue and len(pieces) > SMALL_QUEUE_MAX:
        buffer._buffers = deque(pieces)


def pending_bytes(stream: Any) -> int:
    """Bytes written to ``stream`` that the kernel has not taken yet.

    Tornado keeps them in ``IOStream._write_buffer`` (no public accessor;
    6.x). ``tests/integration/test_backpressure.py`` fails if that ever
    stops being true, rather than this silently reading 0.
    """
    buffer = getattr(stream, "_write_buffer", None)
    return len(buffer) if buffer is not None else 0


class Watched(Protocol):
    """A socket the watch can check and drop."""

    def pending_output(self) -> int: ...

    def drop_slow(self, reason: str) -> None: ...


class OutputWatch:
    """Sockets with output pending after a write; drops those that stay behind."""

    def __init__(self, *, write_timeout: float, max_pending: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.write_timeout = write_timeout
        self.max_pending = max_pending
        self.clock = clock
        self._behind: dict[Watched, float] = {}  # socket -> since when its output is pending

    def wrote(self, sock: Watched, pending: int) -> bool:
        """After a write: note a socket that is behind; False when it must be dropped now."""
        if not pending:
            return True
        since = self._behind.setdefault(sock, self.clock())
        if pending > self.max_pending:
            self._drop(sock, f"client too slow: {pending} bytes unsent")
            return False
        if self.clock() - since > self.write_timeout:
            self._drop(sock, f"client too slow: output pending for over {self.write_timeout:g}s")
            return False
        return True

    def forget(self, sock: Watched) -> None:
        self._behind.pop(sock, None)

    def tick(self) -> None:
        """Drop sockets behind past ``write_timeout``; stop watching those that caught up."""
        now = self.clock()
        for sock, since in list(self._behind.items()):
            if not sock.pending_output():
                del self._behind[sock]
            elif now - since > self.write_timeout:
                self._drop(sock, f"client too slow: output pending for over {self.write_timeout:g}s")

    def _drop(self, sock: Watched, reason: str) -> None:
        self._behind.pop(sock, None)
        metrics.inc("vango_refusals_total", reason="slow_reader")
        log.info("dropping socket: %s", reason)
        sock.drop_slow(reason)

    def __len__(self) -> int:
        return len(self._behind)
