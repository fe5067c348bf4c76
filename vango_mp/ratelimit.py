"""Token buckets for per-session rate limits (DOM events, resync requests)."""

from __future__ import annotations

import time


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; rate <= 0 means unlimited."""

    __slots__ = ("rate", "burst", "_tokens", "_stamp")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        # No float of its own until first used (an idle session has three buckets): the burst
        # is kept as given (small ints are shared objects) and a bucket never used is full,
        # which is what it would have refilled to anyway.
        self.burst = max(burst, 1)
        self._tokens: float = self.burst
        self._stamp: float | None = None  # None: never used

    def allow(self) -> bool:
        """Take one token if there is one."""
        if self.rate <= 0:
            return True
        now = time.monotonic()
        if self._stamp is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
