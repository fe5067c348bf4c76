"""Reading a live socket with callbacks instead of Tornado's coroutine chain.

Tornado's ``WebSocketProtocol13`` reads frames in a coroutine that never
ends while the socket is open: the handler's ``_execute`` Task, ``get``,
``accept_connection``, ``_accept_connection``, ``_receive_frame_loop``,
``_receive_frame`` and ``_read_bytes``, each a suspended coroutine with its
frame — about 3 KiB per idle socket with their Task, contexts and futures.
:class:`LeanProtocol13` does the same handshake, then returns (so that
chain ends) and reads with one pending ``read_bytes(partial=True)`` future
whose callback parses every complete frame in the bytes received.

What a frame does is Tornado's own code (``_handle_message``: on_message,
ping/pong, close, decompression), with its rules kept: a frame with unknown
reserved bits, a fragmented control frame, a bad continuation or a message
past ``max_message_size`` (1009) ends the connection; an awaitable from
``on_message`` is awaited before the next frame is parsed (frames stay in
order); a burst yields to the loop after ``_YIELD_THRESHOLD`` bytes; and
``on_ws_connection_close`` runs once when reading ends, as after Tornado's
loop.

Once the socket is open and nothing waits in the stream's buffer, a plain
(non-TLS) stream reads straight into the parser (:class:`DirectStream`):
each readable event is one ``recv`` and a parse, where ``read_bytes``
cost a Future, its callback's loop turn and a ``recv`` that finds nothing
(~12 µs a frame, issue 15). While ``on_message``'s awaitable is pending,
the stream is Tornado's again: it buffers what arrives once and stops
listening (the peer is held back by TCP), as with no read pending.
"""

from __future__ import annotations

import asyncio
import struct
import sys
from typing import Any

import tornado.httputil
from tornado.iostream import IOStream, StreamClosedError
from tornado.util import _websocket_mask
from tornado.websocket import _FRAME_YIELD_COST, _YIELD_THRESHOLD, WebSocketProtocol13

READ_CHUNK = 64 * 1024  # most bytes one read callback takes from the stream
_HEAD = struct.Struct("!BB")
_LEN16 = struct.Struct("!H")
_LEN64 = struct.Struct("!Q")


