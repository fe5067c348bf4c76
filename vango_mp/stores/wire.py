"""Redis key names and the signed messages machines exchange through Redis.

Everything vango-mp keeps in Redis lives under ``vango:``::

    vango:s:<sid>        sealed session blob (persist.seal), PX = resume window
    vango:own:<sid>      lease: "<fence>|<machine>", the machine that owns the session
    vango:fence:<sid>    the session's fencing counter (INCR on every change of owner)
    vango:m:<machine>    a live machine's heartbeat (PX a few seconds)
    vango:g:v / vango:g:s  global signals: msgpack value / sequence number, by key
    vango:req:<machine>  channel: requests to one machine (session.adopt)
    vango:rep:<rid>      list: the answer to one request (BLPOP)
    vango:census         set: machines with session counts; vango:census:m:<machine> hash: "total", "ip:<addr>"
    vango:g              channel: global-signal updates, published by the Lua script
    vango:bc             channel: cluster broadcasts (is_cluster_kind: "cluster.*", "auth.logout")

Requests, answers and broadcasts are signed (HMAC-SHA256, a key derived from
``persistence_secret``) and msgpack-encoded: a message that does not verify
or has the wrong shape is dropped and counted, never acted on. Global-signal
updates are written by our Lua script inside Redis and are checked for shape
and size only (Lua cannot sign); their values are msgpack, never code.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import msgpack

PREFIX = "vango:"
GLOBAL_VALUES, GLOBAL_SEQS = PREFIX + "g:v", PREFIX + "g:s"
GLOBAL_CHANNEL = PREFIX + "g"
BROADCAST_CHANNEL = PREFIX + "bc"
CLUSTER_KIND_PREFIX = "cluster."  # bus broadcasts with such a kind reach every machine ...
CLUSTER_KINDS = frozenset({"auth.logout"})  # ... and these (vango_mp.authlife's logout everywhere)
MACHINE_TTL_MS = 5000  # a machine that stops refreshing its heartbeat is gone after this
MAX_MESSAGE = 16 * 1024 * 1024
_MAC = 32


def is_cluster_kind(kind: str) -> bool:
    """Whether a bus broadcast of ``kind`` goes to every machine's workers, not only this machine's."""
    return kind.startswith(CLUSTER_KIND_PREFIX) or kind in CLUSTER_KINDS


CENSUS_MACHINES = PREFIX + "census"


def census_key(machine: str) -> str:
    return f"{PREFIX}census:m:{machine}"


def session_key(session_id: str) -> str:
    return f"{PREFIX}s:{session_id}"


def lease_key(session_id: str) -> str:
    return f"{PREFIX}own:{session_id}"


def fence_key(session_id: str) -> str:
    return f"{PREFIX}fence:{session_id}"


def machine_key(machine: str) -> str:
    return f"{PREFIX}m:{machine}"


def request_channel(machine: str) -> str:
    return f"{PREFIX}req:{machine}"


def reply_key(rid: str) -> str:
    return f"{PREFIX}rep:{rid}"


class Rejected(ValueError):
    """Data read from Redis that must not be trusted (bad signature, shape or size)."""


class Signer:
    """Signs and verifies the messages machines exchange (a key derived from the shared secret)."""

    def __init__(self, secret: bytes) -> None:
        self._key = hashlib.sha256(b"vango-cluster:" + secret).digest()

    def pack(self, message: dict[str, Any]) -> bytes:
        body = msgpack.packb(message, use_bin_type=True)
        return hmac.new(self._key, body, hashlib.sha256).digest() + body

    def unpack(self, data: Any) -> dict[str, Any]:
        """The message, if it is ours and well formed (Rejected otherwise)."""
        if not isinstance(data, bytes) or len(data) <= _MAC or len(data) > MAX_MESSAGE:
            raise Rejected("malformed")
        mac, body = data[:_MAC], data[_MAC:]
        if not hmac.compare_digest(mac, hmac.new(self._key, body, hashlib.sha256).digest()):
            raise Rejected("bad signature")
        try:
            message = msgpack.unpackb(body, raw=False, strict_map_key=False)
        except Exception:
            raise Rejected("malformed") from None
        if not isinstance(message, dict):
            raise Rejected("malformed")
        return message


def decode_update(data: Any) -> tuple[str, int, str, int, int, Any]:
    """A global-signal update as the Lua script publishes it: key, seq, machine, pid, wid, value."""
    if not isinstance(data, bytes) or len(data) > MAX_MESSAGE:
        raise Rejected("malformed update")
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=MAX_MESSAGE)
    unpacker.feed(data)
    try:
        parts = [unpacker.unpack() for _ in range(6)]
    except Exception:
        raise Rejected("malformed update") from None
    key, seq, machine, pid, wid, value = parts
    if unpacker.tell() != len(data) or not isinstance(key, str) or not isinstance(machine, str) \
            or any(type(v) is not int for v in (seq, pid, wid)):
        raise Rejected("malformed update")
    return key, seq, machine, pid, wid, value


def update_header(machine: str, pid: int, wid: int) -> bytes:
    """What the Lua script puts between (key, seq) and the value of a published update."""
    return b"".join(msgpack.packb(v, use_bin_type=True) for v in (machine, pid, wid))
