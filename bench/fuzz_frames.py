"""Random values, frames and byte strings for the fuzzers (bench/fuzz.py, tests/unit/test_fuzz_protocol.py style).

Every generator takes a ``random.Random``, so a seed replays the same choices.
"""

from __future__ import annotations

import random
from typing import Any

import lz4.block
import msgpack

from vango_mp import protocol

EVENT_NAMES = sorted(protocol.EVENT_NAMES)


def rand_int(rng: random.Random) -> int:
    """Integers around every boundary the decoder checks."""
    return rng.choice([
        0, 1, 2, 3, -1, -2, 7, 100, 255, 256, 65535, 65536, 2**31 - 1, 2**31, 2**32, 2**53 - 1, 2**53, 2**53 + 1,
        2**63 - 1, 2**64 - 1, -(2**31), -(2**53), -(2**63), rng.randrange(1_000_000), -rng.randrange(1_000_000),
    ])


def rand_str(rng: random.Random, limit: int = 64) -> str:
    alphabet = rng.choice([
        "abcdefghijklmnopqrstuvwxyz", "0123456789", "/?#&=%.", "\x00\x01\t\n\r\x7f", "é€𝄞\u200b\ufeff\u202e",
        "<>\"'`", "Aa0-_",
    ])
    n = rng.choice([0, 1, 2, 8, 32, limit, rng.randrange(limit + 1)])
    return "".join(rng.choice(alphabet) for _ in range(n))


def rand_value(rng: random.Random, depth: int = 0) -> Any:
    """A random msgpack-able structure (nested lists and maps, every scalar type, ext types)."""
    r = rng.random()
    if depth > 4 or r < 0.55:
        return rng.choice([
            lambda: None, lambda: rng.random() < 0.5, lambda: rand_int(rng), lambda: rng.uniform(-1e9, 1e9),
            lambda: float("nan"), lambda: float("inf"), lambda: rand_str(rng),
            lambda: rng.randbytes(rng.randrange(16)), lambda: msgpack.ExtType(rng.randrange(128), rng.randbytes(4)),
        ])()
    if r < 0.8:
        return [rand_value(rng, depth + 1) for _ in range(rng.randrange(6))]
    keys = [rand_str(rng, 8), rand_int(rng), None, rng.randbytes(2)]
    out: dict[Any, Any] = {}
    for _ in range(rng.randrange(5)):
        k = rng.choice(keys) if rng.random() < 0.3 else rand_str(rng, 12)
        try:
            hash(k)
        except TypeError:
            continue
        out[k] = rand_value(rng, depth + 1)
    return out


def pack(value: Any, *, compress: bool = False) -> bytes:
    body = msgpack.packb(value, use_bin_type=True)
    if compress:
        return b"\x01" + lz4.block.compress(body, store_size=True)
    return b"\x00" + body


def payload(rng: random.Random) -> dict[str, Any] | None:
    """An event payload: mostly well-formed, sometimes deep, long, or odd."""
    r = rng.random()
    if r < 0.2:
        return None
    if r < 0.6:
        return {"value": rand_str(rng, 200)}
    if r < 0.7:
        return {"form": {"title": rand_str(rng, 100), rand_str(rng, 8): rand_str(rng, 8)}}
    if r < 0.8:
        return {"key": rng.choice(["Enter", "a", "Escape", ""]), "ctrl": rng.random() < 0.5, "shift": False}
    if r < 0.9:
        return {"value": "x" * rng.choice([1024, 16 * 1024, 16 * 1024 + 1, 60_000])}
    nested: Any = rand_str(rng)
    for _ in range(rng.randrange(1, 7)):
        nested = {"k": nested} if rng.random() < 0.5 else [nested]
    return {"form": nested}


def mutate(rng: random.Random, frame: list[Any]) -> list[Any]:
    """A valid frame with one to three fields changed, dropped, added or retyped."""
    frame = list(frame)
    for _ in range(rng.randrange(1, 4)):
        op = rng.randrange(5)
        if op == 0 and frame:
            frame[rng.randrange(len(frame))] = rand_value(rng)
        elif op == 1 and frame:
            del frame[rng.randrange(len(frame))]
        elif op == 2:
            frame.insert(rng.randrange(len(frame) + 1), rand_value(rng))
        elif op == 3 and frame:
            i = rng.randrange(len(frame))
            frame[i] = rng.choice([str(frame[i]), [frame[i]], {"v": frame[i]}, None, -1, 2**64 - 1])
        else:
            frame[:1] = [rng.choice([0, 7, 16, 17, 18, 19, 255, -1, "1", 1.0, True, None])]
    return frame


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """Flip, drop, insert or truncate bytes of an encoded message."""
    b = bytearray(data)
    for _ in range(rng.randrange(1, 5)):
        op = rng.randrange(4)
        if op == 0 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 1 and b:
            del b[rng.randrange(len(b))]
        elif op == 2:
            b.insert(rng.randrange(len(b) + 1), rng.randrange(256))
        elif b:
            del b[rng.randrange(len(b)):]
    return bytes(b)


def garbage(rng: random.Random, max_size: int) -> bytes | str:
    """One invalid (or at least unusual) message."""
    kind = rng.randrange(11)
    if kind == 0:
        return rng.randbytes(rng.randrange(64))
    if kind == 1:
        return b"\x00" + rng.randbytes(rng.randrange(64))
    if kind == 2:
        return pack(rand_value(rng))
    if kind == 3:
        return pack(rand_value(rng), compress=True)
    if kind == 4:  # lz4 whose size header lies (huge, negative, zero, a little short)
        body = msgpack.packb([protocol.PING, 1])
        size = rng.choice([0, 1, len(body) - 1, max_size, max_size + 1, 2**31 - 1, 2**32 - 1])
        return b"\x01" + size.to_bytes(4, "little") + lz4.block.compress(body, store_size=False)
    if kind == 5:  # a decompression bomb within the declared limit
        return pack([protocol.EVENT, 1, 1, "input", {"value": "a" * (max_size - 64)}], compress=True)
    if kind == 6:
        return rand_str(rng, 100)  # a text message
    if kind == 7:
        return b""
    if kind == 8:  # oversized, raw or compressed
        n = rng.choice([max_size + 1, max_size * 2, 1 << 20])
        return rng.choice([b"\x00" + b"\x91" + b"\xda" + (n & 0xFFFF).to_bytes(2, "big") + b"x" * n,
                           pack([protocol.EVENT, 1, 1, "input", {"value": "x" * n}]),
                           rng.randbytes(n)])
    if kind == 9:  # deep nesting (msgpack itself stops at 1024)
        return b"\x00" + b"\x91" * rng.choice([10, 100, 500, 999, 1000, 1024, 2000, 5000]) + b"\xc0"
    return bytes([rng.randrange(2, 256)]) + msgpack.packb([protocol.PING, 1])  # unknown flag byte
