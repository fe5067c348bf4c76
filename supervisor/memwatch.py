"""The supervisor's view of memory: every worker's RSS, the machine-level
pressure, and which worker to recycle.

Workers report their RSS and the memory they own (USS: pages no other
process maps) in every bus heartbeat. On each loop turn the arbiter calls
:meth:`MemoryWatch.check`, which

- sums the RSS of every worker and places the total on the same level scale
  as a worker's (:mod:`vango_mp.memory`), against the whole budget;
- tells every worker the machine level and its share of the budget (budget /
  active slots) with a ``memory.pressure`` broadcast
  ``{"level", "share", "rss", "budget", "workers"}`` -- when either changes,
  and to each worker that has not heard the current one yet. A worker
  refuses new sessions while the machine is at high, whatever its own RSS;
- picks a worker to recycle: one whose *owned* memory has stayed above
  ``max_worker_rss`` (0 = its share of the hard limit) for
  ``memory_recycle_after`` seconds, plus up to RECYCLE_JITTER of that, so
  workers that crossed the line together are not recycled together.

Owned, not RSS: a worker's RSS counts the preloaded app it shares with the
template and its siblings, so a limit near a fresh worker's RSS would
recycle it from birth, forever; a fresh worker owns next to nothing. A
worker whose heartbeat lacks ``owned`` is judged by its RSS.

Storm guard: a slot is recycled at most once per ``recycle_min_interval``
(0 = no guard). When the successor of a recycled slot is over the limit
again before it was ever under it (the limit is below what a worker needs),
the slot's interval doubles (up to BACKOFF_CAP) and a warning says so; a
successor seen under the limit resets it.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from vango_mp.memory import Budget, PressureLevel, Thresholds
from vango_mp.settings import Settings

from .hub import Hub
from .slots import Slot

log = logging.getLogger("vango_mp.supervisor.memory")

RECYCLE_JITTER = 0.25
BACKOFF_CAP = 3600.0  # seconds: the storm guard's interval never doubles past this (or the base)
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


@dataclass(slots=True)
class SlotGuard:
    """One slot's recycling history: the storm guard."""

    last: float  # when a worker of this slot was last picked
    interval: float  # no new pick before last + interval
    picked: int  # the pid picked then
    watching: bool = True  # its successor has not been seen under the limit yet
    held: int | None = None  # the pid whose pick is held back (logged once)

    def allows(self, now: float) -> bool:
        return now >= self.last + self.interval


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
        self._guards: dict[int, SlotGuard] = {}  # slot -> storm guard

    def reconfigure(self, settings: Settings, budget: Budget) -> None:
        """New settings after a HUP; timers and storm guards carry on."""
        self.settings, self.budget = settings, budget

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
        owned = {p.pid: self.owned(p) for p in peers if p.pid in serving}
        pid = self.due_recycle(owned, now, pick=can_recycle, slots={pid: s.index for pid, s in serving.items()})
        return serving[pid] if pid is not None else None

    @staticmethod
    def owned(peer: PeerLike) -> int:
        """Bytes ``peer`` owns: its reported USS (``owned``), else its RSS."""
        value = peer.stats.get("owned")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        return _rss(peer)

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
        """Owned bytes above which a worker is recycled."""
        return self.settings.max_worker_rss or Thresholds.of(self.notice.share, self.settings).hard

    def due_recycle(self, owned_by_pid: dict[int, int], now: float, *, pick: bool = True,
                    slots: Mapping[int, int] | None = None) -> int | None:
        """The pid that has been above the limit the longest past its (jittered) delay, if any.

        ``slots`` maps pid -> slot for the storm guard (default: each pid is
        its own slot). A pid whose slot's guard holds it back stays due.
        """
        after = self.settings.memory_recycle_after
        if after <= 0:
            return None
        limit = self.limit()
        slot_of = (lambda pid: slots.get(pid, pid)) if slots is not None else (lambda pid: pid)
        for pid, owned in owned_by_pid.items():
            self._watch_successor(slot_of(pid), pid, owned, limit)
            if owned > limit:
                if pid not in self._due:
                    self._due[pid] = now + after * (1 + RECYCLE_JITTER * self.rng())
            else:
                self._due.pop(pid, None)
        self._due = {pid: at for pid, at in self._due.items() if pid in owned_by_pid}
        due = [pid for pid, at in self._due.items() if now >= at and self._allowed(slot_of(pid), pid, now)]
        if not due or not pick:
            return None
        pid = min(due, key=self._due.__getitem__)
        del self._due[pid]
        slot = slot_of(pid)
        guard = self._guards.get(slot)
        interval = guard.interval if guard is not None else self.settings.recycle_min_interval
        self._guards[slot] = SlotGuard(now, interval, pid)
        log.warning("recycling worker pid %d (slot %d): it owns %d MiB, above %d MiB for over %gs",
                    pid, slot, owned_by_pid[pid] // _MIB, limit // _MIB, after)
        return pid

    def _allowed(self, slot: int, pid: int, now: float) -> bool:
        """The storm guard: has the slot's interval since its last recycle passed? (A hold is logged once.)"""
        guard = self._guards.get(slot)
        if guard is None or guard.allows(now):
            return True
        if guard.held != pid:
            guard.held = pid
            log.warning("worker pid %d (slot %d) is due for recycling, but slot %d was recycled %.0fs ago: "
                        "not again before %.0fs have passed (storm guard)",
                        pid, slot, slot, now - guard.last, guard.interval)
        return False

    def _watch_successor(self, slot: int, pid: int, owned: int, limit: int) -> None:
        """Back off when a recycled slot's successor is over the limit before it was ever under it."""
        guard = self._guards.get(slot)
        if guard is None or not guard.watching or pid == guard.picked:
            return
        guard.watching = False
        base = self.settings.recycle_min_interval
        if owned <= limit:
            guard.interval = base
            return
        guard.interval = min(max(guard.interval, base) * 2, max(base, BACKOFF_CAP))
        log.warning("the successor in slot %d, pid %d, owns %d MiB, already above the %d MiB limit: "
                    "max_worker_rss looks too small for this app; recycling slot %d at most every %.0fs",
                    slot, pid, owned // _MIB, limit // _MIB, slot, guard.interval)


def _rss(peer: PeerLike) -> int:
    value = peer.stats.get("rss", 0)
    return value if isinstance(value, int) else 0
