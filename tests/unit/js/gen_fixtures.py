"""Regenerate fixtures.json for the node tests of vango_mp/static/vango.js.

    python3 tests/unit/js/gen_fixtures.py

The vectors come from the Python libraries the server uses (msgpack with
use_bin_type=True, lz4.block with store_size=True) and from
vango_mp.protocol itself, so the JS codec is checked against the real
server encoder, and the protocol constants against their source.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import sys

import lz4.block
import msgpack

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from vango_mp import protocol  # noqa: E402

OUT = pathlib.Path(__file__).with_name("fixtures.json")


def tag(value):
    """JSON form of a msgpack value: bytes become {"$bin": hex}."""
    if isinstance(value, bytes):
        return {"$bin": value.hex()}
    if isinstance(value, list):
        return [tag(v) for v in value]
    if isinstance(value, dict):
        return {k: tag(v) for k, v in value.items()}
    return value


ROUNDTRIP = [
    None, True, False,
    0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**53 - 1,
    -1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**53) + 1,
    1.5, -0.25, 3.141592653589793, 1e300,
    "", "a", "é日本語 🎉", "\ufeffbom", "x" * 31, "x" * 32, "y" * 255, "y" * 256,
    b"", b"\x00\xff", bytes(range(256)) * 2,
    [], [1, [2, [3, []]]], list(range(15)), list(range(16)),
    {}, {"a": 1, "b": [True, None], "c": {"d": "e"}},
    {f"k{i}": i for i in range(15)}, {f"k{i}": i for i in range(16)},
    # Real frames, both directions.
    [protocol.HELLO, 1, "tok", "/counter?x=1", None, 0],
    [protocol.EVENT, 7, 12, "submit", {"form": {"title": "milk", "done": "on"}}],
    [protocol.EVENT, 8, 3, "keydown", {"key": "Enter", "ctrl": False, "shift": True, "alt": False, "meta": False}],
    [protocol.PING, 1_700_000_000_123],
    [protocol.WELCOME, "s" * 43, 5, True, 2],
    [protocol.PATCHES, 6, [
        [protocol.SET_TEXT, 3, 0, "Count: 1"],
        [protocol.SET_ATTR, 4, "class", "on"],
        [protocol.REMOVE_ATTR, 4, "disabled"],
        [protocol.INSERT, 0, 1, ["li", 9, {"class": "todo", "data-ve": "click"}, ["milk"]]],
        [protocol.REMOVE, 0, 2],
        [protocol.MOVE, 0, 0, 2],
        [protocol.REPLACE, 0, 1, "text"],
    ]],
]

# Python packs these with types the JS encoder never picks: decode only.
DECODE_ONLY = [
    (msgpack.packb(1.5, use_single_float=True), 1.5),
    (msgpack.packb(-0.375, use_single_float=True), -0.375),
    (msgpack.packb(2**64 - 1), float(2**64)),
    (msgpack.packb(-(2**63)), -(2**63)),
    (b"\xd9\x01a", "a"),  # str8 with a short string
    (b"\xdc\x00\x01\x05", [5]),  # array16 with one element
    (b"\xde\x00\x01\xa1k\x01", {"k": 1}),  # map16 with one entry
]

# 32-bit lengths: too big to store, so the test builds the value the same way
# and compares a digest of its encoding with Python's.
BIG = [
    ("str", 70000, "z" * 70000),
    ("bin", 70000, b"\x01" * 70000),
    ("array", 70000, list(range(70000))),
    ("map", 70000, {f"k{i}": i for i in range(70000)}),
]

BAD = ["c1", "d4000000", "a2", "91", "dd00000005", "0000", "c7"]  # reserved, ext, short, trailing


def lz4_cases():
    html = "".join(f'<li class="todo" data-hid="{i}"><span>item {i}</span></li>' for i in range(40))
    full = [protocol.FULL, 42, html]
    full_body = msgpack.packb(full, use_bin_type=True)
    assert len(full_body) > 1024
    cases = {
        "empty": b"",
        "short": b"hello",
        "run": b"a" * 3000,
        "pattern": b"abc" * 700,
        "random": bytes((i * 7919 + 13) % 251 for i in range(600)),
        "full_frame_body": full_body,
        "long_literals": bytes(range(256)) * 3 + b"tail" * 100,
    }
    out = []
    for name, data in cases.items():
        blocks = [lz4.block.compress(data, store_size=True, mode=m) for m in ("default", "high_compression")]
        assert all(lz4.block.decompress(b) == data for b in blocks)
        out.append({"name": name, "data": data.hex(), "blocks": [b.hex() for b in blocks]})
    return out


def messages():
    """Whole messages from vango_mp.protocol.encode: raw and lz4-compressed."""
    big_html = "<p>" + "hello world " * 100 + "</p>"
    frames = [
        [protocol.WELCOME, "sid-1", 0, False, 3],
        [protocol.FULL, 9, big_html],
        [protocol.PATCHES, 10, [[protocol.INSERT, 0, 0, ["ul", 5, {}, ["x" * 40] * 30]]]],
        [protocol.S_PING, 123456],
    ]
    out = []
    for frame in frames:
        wire = protocol.encode(frame)
        out.append({"wire": wire.hex(), "flag": wire[0], "frame": frame})
    assert {m["flag"] for m in out} == {protocol.FLAG_RAW, protocol.FLAG_LZ4}
    return out


def constants():
    names = [
        "VERSION", "FLAG_RAW", "FLAG_LZ4",
        "HELLO", "EVENT", "ACK", "RESYNC", "PING", "PONG",
        "WELCOME", "PATCHES", "FULL", "S_PING", "S_PONG",
        "SET_TEXT", "SET_ATTR", "REMOVE_ATTR", "INSERT", "REMOVE", "MOVE", "REPLACE",
        "NAVIGATE", "PREFETCH", "NAV", "NAV_PUSH", "NAV_REPLACE", "NAV_POP", "NAV_LOAD",
        "EVENT_DONE", "ERROR", "HOOK", "ISLAND", "CALLS",
    ]
    return {
        "values": {n: getattr(protocol, n) for n in names},
        "EVENT_NAMES": sorted(protocol.EVENT_NAMES),
        "Close": {c.name: int(c) for c in protocol.Close},
    }


def navigation():
    """Live navigation's frame types and history modes, for nav.test.js."""
    names = ["NAVIGATE", "PREFETCH", "NAV", "NAV_PUSH", "NAV_REPLACE", "NAV_POP", "NAV_LOAD"]
    return {n: getattr(protocol, n) for n in names}


def main() -> None:
    fixtures = {
        "msgpack": [{"hex": msgpack.packb(v, use_bin_type=True).hex(), "value": tag(v)} for v in ROUNDTRIP],
        "msgpack_decode_only": [{"hex": b.hex(), "value": v} for b, v in DECODE_ONLY],
        "msgpack_big": [
            {"kind": kind, "n": n, "sha256": hashlib.sha256(msgpack.packb(v, use_bin_type=True)).hexdigest()}
            for kind, n, v in BIG
        ],
        "msgpack_bad": BAD,
        "lz4": lz4_cases(),
        "messages": messages(),
        "protocol": constants(),
        "navigation": navigation(),
    }
    OUT.write_text(json.dumps(fixtures, separators=(",", ":"), ensure_ascii=False) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