class LeanProtocol13(WebSocketProtocol13):
    """RFC 6455 server side whose frame reading costs one pending future while idle."""

    # No new instance attributes: a 30th key turns the instance dict from shared-key (296 B) into
    # a full table (1,584 B). Two that Tornado sets in __init__ and never reads again hold ours.

    @property
    def _buf(self) -> bytearray | None:
        """Bytes received and not yet parsed (None when empty)."""
        return self._masked_frame  # type: ignore[return-value]

    @_buf.setter
    def _buf(self, value: bytearray | None) -> None:
        self._masked_frame = value  # type: ignore[assignment]

    @property
    def _reading_done(self) -> bool:
        """on_ws_connection_close ran."""
        return self._final_frame

    @_reading_done.setter
    def _reading_done(self, value: bool) -> None:
        self._final_frame = value

    async def _accept_connection(self, handler: Any) -> None:
        # Tornado's handshake, unchanged, up to open(); then callbacks instead of ``await _receive_frame_loop()``.
        subprotocol_header = handler.request.headers.get("Sec-WebSocket-Protocol")
        subprotocols = [s.strip() for s in subprotocol_header.split(",")] if subprotocol_header else []
        self.selected_subprotocol = handler.select_subprotocol(subprotocols)
        if self.selected_subprotocol:
            assert self.selected_subprotocol in subprotocols
            handler.set_header("Sec-WebSocket-Protocol", self.selected_subprotocol)
        for ext in self._parse_extensions_header(handler.request.headers):
            if ext[0] == "permessage-deflate" and self._compression_options is not None:
                self._create_compressors("server", ext[1], self._compression_options)
                if "client_max_window_bits" in ext[1] and ext[1]["client_max_window_bits"] is None:
                    del ext[1]["client_max_window_bits"]
                handler.set_header("Sec-WebSocket-Extensions",
                                   tornado.httputil._encode_header("permessage-deflate", ext[1]))
                break
        handler.clear_header("Content-Type")
        handler.set_status(101)
        handler.set_header("Upgrade", "websocket")
        handler.set_header("Connection", "Upgrade")
        handler.set_header("Sec-WebSocket-Accept", self._challenge_response(handler))
        handler.finish()
        self.stream = handler._detach_stream()
        self.start_pinging()
        try:
            open_result = handler.open(*handler.open_args, **handler.open_kwargs)
            if open_result is not None:
                await open_result
        except Exception:
            handler.log_exception(*sys.exc_info())
            self._abort()  # as Tornado: no frame loop ran, so no on_ws_connection_close either
            return
        self._read_more()

    # -- reading -------------------------------------------------------------

    def _read_more(self) -> None:
        """Ask the stream for what the peer sends next: read straight into :meth:`received`, or one pending future."""
        if self.client_terminated:
            self._done_reading()
            return
        stream = self.stream
        if type(stream) is DirectStream and stream.sink is self:
            return
        if type(stream) in (IOStream, DirectStream) and not stream._read_buffer_size and not stream.closed():
            DirectStream.attach(stream, self)
            return
        try:
            fut = stream.read_bytes(READ_CHUNK, partial=True)
        except StreamClosedError:
            self._abort()
            self._done_reading()
            return
        fut.add_done_callback(self._on_bytes)  # type: ignore[attr-defined]  # a Future (Tornado 6)

    def _on_bytes(self, fut: asyncio.Future[bytes]) -> None:
        try:
            data = fut.result()
        except (StreamClosedError, asyncio.CancelledError):
            self._abort()
            self._done_reading()
            return
        except Exception:
            self.handler.log_exception(*sys.exc_info())
            self._abort()
            self._done_reading()
            return
        self.received(data)

    def received(self, data: bytes) -> None:
        """Bytes from the peer: buffer them and handle every complete frame."""
        if self._buf is None:
            self._buf = bytearray(data)
        else:
            self._buf += data
        self._parse()

    def stream_closed(self) -> None:
        """A :class:`DirectStream` closed (the peer left, an error, or we closed it): reading is over."""
        self._abort()
        self._done_reading()

    def _parse(self, _f: object = None) -> None:
        """Handle every complete frame buffered; then read on (or wait for on_message, or yield)."""
        work = 0
        while not self.client_terminated:
            frame = self._next_frame()
            if frame is None:
                break
            fin, opcode, data, wire = frame
            work += _FRAME_YIELD_COST + wire
            handled = self._frame(fin, opcode, data)
            if handled is not None:
                DirectStream.detach(self.stream, self)  # the stream holds what comes meanwhile
                handled.add_done_callback(self._parse)  # on_message's awaitable: next frame after it
                return
            if work >= _YIELD_THRESHOLD and self._buf:
                asyncio.get_running_loop().call_soon(self._parse)
                return
        if self.client_terminated:
            self._done_reading()
        else:
            self._read_more()

    def _next_frame(self) -> tuple[int, int, bytes, int] | None:
        """Take one complete frame off the buffer: (fin, opcode, unmasked payload, wire bytes); None if incomplete.

        Aborts (and returns None) on what Tornado refuses before reading a payload.
        """
        buf = self._buf
        if buf is None or len(buf) < 2:
            return None
        header, second = _HEAD.unpack_from(buf)
        fin = header & self.FIN
        reserved = header & self.RSV_MASK
        opcode = header & self.OPCODE_MASK
        if self._decompressor is not None and opcode != 0:
            self._frame_compressed = bool(reserved & self.RSV1)
            reserved &= ~self.RSV1
        if reserved:
            self._abort()  # an extension we did not agree to
            return None
        masked = second & 0x80
        length = second & 0x7F
        if opcode & 0x8 and length >= 126:
            self._abort()  # a control frame's payload is under 126 bytes
            return None
        pos = 2
        if length == 126:
            if len(buf) < 4:
                return None
            length, pos = _LEN16.unpack_from(buf, 2)[0], 4
        elif length == 127:
            if len(buf) < 10:
                return None
            length, pos = _LEN64.unpack_from(buf, 2)[0], 10
        total = length + (len(self._fragmented_message_buffer) if self._fragmented_message_buffer is not None else 0)
        if total > self.params.max_message_size:
            self.close(1009, "message too big")
            self._abort()
            return None
        end = pos + (4 if masked else 0) + length
        if len(buf) < end:
            return None
        if masked:
            data = _websocket_mask(bytes(buf[pos:pos + 4]), bytes(buf[pos + 4:end]))
        else:
            data = bytes(buf[pos:end])
        if end == len(buf):
            self._buf = None
        else:
            del buf[:end]
        self._wire_bytes_in += end
        return fin, opcode, data, end

    def _frame(self, fin: int, opcode: int, data: bytes) -> asyncio.Future[None] | None:
        """Tornado's per-frame rules (fragments, control frames), then its ``_handle_message``."""
        if opcode & 0x8:
            if not fin:
                self._abort()  # control frames must not be fragmented
                return None
        elif opcode == 0:
            if self._fragmented_message_buffer is None:
                self._abort()  # nothing to continue
                return None
            self._fragmented_message_buffer.extend(data)
            if not fin:
                return None
            opcode = self._fragmented_message_opcode  # type: ignore[assignment]
            data = bytes(self._fragmented_message_buffer)
            self._fragmented_message_buffer = None
        else:
            if self._fragmented_message_buffer is not None:
                self._abort()  # a new message before the last one ended
                return None
            if not fin:
                self._fragmented_message_opcode = opcode
                self._fragmented_message_buffer = bytearray(data)
                return None
        return self._handle_message(opcode, data)

    def _done_reading(self) -> None:
        """Reading is over: the handler hears of the close once (as after Tornado's frame loop)."""
        if self._reading_done:
            return
        self._reading_done = True
        self._buf = None
        DirectStream.detach(self.stream, self)
        self.handler.on_ws_connection_close(self.close_code, self.close_reason)


