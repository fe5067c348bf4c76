"""The test client's seq order, RESYNC and ACK (vango_mp.testing.sequence), as vango.js's client.test.js has them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from vango_mp import protocol
from vango_mp.testing import sequence
from vango_mp.testing.sequence import Sequence
from vango_mp.testing.wire import ACK_EVERY_FRAMES


def _seq() -> tuple[Sequence, list[list[Any]]]:
    sent: list[list[Any]] = []
    return Sequence(sent.append), sent


def test_in_order_frames_apply_duplicates_are_skipped_and_a_gap_asks_for_resync_once() -> None:
    async def go() -> None:
        seq, sent = _seq()
        assert seq.next_is(1)
        seq.applied(1)
        assert not seq.next_is(1)  # a replay overlapping what was applied
        assert not seq.next_is(3) and not seq.next_is(4)  # a gap: RESYNC, not repeated within RESYNC_RETRY
        assert sent == [[protocol.RESYNC, 1]]
        assert seq.next_is(2) and seq.last == 1
        seq.stop()

    asyncio.run(go())


def test_ack_goes_out_at_once_every_16_frames_and_else_after_the_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sequence, "ACK_DELAY", 0.01)

    async def go() -> None:
        seq, sent = _seq()
        for n in range(1, ACK_EVERY_FRAMES + 1):
            seq.applied(n)
        assert sent == [[protocol.ACK, ACK_EVERY_FRAMES]]
        seq.applied(ACK_EVERY_FRAMES + 1)
        assert len(sent) == 1  # held back
        deadline = asyncio.get_running_loop().time() + 5
        while len(sent) < 2 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.005)
        assert sent[1] == [protocol.ACK, ACK_EVERY_FRAMES + 1]
        seq.applied(ACK_EVERY_FRAMES + 2)
        seq.stop()  # the socket closed: nothing more goes out on it
        await asyncio.sleep(0.05)
        assert len(sent) == 2

    asyncio.run(go())


def test_a_new_session_numbers_from_zero_and_a_resumed_one_goes_on() -> None:
    async def go() -> None:
        seq, _ = _seq()
        seq.applied(1)
        seq.welcomed(resumed=True)
        assert seq.last == 1
        seq.welcomed(resumed=False)
        assert seq.last == 0
        seq.stop()

    asyncio.run(go())
