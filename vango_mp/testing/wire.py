"""Server frames as the test client reads them, and the browser client's timing constants."""

from __future__ import annotations

from typing import Any

import lz4.block
import msgpack

from ..protocol import FLAG_LZ4, FLAG_RAW

ABNORMAL_CLOSE = 1006  # what a browser reports when the socket died without a close frame
ACK_DELAY = 1.0  # vango.js ACK_DELAY_MS
ACK_EVERY_FRAMES = 16  # vango.js ACK_EVERY_FRAMES
RESYNC_RETRY = 3.0  # vango.js RESYNC_RETRY_MS: the server rate-limits RESYNC
MAX_SERVER_MESSAGE = 16 * 1024 * 1024  # generous: FULL frames of big pages
MAX_URL = 8192  # vango.js MAX_URL (protocol.py MAX_PATH_BYTES): a longer link loads in full
PREFETCH_TTL = 30.0  # vango.js PREFETCH_TTL_MS: one PREFETCH per URL per 30 s


def decode_server(message: bytes | str) -> list[Any]:
    """Decode one server message (flag byte, maybe lz4, msgpack array).

    :func:`vango_mp.protocol.unpack_message` guards the *server* against
    clients (arrays of at most 256 items, 64 KiB); server frames legitimately
    exceed that (a PATCHES frame inserting 300 rows), so the client decodes
    with its own, generous bounds.
    """
    if not isinstance(message, bytes):
        raise ValueError("text message from the server")
    if not message:
        raise ValueError("empty message")
    flag, body = message[0], message[1:]
    if flag == FLAG_LZ4:
        if len(body) < 4 or int.from_bytes(body[:4], "little") > MAX_SERVER_MESSAGE:
            raise ValueError("lz4 block too large")
        body = lz4.block.decompress(body)
    elif flag != FLAG_RAW:
        raise ValueError(f"unknown flag byte {flag}")
    frame = msgpack.unpackb(body, raw=False, strict_map_key=False)
    if not isinstance(frame, list) or not frame:
        raise ValueError("frame is not a non-empty array")
    return frame
