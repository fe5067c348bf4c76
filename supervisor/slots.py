"""Worker slots and the records the arbiter keeps per forked worker.

A *slot* is a stable worker index with its own SO_REUSEPORT listening
socket (:func:`vango_mp.listener.create_listener`). The supervisor keeps
the socket open for the slot's whole life, so a crashed or replaced
worker's queued connections wait for its successor instead of being reset.
A worker keeps its slot index across respawns (it is what ``#worker`` and
``X-Vango-Worker`` show).
"""

from __future__ import annotations

import collections
import socket
from dataclasses import dataclass, field


@dataclass
class Worker:
    """One forked worker process."""

    pid: int
    slot: int
    generation: int
    started: float
    stopping: bool = False  # we asked it to stop: its exit is not a crash
    stop_deadline: float | None = None  # SIGKILL after this (graceful stop, reload, TTOU)
    aborted_at: float | None = None  # SIGABRT sent (hung); SIGKILL after abort_timeout


@dataclass
class Slot:
    """A stable worker index and its listening socket."""

    index: int
    sock: socket.socket
    pid: int | None = None  # the worker serving this slot
    successor: int | None = None  # its replacement during a rolling reload
    generation: int = 0  # bumped on every fork into this slot
    respawn_at: float = 0.0  # no fork before this (backoff)
    backoff: float = 0.0  # current respawn delay; 0 = never crashed recently
    crashes: collections.deque[float] = field(default_factory=collections.deque)
    retiring: bool = False  # TTOU: close the socket once its worker is gone

    def record_crash(self, now: float, lifetime: float, *, period: float,
                     backoff_min: float, backoff_max: float) -> int:
        """Note a crash, schedule the respawn; returns crashes within ``period``.

        The delay doubles per crash (``backoff_min`` .. ``backoff_max``) and
        starts over when the crashed worker had lived longer than ``period``.
        """
        self.crashes.append(now)
        while self.crashes and now - self.crashes[0] > period:
            self.crashes.popleft()
        if lifetime > period or self.backoff == 0.0:
            self.backoff = backoff_min
        else:
            self.backoff = min(backoff_max, self.backoff * 2)
        self.respawn_at = now + self.backoff
        return len(self.crashes)

    @property
    def idle(self) -> bool:
        """No worker and no successor: the slot needs a fork."""
        return self.pid is None and self.successor is None

