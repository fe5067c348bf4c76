"""Idle sessions dirtied outside an event, flushed in batches instead of a Task each (issue 13: fan-out)."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol

__all__ = ["DirtyBatch", "Flushable"]


class Flushable(Protocol):
    def flush_idle(self) -> None: ...


class DirtyBatch:
    """Idle sessions dirtied outside an event, flushed in loop callbacks of ``BATCH`` sessions each.

    Each callback yields to the loop after its share, so a fan-out to many
    sessions interleaves with sockets and timers like the per-session tasks
    it replaces; sessions are flushed in the order they went dirty.
    """

    BATCH = 256

    def __init__(self) -> None:
        self._queue: deque[Flushable] = deque()
        self._scheduled = False

    def add(self, session: Flushable, loop: asyncio.AbstractEventLoop) -> None:
        self._queue.append(session)
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._run, loop)

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        queue = self._queue
        try:
            for _ in range(min(self.BATCH, len(queue))):
                queue.popleft().flush_idle()
        finally:  # one that raised must not stall the others
            if queue:
                loop.call_soon(self._run, loop)
            else:
                self._scheduled = False
