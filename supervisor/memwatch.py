"""The supervisor's view of memory: every worker's RSS, the machine-level
pressure, and which worker to recycle.

Workers report their RSS in every bus heartbeat. On each loop turn the
arbiter calls :meth:`MemoryWatch.check`, which

- sums the RSS of every worker and places the total on the same level scale
  as a worker's (:mod:`vango_mp.memory`), against the whole budget;
- tells every worker the machine level and its share of the budget (budget /
  active slots) with a ``memory.pressure`` broadcast
  ``{"level", "share", "rss", "budget", "workers"}`` -- when either changes,
  and to each worker that has not heard the current one yet. A worker
  refuses new sessions while the machine is at high, whatever its own RSS;
- picks a worker to recycle: one whose RSS has stayed above
  ``max_worker_rss`` (0 = its share of the hard limit) for
  ``memory_recycle_after`` seconds, plus up to RECYCLE_JITTER of that, so
  workers that crossed the line together are not recycled together.

The arbiter recycles one worker at a time through the rolling-reload steps:
the successor starts in the same slot and reports ready, then the old
worker stops gracefully and deposits its sessions with it (nothing is lost;
clients reconnect and resume). Recycling cures bloat the sessions do not
explain (fragmentation, leaks); it moves live sessions, it does not shrink
them -- bounding those is the worker's own pressure response.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from vango_mp.memory import Budget, PressureLevel, Thresholds
from vango_mp.settings import Settings

from .hub import Hub
from .slots import Slot

log = logging.getLogger("vango_mp.supervisor.memory")

RECYCLE_JITTER = 0.25
_MIB = 1024 * 1024


class PeerLike(Protocol):
    pid: int
    stats: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Notice:
    """What every worker is told: the machine level and its share."""

    level: PressureLevel
    share: int
    rss: int  # all workers together
    budget: int
    workers: int

    def body(self) -> dict[str, Any]:
        return {"level": str(self.level), "share": self.share, "rss": self.rss,
                "budget": self.budget, "workers": self.workers}


class MemoryWatch:
    """Machine-level pressure and recycling decisions from the workers' heartbeats."""

    def __init__(self, settings: Settings, budget: Budget, *, rng: Callable[[], float] = random.random) -> None:
        self.settings = settings
        self.budget = budget
        self.rng = rng
        self.notice = Notice(PressureLevel.NONE, budget.bytes, 0, budget.bytes, 1)
        self._told: dict[int, tuple[PressureLevel, int]] = {}  # pid -> (level, share) last sent
        self._due: dict[int, float] = {}  # pid -> when it is recycled if still above the limit
        self._rising_since: float | None = None  # the summed level first read above the announced one

    def check(self, hub: Hub, slots: list[Slot], now: float, *, can_recycle: bool = True) -> Slot | None:
        """Broadcast what changed; return the slot whose worker should be recycled now, if any.

        ``can_recycle`` False (a reload or recycle is under way): keep timing, pick nobody.
        """
        peers = hub.live_peers()
        self.observe(peers, len(slots), now)
        for peer in peers:
            if self._told.get(peer.pid) != (self.notice.level, self.notice.share):
                self._told[peer.pid] = (self.notice.level, self.notice.share)
                hub.tell(peer, "memory.pressure", self.notice.body())
        live = {p.pid for p in peers}
        self._told = {pid: v for pid, v in self._told.items() if pid in live}
        serving = {s.pid: s for s in slots if s.pid is not None}
        rss = {p.pid: _rss(p) for p in peers if p.pid in serving}
        pid = self.due_recycle(rss, now, pick=can_recycle)
        return serving[pid] if pid is not None else None

    def observe(self, peers: list[PeerLike], workers: int, now: float) -> Notice:
        """The machine level from the workers' summed RSS, and each worker's share.

        Each worker's RSS is as of its last heartbeat, so a sum may add one
        worker's reading from before its evictions to another's from after:
        a rise counts only once it has lasted one heartbeat interval; a fall
        counts at once.
        """
        total = sum(_rss(p) for p in peers)
        level = Thresholds.of(self.budget.bytes, self.settings).level(total)
        if level > self.notice.level:
            self._rising_since = now if self._rising_since is None else self._rising_since
            if now - self._rising_since < self.settings.worker_heartbeat:
                level = self.notice.level  # not yet
            else:
                self._rising_since = None
        else:
            self._rising_since = None
        if level != self.notice.level:
            say = log.warning if level > self.notice.level else log.info
            say("machine memory pressure %s -> %s: workers' RSS %d MiB of a %d MiB budget (%s)",
                self.notice.level, level, total // _MIB, self.budget.bytes // _MIB, self.budget.source)
        self.notice = Notice(level, self.budget.bytes // max(1, workers), total, self.budget.bytes, workers)
        return self.notice

    def limit(self) -> int:
        """RSS above which a worker is recycled."""
        return self.settings.max_worker_rss or Thresholds.of(self.notice.share, self.settings).hard

    def due_recycle(self, rss_by_pid: dict[int, int], now: float, *, pick: bool = True) -> int | None:
        """The pid that has been above the limit the longest past its (jittered) delay, if any."""
        after = self.settings.memory_recycle_after
        if after <= 0:
            return None
        limit = self.limit()
        for pid, rss in rss_by_pid.items():
            if rss > limit:
                if pid not in self._due:
                    self._due[pid] = now + after * (1 + RECYCLE_JITTER * self.rng())
            else:
                self._due.pop(pid, None)
        self._due = {pid: at for pid, at in self._due.items() if pid in rss_by_pid}
        due = [pid for pid, at in self._due.items() if now >= at]
        if not due or not pick:
            return None
        pid = min(due, key=self._due.__getitem__)
        del self._due[pid]
        log.warning("recycling worker pid %d: RSS %d MiB above %d MiB for over %gs",
                    pid, rss_by_pid[pid] // _MIB, limit // _MIB, after)
        return pid


def _rss(peer: PeerLike) -> int:
    value = peer.stats.get("rss", 0)
    return value if isinstance(value, int) else 0
