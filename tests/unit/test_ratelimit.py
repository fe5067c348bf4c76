"""TokenBucket: a burst, then the rate; a bucket never used is full and holds no float of its own."""

from __future__ import annotations

import time

from vango_mp.ratelimit import TokenBucket


def test_burst_then_refused_then_refilled_at_the_rate() -> None:
    bucket = TokenBucket(50.0, 3)
    assert [bucket.allow() for _ in range(4)] == [True, True, True, False]
    time.sleep(0.05)  # 2.5 tokens at 50/s
    assert [bucket.allow() for _ in range(3)] == [True, True, False]


def test_a_bucket_unused_for_long_is_full_not_fuller() -> None:
    bucket = TokenBucket(1000.0, 2)
    assert bucket.allow()
    time.sleep(0.02)  # 20 tokens' worth: capped at the burst
    assert [bucket.allow() for _ in range(3)] == [True, True, False]


def test_a_new_bucket_is_full_and_allocates_nothing() -> None:
    bucket = TokenBucket(1.0, 2)
    assert bucket._stamp is None and bucket.burst is bucket._tokens  # shared small int, no float yet
    assert [bucket.allow() for _ in range(3)] == [True, True, False]


def test_rate_zero_is_unlimited() -> None:
    bucket = TokenBucket(0, 1)
    assert all(bucket.allow() for _ in range(100))