class DirectStream(IOStream):
    """A plain ``IOStream`` that, while a parser is attached, hands each readable event's bytes to it.

    An open socket's stream becomes one (its class is swapped: same
    layout); everything else (writes, close, errors) is IOStream's own.
    """

    sink: LeanProtocol13 | None = None

    @staticmethod
    def attach(stream: IOStream, sink: LeanProtocol13) -> None:
        """Read ``stream`` into ``sink.received`` from now on (its own buffer is empty)."""
        stream.__class__ = DirectStream
        assert isinstance(stream, DirectStream)
        stream.sink = sink
        stream.set_close_callback(sink.stream_closed)
        stream._add_io_state(stream.io_loop.READ)

    @staticmethod
    def detach(stream: IOStream | None, sink: LeanProtocol13) -> None:
        """Stop reading into ``sink``: the stream buffers and reads on request again."""
        if isinstance(stream, DirectStream) and stream.sink is sink:
            stream.sink = None
            stream.set_close_callback(None)

    def reading(self) -> bool:
        return self.sink is not None or self._read_future is not None

    def _handle_read(self) -> None:
        sink = self.sink
        if sink is None:
            super()._handle_read()
            return
        try:
            data = self.socket.recv(READ_CHUNK)
        except BlockingIOError:
            return
        except OSError as err:  # reset by the peer, and the like: closed as IOStream closes on a read error
            self.close(exc_info=err)
            return
        if not data:
            self.close()
            return
        sink.received(data)
