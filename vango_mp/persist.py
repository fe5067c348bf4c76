"""Sealed session blobs: msgpack -> lz4 -> HMAC-SHA256.

A blob is what travels when a session changes worker (adoption), what the
cold tier keeps of a long-detached session, and what a store would hold::

    b"VS1" | HMAC-SHA256(secret, body) (32 bytes) | body = lz4(msgpack(payload))

The payload names its session id, the app's schema hash and when it was
sealed. :func:`unseal` accepts the current and the previous secret (rotation)
and rejects tampered, foreign-id, stale-schema and over-age blobs with
:class:`BlobRejected`, whose ``reason`` is safe to log and count.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Sequence
from typing import Any

import lz4.block
import msgpack

from . import metrics

log = logging.getLogger("vango_mp.persist")

MAGIC = b"VS1"
_MAC_LEN = 32
MAX_BLOB = 4 * 1024 * 1024


class BlobRejected(Exception):
    """A blob that must not be trusted; ``reason`` names why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Unserializable(TypeError):
    """Session state that msgpack cannot carry (debug mode raises this)."""


def _mac(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, body, hashlib.sha256).digest()


def seal(payload: dict[str, Any], secret: bytes) -> bytes:
    """Pack, compress and sign ``payload`` (which must be msgpack-serializable)."""
    body = lz4.block.compress(msgpack.packb(payload, use_bin_type=True), store_size=True)
    return MAGIC + _mac(secret, body) + body


def unseal(
    blob: bytes, secrets: Sequence[bytes], *, session_id: str, schema: str, max_age: float = 0.0
) -> dict[str, Any]:
    """Verify and open a blob sealed for ``session_id`` under ``schema``."""
    if not isinstance(blob, bytes) or len(blob) > MAX_BLOB or not blob.startswith(MAGIC):
        raise BlobRejected("malformed")
    mac, body = blob[3 : 3 + _MAC_LEN], blob[3 + _MAC_LEN :]
    if not any(hmac.compare_digest(mac, _mac(s, body)) for s in secrets if s):
        raise BlobRejected("tampered")
    try:
        if int.from_bytes(body[:4], "little") > MAX_BLOB:
            raise BlobRejected("malformed")
        payload = msgpack.unpackb(lz4.block.decompress(body), raw=False, strict_map_key=False)
    except BlobRejected:
        raise
    except Exception:
        raise BlobRejected("malformed") from None
    if not isinstance(payload, dict):
        raise BlobRejected("malformed")
    if payload.get("id") != session_id:
        raise BlobRejected("foreign id")
    if payload.get("schema") != schema:
        raise BlobRejected("stale schema")
    if max_age and time.time() - float(payload.get("ts", 0)) > max_age:
        raise BlobRejected("too old")
    return payload


def portable(values: dict[str, Any], *, debug: bool, what: str) -> dict[str, Any]:
    """The entries of ``values`` msgpack can carry.

    In debug mode an unserializable value raises :class:`Unserializable`; in
    production it is logged, counted (``vango_persist_dropped_total``) and
    left out, so the rest of the session still moves.
    """
    out: dict[str, Any] = {}
    for key, value in values.items():
        try:
            msgpack.packb(value, use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as err:
            if debug:
                raise Unserializable(f"{what} {key!r}: {type(value).__name__} cannot be persisted ({err})") from None
            log.error("%s %r of type %s cannot be persisted; left out", what, key, type(value).__name__)
            metrics.inc("vango_persist_dropped_total", what=what)
            continue
        out[key] = value
    return out
