"""PatchHistory: bounded, trimmed by ACKs, replayed after a seq, carried in a blob by bytes."""

from __future__ import annotations

from vango_mp.patchhistory import PatchHistory


def _history(seqs: range, limit: int = 100) -> PatchHistory:
    first, *rest = seqs
    history = PatchHistory(first, b"f" * first)
    for seq in rest:
        history.add(seq, b"f" * seq, limit)
    return history


def test_add_keeps_the_newest_up_to_the_limit_and_counts_their_bytes() -> None:
    history = _history(range(1, 7), limit=4)
    assert [seq for seq, _ in history] == [3, 4, 5, 6] and len(history) == 4
    assert history.size == 3 + 4 + 5 + 6


def test_ack_forgets_what_the_client_applied_and_says_when_none_is_left() -> None:
    history = _history(range(1, 5))
    assert history.ack(0) is False and len(history) == 4  # an old ACK changes nothing
    assert history.ack(2) is False and [seq for seq, _ in history] == [3, 4] and history.size == 7
    assert history.ack(9) is True and len(history) == 0 and history.size == 0


def test_after_replays_the_missed_frames_or_none_when_one_is_gone() -> None:
    history = _history(range(3, 7))
    assert history.after(2) == [b"f" * 3, b"f" * 4, b"f" * 5, b"f" * 6]
    assert history.after(4) == [b"f" * 5, b"f" * 6]
    assert history.after(6) == []
    assert history.after(1) is None  # seq 2 was never kept (or trimmed): the client needs a FULL


def test_tail_is_the_newest_frames_within_a_byte_budget_oldest_first() -> None:
    history = _history(range(1, 6))  # 1 + 2 + 3 + 4 + 5 bytes
    assert [seq for seq, _ in history.tail(9)] == [4, 5]
    assert [seq for seq, _ in history.tail(12)] == [3, 4, 5]
    assert history.tail(4) == []


def test_of_takes_a_moved_sessions_newest_frames_or_none() -> None:
    frames = [(s, b"x" * s) for s in range(1, 6)]
    history = PatchHistory.of(frames, 3)
    assert history is not None and [seq for seq, _ in history] == [3, 4, 5] and history.size == 12
    assert PatchHistory.of(frames, 0) is None  # max_patch_history = 0 keeps nothing
    assert PatchHistory.of([], 10) is None
