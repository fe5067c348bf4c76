"""Wire frames: encode, decode and validate (see docs/PROTOCOL.md).

Every op code, frame type and close code is a named constant here and is
mirrored one-to-one in ``static/vango.js``. Decoding never trusts the peer:
any malformed frame raises :class:`ProtocolError` carrying the close code to
use, so the caller closes that one session and nothing else.
"""

from __future__ import annotations

import hashlib
import re

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import lz4.block
import msgpack

VERSION = 1

# Flag byte in front of every message.
FLAG_RAW = 0x00
FLAG_LZ4 = 0x01
COMPRESS_THRESHOLD = 1024

# Client -> server frame types.
HELLO = 1
EVENT = 2
ACK = 3
RESYNC = 4
PING = 5
PONG = 6
NAVIGATE = 7
PREFETCH = 8
HOOK = 9  # [9, hid, name, data|nil]: a client hook's pushEvent (vango_mp.interop)
ISLAND = 10  # [10, island_id, payload]: an island's message (vango_mp.interop)

# Server -> client frame types.
WELCOME = 17
PATCHES = 18
FULL = 19
S_PING = 20
S_PONG = 21
NAV = 22
# Frames 30+ (issue 10, events and errors): not sequenced, not kept in the history;
# a client that does not know them ignores them.
EVENT_DONE = 30  # [30, cseq]: the event's handler finished (sync, or its async task): loading state ends
ERROR = 31  # [31, text, detail|nil]: a handler/render error to show (detail only with --dev)
CALLS = 32  # [32, calls]: emit, client commands, hook reverts, island messages (vango_mp.interop)

# NAVIGATE / NAV modes: how the history moves.
NAV_PUSH = 0
NAV_REPLACE = 1
NAV_POP = 2  # Back/Forward: the browser moved already
NAV_LOAD = 3  # NAV only: a full document load of the url (another origin, another app)

# Patch op codes.
SET_TEXT = 1
SET_ATTR = 2
REMOVE_ATTR = 3
INSERT = 4
REMOVE = 5
MOVE = 6
REPLACE = 7

#: Every DOM event a listener may name (``on_<name>=``); the payload each carries is in docs/PROTOCOL.md.
MOUSE_EVENTS = frozenset({"click", "dblclick", "mousedown", "mouseup", "mousemove", "mouseenter", "mouseleave",
                          "contextmenu"})
KEY_EVENTS = frozenset({"keydown", "keyup"})
FORM_EVENTS = frozenset({"input", "change", "submit"})
TOUCH_EVENTS = frozenset({"touchstart", "touchmove", "touchend", "touchcancel"})
EVENT_NAMES = MOUSE_EVENTS | KEY_EVENTS | FORM_EVENTS | TOUCH_EVENTS | {"focus", "blur", "scroll", "resize"}

# Bounds on what a client may send (MaxMessageSize and friends).
MAX_MESSAGE_SIZE = 64 * 1024
MAX_PATH_BYTES = 8 * 1024
MAX_CSRF_BYTES = 256
MAX_SESSION_ID_BYTES = 128
MAX_EVENT_NAME_BYTES = 32
MAX_PAYLOAD_KEYS = 64
MAX_PAYLOAD_DEPTH = 3
MAX_SCALAR_BYTES = 16 * 1024
MAX_INT = 2**53


