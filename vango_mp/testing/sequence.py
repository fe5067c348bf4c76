"""The client's side of the server's numbered frames, as ``static/vango.js`` keeps it.

The last seq applied; a duplicate (a replay overlapping what was applied)
is skipped, a gap asks for RESYNC (at most every ``RESYNC_RETRY``); applied
frames are acknowledged ``ACK_DELAY`` after the first unacknowledged one, or
at once every ``ACK_EVERY_FRAMES``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from .. import protocol
from .wire import ACK_DELAY, ACK_EVERY_FRAMES, RESYNC_RETRY

__all__ = ["Sequence"]


class Sequence:
    """Seq order, RESYNC and ACK of one page; ``send`` puts a client frame on its socket (quietly)."""

    def __init__(self, send: Callable[[list[Any]], None]) -> None:
        self.last = 0  # the last seq applied
        self._send = send
        self._unacked = 0
        self._timer: asyncio.TimerHandle | None = None
        self._resync_at = 0.0

    def next_is(self, seq: int) -> bool:
        """Whether frame ``seq`` is the one to apply now: False for a duplicate, and for a gap (RESYNC asked)."""
        if seq <= self.last:
            return False
        if seq != self.last + 1:
            self._resync()
            return False
        return True

    def applied(self, seq: int) -> None:
        """Frame ``seq`` was applied: it is the last, and it will be acknowledged."""
        self.last = seq
        self._resync_at = 0.0
        self._unacked += 1
        if self._unacked >= ACK_EVERY_FRAMES:
            self.flush_ack()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(ACK_DELAY, self.flush_ack)

    def welcomed(self, resumed: bool) -> None:
        """WELCOME: a new session numbers from 0 (the SSR page); a resumed one goes on from ``last``."""
        if not resumed:
            self.last = 0
        self._resync_at = 0.0

    def flush_ack(self) -> None:
        """Acknowledge what was applied, now (the socket is about to close, or the delay is over)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._unacked:
            self._unacked = 0
            self._send([protocol.ACK, self.last])

    def stop(self) -> None:
        """The socket closed: nothing is acknowledged on it any more."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._unacked = 0

    def _resync(self) -> None:
        now = time.monotonic()
        if self._resync_at and now - self._resync_at < RESYNC_RETRY:
            return
        self._resync_at = now
        self._send([protocol.RESYNC, self.last])
