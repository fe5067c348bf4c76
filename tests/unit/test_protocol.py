"""Client frame validation: every malformed frame is a ProtocolError with a close code."""

from __future__ import annotations

import lz4.block
import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vango_mp import protocol
from vango_mp.protocol import Close, ProtocolError


def raw(frame: object) -> bytes:
    return b"\x00" + msgpack.packb(frame, use_bin_type=True)


def test_hello_roundtrip() -> None:
    hello = protocol.decode_client(raw([1, 1, "tok", "/counter", None, 0]))
    assert hello == protocol.Hello(1, "tok", "/counter", None, 0, None)


def test_hello_with_ssr_hash_and_resume() -> None:
    hello = protocol.decode_client(raw([1, 1, "tok", "/", "sid", 7, "abc"]))
    assert isinstance(hello, protocol.Hello)
    assert (hello.session_id, hello.last_seq, hello.ssr_hash) == ("sid", 7, "abc")


def test_event_roundtrip() -> None:
    ev = protocol.decode_client(raw([2, 3, 12, "submit", {"form": {"title": "milk"}}]))
    assert ev == protocol.ClientEvent(3, 12, "submit", {"form": {"title": "milk"}})


def test_compressed_client_frame_is_accepted() -> None:
    body = msgpack.packb([3, 5])
    assert protocol.decode_client(b"\x01" + lz4.block.compress(body, store_size=True)) == protocol.Ack(5)


@pytest.mark.parametrize(
    "frame, fragment",
    [
        ([99, 1], "unknown frame type"),
        (["1", 1], "unknown frame type"),
        ([2, 1, 5, "click"], "wants 5 fields"),
        ([2, -1, 5, "click", None], "cseq"),
        ([2, 1, "5", "click", None], "hid"),
        ([2, 1, 5, "mouseover", None], "unknown event"),
        ([2, 1, 5, "click", [1, 2]], "payload must be a map"),
        ([2, 1, 5, "click", {"a": {"b": {"c": {"d": 1}}}}], "nested too deeply"),
        ([1, 2, "tok", "/", None, 0], "version 2 not supported"),
        ([1, 1, "tok", "counter", None, 0], "path must start"),
        ([1, 1, "t" * 300, "/", None, 0], "csrf token longer"),
        ([1, 1, "tok", "/", "s" * 200, 0], "session id longer"),
        ([3, True], "seq must be an integer"),
        ({"a": 1}, "not a non-empty array"),
        ([], "not a non-empty array"),
    ],
)
def test_malformed_frames_are_protocol_errors(frame: object, fragment: str) -> None:
    with pytest.raises(ProtocolError) as err:
        protocol.decode_client(raw(frame))
    assert fragment in err.value.reason
    assert err.value.code == Close.PROTOCOL_ERROR


def test_text_message_rejected() -> None:
    with pytest.raises(ProtocolError, match="text"):
        protocol.decode_client("[1]")


def test_unknown_flag_byte_rejected() -> None:
    with pytest.raises(ProtocolError, match="flag"):
        protocol.decode_client(b"\x07" + msgpack.packb([3, 1]))


def test_oversized_message_closes_with_1009() -> None:
    with pytest.raises(ProtocolError) as err:
        protocol.decode_client(raw([2, 1, 1, "input", {"value": "x" * 70000}]))
    assert err.value.code == Close.MESSAGE_TOO_LARGE


def test_lz4_bomb_rejected_before_inflating() -> None:
    bomb = b"\x01" + (10**9).to_bytes(4, "little") + b"\x00" * 16
    with pytest.raises(ProtocolError) as err:
        protocol.decode_client(bomb)
    assert err.value.code == Close.MESSAGE_TOO_LARGE


def test_garbage_lz4_rejected() -> None:
    with pytest.raises(ProtocolError, match="lz4"):
        protocol.decode_client(b"\x01" + (20).to_bytes(4, "little") + b"\xff" * 8)


def test_binary_values_rejected() -> None:
    with pytest.raises(ProtocolError):
        protocol.decode_client(raw([2, 1, 1, "click", {"v": b"bytes"}]))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_escape_as_other_errors(data: bytes) -> None:
    try:
        protocol.decode_client(data)
    except ProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20) | st.floats(allow_nan=False),
        lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
        max_leaves=20,
    )
)
def test_random_msgpack_values_never_escape(value: object) -> None:
    try:
        protocol.decode_client(raw(value))
    except ProtocolError:
        pass


def test_counter_patch_frame_is_small() -> None:
    frame = protocol.encode_patches(41, [[protocol.SET_TEXT, 7, 0, "Count: 41"]])
    assert frame[0] == protocol.FLAG_RAW
    assert len(frame) <= 38


def test_large_frames_are_lz4_compressed() -> None:
    frame = protocol.encode_full(3, "<p>hello</p>" * 500)
    assert frame[0] == protocol.FLAG_LZ4
    assert msgpack.unpackb(lz4.block.decompress(frame[1:])) == [protocol.FULL, 3, "<p>hello</p>" * 500]
