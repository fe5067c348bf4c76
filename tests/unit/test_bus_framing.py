"""Bus framing: frames split anywhere decode intact; garbage and oversize are final errors."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vango_mp import bus

# msgpack-able values as the bus carries them (string-keyed maps).
leaves = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=20) | st.binary(max_size=20)
values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
ints = st.integers(-(2**31), 2**31)
text = st.text(max_size=16)

messages = st.one_of(
    st.builds(bus.Hello, ints, ints, ints),
    st.builds(bus.Ready),
    st.builds(bus.Heartbeat, st.dictionaries(text, values, max_size=4)),
    st.builds(bus.Request, ints, ints, text, values),
    st.builds(bus.Response, ints, st.booleans(), values),
    st.builds(bus.Broadcast, ints, text, values),
    st.builds(bus.GlobalWrite, ints, text, text, st.lists(values, max_size=3), values),
    st.builds(bus.GlobalUpdate, text, ints, values, ints, ints),
    st.builds(bus.GlobalError, ints, text, text),
    st.builds(bus.Snapshot, st.dictionaries(text, st.tuples(ints, values).map(list), max_size=3)),
    st.builds(bus.Order, text, values),
    # Large enough to be lz4-compressed on the wire.
    st.builds(bus.Broadcast, ints, text, st.text(min_size=1, max_size=3).map(lambda s: s * 30000)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(messages, min_size=1, max_size=8), st.data())
def test_frames_split_at_random_boundaries_decode_intact(msgs: list[bus.Message], data: st.DataObject) -> None:
    stream = b"".join(bus.encode(m) for m in msgs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    decoder = bus.FrameDecoder()
    out: list[bus.Message] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)]):
        out += decoder.feed(stream[start:end])
    assert out == msgs


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_raises_only_protocol_errors(garbage: bytes) -> None:
    decoder = bus.FrameDecoder(max_frame=1024)
    try:
        for msg in decoder.feed(garbage):
            assert isinstance(msg, bus.Message)
    except bus.BusProtocolError:
        pass


@pytest.mark.parametrize("frame", [
    msgpack.packb({"not": "a list"}),
    msgpack.packb([99, 1, 2]),                      # unknown code
    msgpack.packb([1, 0, 1]),                       # Hello with a missing field
    msgpack.packb([1, "slot", 1, 0]),               # wrong field type
    msgpack.packb([1, True, 1, 0]),                 # bool is not an int here
    msgpack.packb(msgpack.ExtType(7, b"xx")),       # unknown ext type
    b"\xc1",                                        # never-used msgpack byte
])
def test_malformed_frames_are_rejected(frame: bytes) -> None:
    with pytest.raises(bus.BusProtocolError):
        bus.FrameDecoder().feed(frame)


def test_oversized_frame_is_rejected_even_when_fed_slowly() -> None:
    decoder = bus.FrameDecoder(max_frame=64 * 1024)
    frame = msgpack.packb([6, 0, "x", "y" * 100_000])
    with pytest.raises(bus.BusProtocolError):
        for i in range(0, len(frame), 4096):
            decoder.feed(frame[i:i + 4096])


def test_a_frame_near_the_limit_followed_by_a_full_read_is_accepted() -> None:
    """The frame still arriving plus the next read can pass ``max_frame`` together; neither
    alone does, so nothing is refused (the hub once dropped healthy workers this way)."""
    rng = __import__("random").Random(3)
    frames = [bus.Broadcast(0, "k", rng.randbytes(60_000)) for _ in range(12)]  # incompressible
    stream = b"".join(bus.encode(f) for f in frames)
    decoder = bus.FrameDecoder(max_frame=64 * 1024, max_read=64 * 1024)
    got = decoder.feed(stream[:50_000])  # most of the first frame pending
    for at in range(50_000, len(stream), 64 * 1024):
        got += decoder.feed(stream[at:at + 64 * 1024])
    assert got == frames


def test_oversized_frame_is_rejected_when_it_arrives_in_one_read() -> None:
    decoder = bus.FrameDecoder(max_frame=32 * 1024, max_read=256 * 1024)
    rng = __import__("random").Random(1)  # small pieces, under lz4's threshold: only the frame's size counts
    frame = bus.encode(bus.Broadcast(0, "k", [rng.randbytes(5_000) for _ in range(10)]))
    assert 32 * 1024 < len(frame) < bus.frames.COMPRESS_THRESHOLD
    with pytest.raises(bus.BusProtocolError, match="exceeds"):
        decoder.feed(frame)


def test_compressed_bomb_is_rejected_by_its_declared_size() -> None:
    big = bus.encode(bus.Broadcast(0, "x", "a" * 2_000_000))
    assert len(big) < 64 * 1024  # lz4 squeezes it well under the limit on the wire
    with pytest.raises(bus.BusProtocolError, match="exceeds"):
        bus.FrameDecoder(max_frame=1024 * 1024).feed(big)


def test_the_decoder_never_drops_a_frame_still_arriving_when_it_releases_its_buffer() -> None:
    """After a big frame, the decoder swaps its unpacker, but only at a frame boundary: cut points
    inside a frame's header, where the unpacker has parsed as far as the input goes, must not count."""
    import random

    from vango_mp.bus.frames import Broadcast, FrameDecoder, encode

    rng = random.Random(7)
    frames = [Broadcast(1, "big", rng.randbytes(1024 * 1024 + 10))] + [  # incompressible: it counts
        Broadcast(1, "k", {"n": i, "pad": "y" * rng.randrange(0, 200)}) for i in range(300)]  # uncompressed
    stream = b"".join(encode(f) for f in frames)
    for _ in range(20):
        decoder, got, at = FrameDecoder(), [], 0
        while at < len(stream):
            step = rng.choice([1, 2, 3, 7, 64, 1000, 70_000])
            got += decoder.feed(stream[at:at + step])
            at += step
        assert [m.body if m.kind == "k" else len(m.body) for m in got] == \
            [len(frames[0].body)] + [f.body for f in frames[1:]]
