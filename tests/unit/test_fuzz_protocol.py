"""Fuzz the client frame decoder (issue 17, point 12): whatever the bytes, ``decode_client``
returns a validated frame or raises ``ProtocolError`` -- never anything else -- and what it
returns keeps every documented limit. Random bytes, random msgpack structures (raw and
lz4), valid frames, and valid frames mutated field by field and byte by byte."""

from __future__ import annotations

from typing import Any

import lz4.block
import msgpack
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from vango_mp import protocol
from vango_mp.protocol import Close, ProtocolError

MAX = protocol.MAX_MESSAGE_SIZE
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# region Strategies ------------------------------------------------------------------

INTS = st.one_of(
    st.integers(-(2**63), 2**64 - 1),
    st.sampled_from([0, 1, -1, 2**31, 2**32, 2**53 - 1, 2**53, 2**53 + 1, 2**63 - 1, 2**64 - 1, -(2**63)]),
)
TEXT = st.one_of(st.text(max_size=40), st.sampled_from(["", "/", "/counter", "click", "input", "x" * 300]))
SCALARS = st.one_of(
    st.none(), st.booleans(), INTS, st.floats(allow_nan=True, allow_infinity=True), TEXT, st.binary(max_size=16),
)
KEYS = st.one_of(TEXT, INTS, st.none(), st.booleans(), st.binary(max_size=4))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=6), st.dictionaries(KEYS, inner, max_size=5)),
    max_leaves=40,
)
PAYLOAD_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.floats(), st.text(max_size=30))
PAYLOADS = st.one_of(st.none(), st.dictionaries(
    st.sampled_from(["value", "checked", "key", "ctrl", "shift", "alt", "meta", "form"]),
    st.one_of(PAYLOAD_SCALARS, st.dictionaries(st.text(max_size=8), PAYLOAD_SCALARS, max_size=4)),
    max_size=5,
))
SEQ = st.integers(0, protocol.MAX_INT)


def valid_frames() -> st.SearchStrategy[list[Any]]:
    hello = st.builds(
        lambda csrf, path, sid, seq, h, short: [protocol.HELLO, protocol.VERSION, csrf, path, sid, seq, h][:6 if short else 7],
        st.text(max_size=64), st.text(max_size=64).map(lambda p: "/" + p),
        st.one_of(st.none(), st.text(min_size=1, max_size=40)), SEQ,
        st.one_of(st.none(), st.text(alphabet="0123456789abcdef", min_size=16, max_size=16)), st.booleans(),
    )
    event = st.builds(lambda c, hid, name, p: [protocol.EVENT, c, hid, name, p],
                      SEQ, SEQ, st.sampled_from(sorted(protocol.EVENT_NAMES)), PAYLOADS)
    simple = st.builds(lambda kind, n: [kind, n],
                       st.sampled_from([protocol.ACK, protocol.RESYNC, protocol.PING, protocol.PONG]), SEQ)
    return st.one_of(hello, event, simple)


def pack(value: Any, flag: int = 0) -> bytes:
    body = msgpack.packb(value, use_bin_type=True)
    if flag == 1:
        return b"\x01" + lz4.block.compress(body, store_size=True)
    return bytes([flag]) + body


# endregion
# region The property ----------------------------------------------------------------


def decode(message: bytes | str, max_size: int = MAX) -> protocol.ClientFrame | ProtocolError:
    """decode_client's result or its ProtocolError; any other exception fails the test."""
    try:
        frame = protocol.decode_client(message, max_size)
    except ProtocolError as err:
        assert isinstance(err.code, Close) and isinstance(err.reason, str) and err.reason
        return err
    check_limits(frame)
    return frame


def check_limits(frame: protocol.ClientFrame) -> None:
    """What the decoder promises about a frame it accepts (docs/PROTOCOL.md, limits)."""
    def nbytes(s: str) -> int:
        return len(s.encode())

    if isinstance(frame, protocol.Hello):
        assert frame.version == protocol.VERSION
        assert type(frame.path) is str and frame.path.startswith("/") and nbytes(frame.path) <= protocol.MAX_PATH_BYTES
        assert type(frame.csrf) is str and nbytes(frame.csrf) <= protocol.MAX_CSRF_BYTES
        assert frame.session_id is None or (type(frame.session_id) is str
                                            and nbytes(frame.session_id) <= protocol.MAX_SESSION_ID_BYTES)
        assert type(frame.last_seq) is int and 0 <= frame.last_seq <= protocol.MAX_INT
    elif isinstance(frame, protocol.ClientEvent):
        assert frame.name in protocol.EVENT_NAMES
        assert all(type(v) is int and 0 <= v <= protocol.MAX_INT for v in (frame.cseq, frame.hid))
        assert frame.payload is None or type(frame.payload) is dict
        check_payload(frame.payload, 1)
    else:
        assert isinstance(frame, (protocol.Ack, protocol.Resync, protocol.Ping, protocol.Pong))
        value = next(iter(vars(frame).values())) if hasattr(frame, "__dict__") else getattr(frame, frame.__slots__[0])
        assert type(value) is int and 0 <= value <= protocol.MAX_INT


