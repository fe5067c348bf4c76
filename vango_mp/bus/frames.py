"""Bus messages and their framing: typed message classes, encode, streaming decode.

See the package docstring for the message table and failure behaviour.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import struct
from collections.abc import Callable
from typing import Any, ClassVar

import lz4.block
import msgpack

__all__ = [
    "LZ4_EXT",
    "COMPRESS_THRESHOLD",
    "DEFAULT_MAX_FRAME",
    "READ_CHUNK",
    "ANY",
    "HUB",
    "is_hint",
    "BusError",
    "BusTimeout",
    "BusClosed",
    "BusProtocolError",
    "Message",
    "Hello",
    "Ready",
    "Heartbeat",
    "Request",
    "Response",
    "Broadcast",
    "GlobalWrite",
    "GlobalUpdate",
    "GlobalError",
    "Snapshot",
    "Order",
    "encode",
    "decode_message",
    "FrameDecoder",
]

log = logging.getLogger("vango_mp.bus")

LZ4_EXT = 1
COMPRESS_THRESHOLD = 64 * 1024
DEFAULT_MAX_FRAME = 16 * 1024 * 1024
READ_CHUNK = 64 * 1024
ANY = -1  # Request peer: the first worker that says yes
HUB = -2  # Request peer: the hub itself; Broadcast peer: sent by the hub


def is_hint(body: Any) -> bool:
    """An ``ANY`` answer that only points elsewhere: it wins only if nobody holds the real thing."""
    return isinstance(body, dict) and body.get("hint") is True


class BusError(Exception):
    """A request was answered with an error by its handler."""


class BusTimeout(BusError):
    """No response within the timeout."""


class BusClosed(BusError):
    """The connection to the hub is gone."""


class BusProtocolError(Exception):
    """Undecodable, oversized or ill-typed frame; the connection must be dropped."""


# ---------------------------------------------------------------- messages

_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,), "str": (str,), "bool": (bool,), "dict": (dict,), "list": (list,),
    "Any": (object,),
}


@dataclasses.dataclass(slots=True, frozen=True)
class Message:
    """Base of every bus message; ``CODE`` is its wire code."""

    CODE: ClassVar[int] = 0

    def pack(self) -> list[Any]:
        return [self.CODE, *(getattr(self, f.name) for f in dataclasses.fields(self))]


def _message(code: int) -> Callable[[type], type]:
    def register(cls: type) -> type:
        cls = dataclasses.dataclass(slots=True, frozen=True)(cls)
        cls.CODE = code
        cls._TYPES = tuple(_FIELD_TYPES[str(f.type)] for f in dataclasses.fields(cls))
        MESSAGES[code] = cls
        return cls
    return register


MESSAGES: dict[int, type] = {}


@_message(1)
class Hello(Message):
    slot: int
    pid: int
    generation: int


@_message(2)
class Ready(Message):
    pass


@_message(3)
class Heartbeat(Message):
    stats: dict


@_message(4)
class Request(Message):
    rid: int
    peer: int
    kind: str
    body: Any


@_message(5)
class Response(Message):
    rid: int
    ok: bool
    body: Any


@_message(6)
class Broadcast(Message):
    peer: int
    kind: str
    body: Any


@_message(7)
class GlobalWrite(Message):
    wid: int
    key: str
    op: str
    args: list
    default: Any


@_message(8)
class GlobalUpdate(Message):
    key: str
    seq: int
    value: Any
    origin: int
    wid: int


@_message(9)
class GlobalError(Message):
    wid: int
    key: str
    error: str


@_message(10)
class Snapshot(Message):
    values: dict


@_message(11)
class Order(Message):
    kind: str
    body: Any


# ---------------------------------------------------------------- framing

def encode(msg: Message) -> bytes:
    """One frame; large ones are lz4-compressed inside an ExtType."""
    packed = msgpack.packb(msg.pack(), use_bin_type=True)
    if len(packed) <= COMPRESS_THRESHOLD:
        return packed
    block = lz4.block.compress(packed, store_size=True)
    return msgpack.packb(msgpack.ExtType(LZ4_EXT, block), use_bin_type=True)


def decode_message(obj: Any) -> Message:
    """Validate one unpacked frame and build its message object."""
    if not isinstance(obj, list) or not obj or type(obj[0]) is not int:
        raise BusProtocolError(f"frame is not [code, ...]: {type(obj).__name__}")
    cls = MESSAGES.get(obj[0])
    if cls is None:
        raise BusProtocolError(f"unknown message code {obj[0]}")
    fields = obj[1:]
    if len(fields) != len(cls._TYPES):
        raise BusProtocolError(f"{cls.__name__}: expected {len(cls._TYPES)} fields, got {len(fields)}")
    for value, types in zip(fields, cls._TYPES):
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types and int in types):
            raise BusProtocolError(f"{cls.__name__}: bad field value {value!r}")
    return cls(*fields)


class FrameDecoder:
    """Streaming decoder with a bounded buffer; any error is final (drop the peer).

    msgpack's Unpacker keeps its buffer at the largest size it ever needed
    (up to ``max_frame``), so once RELEASE_AFTER bytes went through and no
    partial frame is pending, it is replaced by a fresh one: a connection
    that carried a few big frames does not keep their size for its lifetime.

    The limit is checked per frame: the unpacker's own buffer holds the frame
    still arriving plus the next read, so it gets room for both (``max_read``),
    or a legal frame followed by a full read would be refused as BufferFull.
    """

    RELEASE_AFTER = 1024 * 1024

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME, max_read: int = 1024 * 1024) -> None:
        self.max_frame, self.max_read = max_frame, max_read
        self.unpacker = self._unpacker()
        self.fed = 0  # bytes fed to this unpacker
        self.done = 0  # where the last complete frame ended, in the same count

    def _unpacker(self) -> msgpack.Unpacker:
        # A partial, not a bound method: no reference cycle keeps a dropped buffer for the cyclic GC.
        return msgpack.Unpacker(raw=False, max_buffer_size=self.max_frame + self.max_read,
                                max_str_len=self.max_frame, max_bin_len=self.max_frame, strict_map_key=False,
                                ext_hook=functools.partial(_ext_hook, self.max_frame))

    def feed(self, data: bytes) -> list[Message]:
        """Decode every complete frame in the buffered stream."""
        if len(data) > self.max_read:
            raise ValueError(f"feed at most {self.max_read} bytes at a time, not {len(data)}")
        messages: list[Message] = []
        try:
            self.unpacker.feed(data)
            self.fed += len(data)
            for obj in self.unpacker:
                end = self.unpacker.tell()
                self._check_size(end - self.done)
                self.done = end
                messages.append(decode_message(_inflate(obj)))
            self._check_size(self.fed - self.done)  # the frame still arriving
        except BusProtocolError:
            raise
        except Exception as exc:  # BufferFull, FormatError, StackError, ValueError, lz4 errors
            raise BusProtocolError(f"{type(exc).__name__}: {exc}") from None
        # tell() after the loop may already count bytes of a frame still arriving (the
        # unpacker parses partial input as far as it goes): only the end of the last
        # complete frame says that nothing is pending.
        if self.fed >= self.RELEASE_AFTER and self.done == self.fed:
            self.unpacker, self.fed, self.done = self._unpacker(), 0, 0
        return messages

    def _check_size(self, size: int) -> None:
        if size > self.max_frame:
            raise BusProtocolError(f"frame of {size} bytes exceeds {self.max_frame}")


def _ext_hook(max_frame: int, code: int, data: bytes) -> Any:
    if code != LZ4_EXT or len(data) < 4:
        raise BusProtocolError(f"unknown ext type {code}")
    (size,) = struct.unpack_from("<I", data)  # lz4 store_size header
    if size > max_frame:
        raise BusProtocolError(f"compressed frame of {size} bytes exceeds {max_frame}")
    return _Inflated(msgpack.unpackb(lz4.block.decompress(data), raw=False, strict_map_key=False))


class _Inflated:
    """Marks a decompressed frame, so an ExtType can only appear at the top level."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj


def _inflate(obj: Any) -> Any:
    return obj.obj if isinstance(obj, _Inflated) else obj