class Close(IntEnum):
    """WebSocket close codes; the client acts on each as docs/PROTOCOL.md says."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    MESSAGE_TOO_LARGE = 1009
    SERVER_BUSY = 1013
    SESSION_EXPIRED = 4001
    INVALID_CSRF = 4002
    NOT_AUTHORIZED = 4003
    FORBIDDEN_ORIGIN = 4004
    HANDSHAKE_TIMEOUT = 4008
    SESSION_TAKEN = 4009
    APP_ERROR = 4011  # the page's live render raised: the session could not start
    MEMORY_PRESSURE = 4013
    RATE_LIMITED = 4029


class ProtocolError(Exception):
    """A client frame that must close its session, with the close code to use."""

    def __init__(self, reason: str, code: Close = Close.PROTOCOL_ERROR) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(slots=True, frozen=True)
class Hello:
    version: int
    csrf: str
    path: str
    session_id: str | None
    last_seq: int
    ssr_hash: str | None = None


@dataclass(slots=True, frozen=True)
class ClientEvent:
    cseq: int
    hid: int
    name: str
    payload: dict[str, Any] | None


@dataclass(slots=True, frozen=True)
class Ack:
    seq: int


@dataclass(slots=True, frozen=True)
class Resync:
    last_seq: int


@dataclass(slots=True, frozen=True)
class Ping:
    t: int


@dataclass(slots=True, frozen=True)
class Pong:
    t: int


@dataclass(slots=True, frozen=True)
class Navigate:
    url: str  # path and query, no fragment
    mode: int  # NAV_PUSH, NAV_REPLACE or NAV_POP


@dataclass(slots=True, frozen=True)
class Prefetch:
    url: str


@dataclass(slots=True, frozen=True)
class HookPush:
    hid: int
    name: str
    data: dict[str, Any] | None


@dataclass(slots=True, frozen=True)
class IslandPush:
    island: str
    payload: Any


ClientFrame = Hello | ClientEvent | Ack | Resync | Ping | Pong | Navigate | Prefetch | HookPush | IslandPush

_packer = msgpack.Packer(use_bin_type=True)


def encode(frame: list[Any]) -> bytes:
    """Pack one frame, lz4-compressing bodies over COMPRESS_THRESHOLD."""
    body = _packer.pack(frame)
    if len(body) > COMPRESS_THRESHOLD:
        return bytes((FLAG_LZ4,)) + lz4.block.compress(body, store_size=True)
    return b"\x00" + body


def encode_patches(seq: int, patches: list[list[Any]]) -> bytes:
    return encode([PATCHES, seq, patches])


def encode_nav(seq: int, url: str, mode: int, title: str, patches: list[list[Any]],
               meta: dict[str, str] | None = None, scroll: bool = True) -> bytes:
    return encode([NAV, seq, url, mode, title, patches, meta or {}, scroll])


def encode_event_done(cseq: int) -> bytes:
    return encode([EVENT_DONE, cseq])


def encode_error(text: str, detail: str | None) -> bytes:
    return encode([ERROR, text, detail])


def encode_full(seq: int, html: str) -> bytes:
    return encode([FULL, seq, html])


def encode_welcome(session_id: str, seq: int, resumed: bool, worker: int) -> bytes:
    return encode([WELCOME, session_id, seq, resumed, worker])


def unpack_message(message: bytes | str, max_size: int = MAX_MESSAGE_SIZE) -> list[Any]:
    """Undo the flag byte (and lz4) and msgpack-decode; raise ProtocolError on any fault."""
    if not isinstance(message, bytes):
        raise ProtocolError("text messages are not accepted")
    if len(message) > max_size:
        raise ProtocolError("message too large", Close.MESSAGE_TOO_LARGE)
    if not message:
        raise ProtocolError("empty message")
    flag, body = message[0], message[1:]
    if flag == FLAG_LZ4:
        if len(body) < 4 or int.from_bytes(body[:4], "little") > max_size:
            raise ProtocolError("message too large", Close.MESSAGE_TOO_LARGE)
        try:
            body = lz4.block.decompress(body)
        except Exception as exc:  # lz4 raises LZ4BlockError and ValueError alike
            raise ProtocolError(f"bad lz4 block: {exc}") from None
    elif flag != FLAG_RAW:
        raise ProtocolError(f"unknown flag byte {flag}")
    try:
        frame = msgpack.unpackb(
            body,
            raw=False,
            strict_map_key=True,
            max_str_len=max_size,
            max_bin_len=0,
            max_array_len=256,
            max_map_len=MAX_PAYLOAD_KEYS,
            max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises several unrelated types
        raise ProtocolError(f"undecodable frame: {type(exc).__name__}") from None
    if not isinstance(frame, list) or not frame:
        raise ProtocolError("frame is not a non-empty array")
    return frame


def decode_client(message: bytes | str, max_size: int = MAX_MESSAGE_SIZE) -> ClientFrame:
    """Decode and validate one client frame."""
    frame = unpack_message(message, max_size)
    kind = frame[0]
    parser = _PARSERS.get(kind) if type(kind) is int else None
    if parser is None:
        # The type's name, not its repr: a hostile "type" can be a list nested 1000 deep.
        raise ProtocolError(f"unknown frame type {kind if type(kind) is int else type(kind).__name__}")
    arity = _ARITY[kind]
    if len(frame) not in arity:
        raise ProtocolError(f"frame type {kind} wants {arity[0]} fields, got {len(frame)}")
    return parser(frame)


def _int(value: Any, what: str, lo: int = 0) -> int:
    if type(value) is not int or not lo <= value <= MAX_INT:
        raise ProtocolError(f"{what} must be an integer >= {lo}")
    return value


def _str(value: Any, what: str, limit: int) -> str:
    if type(value) is not str:
        raise ProtocolError(f"{what} must be a string")
    if len(value) > limit or len(value.encode()) > limit:
        raise ProtocolError(f"{what} longer than {limit} bytes")
    return value


def _payload(value: Any, depth: int = 1) -> Any:
    if value is None or type(value) in (bool, float):
        return value
    if type(value) is int:
        return _int(value, "payload integer", -MAX_INT)
    if type(value) is str:
        return _str(value, "payload string", MAX_SCALAR_BYTES)
    if depth > MAX_PAYLOAD_DEPTH:
        raise ProtocolError("payload nested too deeply")
    if type(value) is dict:
        if len(value) > MAX_PAYLOAD_KEYS:
            raise ProtocolError("payload has too many keys")
        return {_str(k, "payload key", 256): _payload(v, depth + 1) for k, v in value.items()}
    if type(value) is list:
        if len(value) > MAX_PAYLOAD_KEYS:
            raise ProtocolError("payload list too long")
        return [_payload(v, depth + 1) for v in value]
    raise ProtocolError(f"payload value of type {type(value).__name__} not allowed")


def _hello(f: list[Any]) -> Hello:
    version = _int(f[1], "version")
    if version != VERSION:
        raise ProtocolError(f"protocol version {version} not supported (want {VERSION})")
    sid = f[4]
    if sid is not None:
        sid = _str(sid, "session id", MAX_SESSION_ID_BYTES)
    path = _str(f[3], "path", MAX_PATH_BYTES)
    if not path.startswith("/"):
        raise ProtocolError("path must start with /")
    ssr_hash = f[6] if len(f) > 6 else None
    if ssr_hash is not None:
        ssr_hash = _str(ssr_hash, "ssr hash", 64)
    csrf = _str(f[2], "csrf token", MAX_CSRF_BYTES)
    return Hello(version, csrf, path, sid, _int(f[5], "last_seq"), ssr_hash)


def _event(f: list[Any]) -> ClientEvent:
    name = _str(f[3], "event name", MAX_EVENT_NAME_BYTES)
    if name not in EVENT_NAMES:
        raise ProtocolError(f"unknown event {name!r}")
    payload = f[4]
    if payload is not None and type(payload) is not dict:
        raise ProtocolError("event payload must be a map or nil")
    return ClientEvent(_int(f[1], "cseq"), _int(f[2], "hid"), name, _payload(payload))


_PARSERS = {
    HELLO: _hello,
    EVENT: _event,
    ACK: lambda f: Ack(_int(f[1], "seq")),
    RESYNC: lambda f: Resync(_int(f[1], "last_seq")),
    PING: lambda f: Ping(_int(f[1], "t")),
    PONG: lambda f: Pong(_int(f[1], "t")),
    NAVIGATE: lambda f: Navigate(_url(f[1]), _mode(f[2])),
    PREFETCH: lambda f: Prefetch(_url(f[1])),
    HOOK: lambda f: HookPush(_int(f[1], "hid"), _interop_name(f[2], "hook event name"), _map(f[3], "hook data")),
    ISLAND: lambda f: IslandPush(_interop_name(f[1], "island id"), _payload(f[2])),
}
_ARITY = {HELLO: (6, 7), EVENT: (5,), ACK: (2,), RESYNC: (2,), PING: (2,), PONG: (2,), NAVIGATE: (3,),
          PREFETCH: (2,), HOOK: (4,), ISLAND: (3,)}
_INTEROP_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,63}$")


def _interop_name(value: Any, what: str) -> str:
    name = _str(value, what, 64)
    if not _INTEROP_NAME.match(name):
        raise ProtocolError(f"{what} must be a letter, then up to 63 letters, digits or _.:-")
    return name


def _map(value: Any, what: str) -> dict[str, Any] | None:
    if value is not None and type(value) is not dict:
        raise ProtocolError(f"{what} must be a map or nil")
    return _payload(value)


def _url(value: Any) -> str:
    url = _str(value, "url", MAX_PATH_BYTES)
    if not url.startswith("/") or url.startswith("//") or "#" in url:
        raise ProtocolError("url must be a path on this site (no scheme, host or fragment)")
    return url


def _mode(value: Any) -> int:
    mode = _int(value, "mode")
    if mode not in (NAV_PUSH, NAV_REPLACE, NAV_POP):
        raise ProtocolError(f"unknown navigation mode {mode}")
    return mode


def html_hash(html: str) -> str:
    """Fingerprint of rendered HTML: the client sends its SSR page's back in HELLO."""
    return hashlib.blake2b(html.encode(), digest_size=8).hexdigest()