def check_payload(value: Any, depth: int) -> None:
    if value is None or type(value) in (bool, float):
        return
    if type(value) is int:
        assert abs(value) <= protocol.MAX_INT
    elif type(value) is str:
        assert len(value.encode()) <= protocol.MAX_SCALAR_BYTES
    else:
        assert depth <= protocol.MAX_PAYLOAD_DEPTH and type(value) in (dict, list)
        assert len(value) <= protocol.MAX_PAYLOAD_KEYS
        for k, v in (value.items() if type(value) is dict else enumerate(value)):
            assert type(value) is list or type(k) is str
            check_payload(v, depth + 1)


# endregion
# region Tests ------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=512))
@example(b"")
@example(b"\x00")
@example(b"\x01")
@example(b"\x01\xff\xff\xff\x7f")
@example(b"\x00\xc1")
@example(b"\x00\x91\xc1")
def test_random_bytes(data: bytes) -> None:
    decode(data)
    decode(b"\x00" + data)
    decode(b"\x01" + data)


@FUZZ
@given(VALUES, st.sampled_from([0, 1, 2, 255]))
def test_random_msgpack_structures(value: Any, flag: int) -> None:
    decode(pack(value, flag))
    if isinstance(value, list) and value:
        decode(pack([protocol.EVENT, *value[:4]], flag))  # a real frame type with random fields
        decode(pack([protocol.HELLO, *value[:6]], flag))


@FUZZ
@given(valid_frames(), st.booleans())
def test_valid_frames_decode(frame: list[Any], compress: bool) -> None:
    result = decode(pack(frame, 1 if compress else 0))
    assert not isinstance(result, ProtocolError), (frame, result)
    assert type(result) is {
        protocol.HELLO: protocol.Hello, protocol.EVENT: protocol.ClientEvent, protocol.ACK: protocol.Ack,
        protocol.RESYNC: protocol.Resync, protocol.PING: protocol.Ping, protocol.PONG: protocol.Pong,
    }[frame[0]]


@FUZZ
@given(valid_frames(), st.data())
def test_valid_frames_mutated_field_by_field(frame: list[Any], data: st.DataObject) -> None:
    frame = list(frame)
    for _ in range(data.draw(st.integers(1, 3))):
        op = data.draw(st.sampled_from(["replace", "drop", "insert", "wrap", "type"]))
        i = data.draw(st.integers(0, max(0, len(frame) - 1)))
        if op == "replace" and frame:
            frame[i] = data.draw(VALUES)
        elif op == "drop" and frame:
            del frame[i]
        elif op == "insert":
            frame.insert(i, data.draw(VALUES))
        elif op == "wrap" and frame:
            frame[i] = data.draw(st.sampled_from([[frame[i]], {"v": frame[i]}, str(frame[i]), None]))
        else:
            frame[:1] = [data.draw(st.one_of(INTS, TEXT, st.none(), st.booleans(), st.floats()))]
    decode(pack(frame, data.draw(st.sampled_from([0, 1]))))


@FUZZ
@given(valid_frames(), st.data())
def test_valid_frames_mutated_byte_by_byte(frame: list[Any], data: st.DataObject) -> None:
    message = bytearray(pack(frame, data.draw(st.sampled_from([0, 1]))))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "drop", "insert", "truncate"]))
        i = data.draw(st.integers(0, max(0, len(message) - 1)))
        if op == "flip" and message:
            message[i] = data.draw(st.integers(0, 255))
        elif op == "drop" and message:
            del message[i]
        elif op == "insert":
            message.insert(i, data.draw(st.integers(0, 255)))
        else:
            del message[i:]
    decode(bytes(message))


@FUZZ
@given(st.integers(0, 2**32 - 1), valid_frames())
def test_lz4_size_header_that_lies(size: int, frame: list[Any]) -> None:
    body = msgpack.packb(frame, use_bin_type=True)
    decode(b"\x01" + size.to_bytes(4, "little") + lz4.block.compress(body, store_size=False))


@FUZZ
@given(st.integers(1, 4096), st.data())
def test_oversized_messages_are_message_too_large(max_size: int, data: st.DataObject) -> None:
    extra = data.draw(st.integers(1, 2048))
    raw = pack([protocol.EVENT, 1, 1, "input", {"value": "x" * (max_size + extra)}])
    result = decode(raw, max_size)
    assert isinstance(result, ProtocolError) and result.code == Close.MESSAGE_TOO_LARGE
    # Compressed small on the wire, large inside: refused by its declared size, before inflating.
    bomb = pack([protocol.EVENT, 1, 1, "input", {"value": "a" * (max_size + extra)}], flag=1)
    result = decode(bomb, max_size)
    assert isinstance(result, ProtocolError) and result.code == Close.MESSAGE_TOO_LARGE


@FUZZ
@given(st.text(max_size=200))
def test_text_messages_are_refused(text: str) -> None:
    result = decode(text)
    assert isinstance(result, ProtocolError) and result.code == Close.PROTOCOL_ERROR


@pytest.mark.parametrize("depth", [10, 100, 500, 1025, 2000, 10_000])
def test_deep_nesting(depth: int) -> None:
    for body in (b"\x91" * depth + b"\xc0", b"\x92\x02" + b"\x91" * depth + b"\xc0"):
        assert isinstance(decode(b"\x00" + body), ProtocolError)


@pytest.mark.parametrize("depth", [999, 1000, 1024])
def test_deep_nesting_of_the_frame_type(depth: int) -> None:
    """A list nested ~1000 deep as the frame type once made repr() raise RecursionError."""
    assert isinstance(decode(b"\x00" + b"\x91" * depth + b"\xc0"), ProtocolError)


# endregion
