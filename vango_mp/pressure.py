"""What a worker does about memory pressure, level by level.

:class:`PressureResponse` is the MemoryMonitor's ``on_check``: it acts on
each RSS reading (levels and thresholds: :mod:`vango_mp.memory`)::

    none      accept new sessions again (unless the machine is at high)
    low       evict detached sessions -- those estimated over
              max_memory_per_session first, then by eviction policy (LRU)
              -- until RSS is under soft; with a session store they are
              saved there first
    high      evict every detached session (cold ones too), refuse new
              sessions (1013 "server busy"), collect garbage, trim the heap
    critical  all of high; then, if RSS is still at or above hard, close
              attached sessions -- oversized first, then the longest idle --
              with 4013 "server under memory pressure" until under hard

A HIGH reading that evicting every detached session did not bring under
hard gets the critical response too: attached sessions are closed only
when no detached session is left, and RSS does not stay above hard for
longer than one check interval while there are sessions to give up.

Free memory first: at low or above, the worker trims the heap (cheap) and,
when the last collection is older than ``gc_cooldown`` -- or gave back 1 %
of the share, a sign garbage is piling up -- collects garbage before it
decides whom to evict: what a page render, a grown value or a closed session
left behind may be all the pressure there is. Freed sessions become memory
only once the cyclic collector has run (a component tree is full of
reference cycles) and glibc has returned the pages (``malloc_trim``), so
every round of evictions is followed by a collection, a trim and a new RSS
reading, and the next round (at most MAX_ROUNDS per check) works from that
reading, not from estimates.

A round closes at most a quarter of the attached sessions, and closing stops
when it stops helping: if a round gave back less than a quarter of what the
closed sessions were estimated to hold, the memory is not the sessions'
(fragmentation, a leak), closing more would only hurt users, and closing
pauses for ``gc_cooldown``; the supervisor recycles a worker whose RSS stays
up (supervisor/memwatch.py).

Refusal has hysteresis: it starts at high (this worker's, or the machine's
from the supervisor's broadcast) and ends only under soft. A new session
re-reads RSS first (:meth:`WorkerMemory.before_admit`, ~10 µs), so a burst
of them cannot run far past hard between two checks.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from typing import Any

from . import cost, metrics
from .memory import (MemoryMonitor, OwnedMemory, PressureLevel, Sample, Thresholds, detect_budget, trim_heap,
                     worker_count)
from .sessions import SessionOwner
from .settings import Settings

log = logging.getLogger("vango_mp.pressure")

MAX_ROUNDS = 3  # evict/close, collect, re-read rounds per check
HELPFUL = 0.25  # a close round must give back this share of its estimate to go on
CLOSE_SHARE = 0.25  # a close round closes at most this share of the attached sessions
WORTHWHILE, WORTHWHILE_MIN = 0.01, 1024 * 1024  # a collection giving back this much may repeat within the cooldown
BUSY = "server busy"
OWNED_MAX_AGE = 0.5  # seconds a USS reading is reused (a read walks smaps_rollup)
_KIB, _MIB = 1024, 1024 * 1024


class PressureResponse:
    """Acts on each memory reading of one worker: evict, refuse, collect, trim, close."""

    def __init__(
        self, manager: SessionOwner, settings: Settings, *,
        thresholds: Callable[[], Thresholds], measure: Callable[[], int],
        collect: Callable[[], object] = gc.collect, trim: Callable[[], bool] = trim_heap,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.manager = manager
        self.settings = settings
        self.thresholds = thresholds
        self.measure = measure
        self.collect, self.trim, self.clock = collect, trim, clock
        self.machine_level = PressureLevel.NONE  # from the supervisor's broadcast
        self.last_gc = float("-inf")
        self.last_gc_freed = 0  # bytes the last collection gave back
        self.closing_paused_until = float("-inf")

    def __call__(self, sample: Sample) -> Sample:
        """Respond to one reading; returns the reading after the actions."""
        metrics.inc("vango_memory_checks_total", level=str(sample.level))
        cost.refresh(self.manager)
        t = self.thresholds()
        rss, level = sample.rss, sample.level
        if level >= PressureLevel.LOW:
            rss, level = self.trim_first(rss, t)
        refuse = max(level, self.machine_level) >= PressureLevel.HIGH
        if level >= PressureLevel.LOW:
            rss = self.shed_detached(level, rss, t)
        if t.level(rss) >= PressureLevel.HIGH and not self.manager.detached_count:
            rss = self.close_attached(rss, t)
        after = t.level(rss)
        if after is PressureLevel.NONE and self.machine_level < PressureLevel.HIGH:
            self.accept()
        elif refuse:  # decided on the reading; applied once the check is done (nothing is admitted meanwhile)
            self.refuse()
        return Sample(rss, after, self.clock())

    def set_machine_level(self, level: PressureLevel, own: PressureLevel) -> None:
        """The supervisor's machine-wide level changed; ``own`` is this worker's last level."""
        self.machine_level = level
        if level >= PressureLevel.HIGH:
            self.refuse()
        elif own is PressureLevel.NONE:
            self.accept()

    # -- actions ---------------------------------------------------------------

    def shed_detached(self, level: PressureLevel, rss: int, t: Thresholds) -> int:
        """Evict detached sessions: down to soft at low, all of them from high; the RSS after.

        Kept-alive and prefetched pages go first: they are a convenience.
        """
        if sum(s.drop_aside() for s in self.manager):
            rss = self.reclaim()
            if t.level(rss) < PressureLevel.LOW:
                return rss
        for _ in range(MAX_ROUNDS):
            need = None if level >= PressureLevel.HIGH else rss - t.soft + 1  # strictly under soft
            count, estimated = self.manager.evict_for_memory(need, oversized=self.settings.max_memory_per_session)
            if not count:
                break
            rss = self.reclaim()
            log.info("memory %s: evicted %d detached sessions (~%d KiB); RSS now %d MiB",
                     level, count, estimated // _KIB, rss // _MIB)
            if level >= PressureLevel.HIGH or t.level(rss) < PressureLevel.LOW:
                break
        return rss

    def close_attached(self, rss: int, t: Thresholds) -> int:
        """Close attached sessions until RSS is under hard, while that helps; the RSS after."""
        if self.clock() < self.closing_paused_until:
            return rss
        for _ in range(MAX_ROUNDS):
            count, estimated = self.manager.close_for_memory(
                rss - t.hard + 1, oversized=self.settings.max_memory_per_session,
                at_most=max(1, int(self.manager.attached_count * CLOSE_SHARE)))
            if not count:
                break
            before, rss = rss, self.reclaim()
            log.warning("memory critical: closed %d attached sessions (~%d KiB); RSS %d -> %d MiB",
                        count, estimated // _KIB, before // _MIB, rss // _MIB)
            if t.level(rss) < PressureLevel.HIGH:
                break
            if before - rss < estimated * HELPFUL:
                log.error("closing sessions does not bring RSS down (%d KiB back of ~%d KiB): pausing "
                          "closures for %gs; the supervisor recycles a worker that stays above its limit",
                          max(0, before - rss) // _KIB, estimated // _KIB, self.settings.gc_cooldown)
                self.closing_paused_until = self.clock() + self.settings.gc_cooldown
                break
        return rss

    def trim_first(self, rss: int, t: Thresholds) -> tuple[int, PressureLevel]:
        """Free memory nobody holds before taking any from sessions: RSS and level afterwards.

        The heap is trimmed every time (milliseconds: freed blocks a grown
        value left behind); garbage is collected when the cooldown has
        passed, or sooner when the last collection gave back at least
        WORTHWHILE of the share (garbage is piling up: collecting is what helps).
        """
        worthwhile = self.last_gc_freed >= max(WORTHWHILE_MIN, int(t.share * WORTHWHILE))
        if worthwhile or self.clock() - self.last_gc >= self.settings.gc_cooldown:
            rss = self.reclaim()
        elif self.trim():
            rss = self.measure()
        return rss, t.level(rss)

    def reclaim(self) -> int:
        """Collect garbage and trim the heap; RSS afterwards."""
        before = self.measure()
        self.collect()
        self.trim()
        self.last_gc = self.clock()
        metrics.inc("vango_memory_collections_total")
        after = self.measure()
        self.last_gc_freed = before - after
        return after

    def refuse(self) -> None:
        if self.manager.refusing is None:
            log.warning("memory pressure: refusing new sessions (%s)", BUSY)
        self.manager.refusing = BUSY

    def accept(self) -> None:
        if self.manager.refusing is not None:
            log.info("memory pressure over: accepting new sessions again")
        self.manager.refusing = None


class WorkerMemory:
    """One worker's memory budget, monitor and pressure response, wired together."""

    def __init__(self, manager: SessionOwner, settings: Settings) -> None:
        self.settings = settings
        self.manager = manager
        self.budget = detect_budget(settings.memory_budget)
        share = self.budget.bytes // worker_count(settings)
        self.monitor = MemoryMonitor(Thresholds.of(share, settings), interval=settings.memory_interval)
        self.response = PressureResponse(manager, settings, thresholds=lambda: self.monitor.thresholds,
                                         measure=self.monitor.measure)
        self.monitor.on_check = self.response
        # What the supervisor recycles on; read lazily (heartbeats ask every second).
        self.owned = OwnedMemory(max(OWNED_MAX_AGE, settings.memory_interval))

    @property
    def level(self) -> PressureLevel:
        return self.monitor.level

    def before_admit(self) -> None:
        """Re-read RSS (~10 µs) before a session is created or remounted here: bursts must not run past hard."""
        if self.manager.refusing is None and self.monitor.measure() >= self.monitor.thresholds.hard:
            self.monitor.force_check()

    def on_notice(self, body: Any, peer: int) -> None:
        """Bus ``memory.pressure`` from the supervisor: ``{"level", "share", ...}``."""
        if not isinstance(body, dict):
            return
        share = body.get("share")
        if isinstance(share, int) and share > 0:
            self.monitor.set_share(Thresholds.of(share, self.settings))
        self.response.set_machine_level(PressureLevel.parse(body.get("level")), self.monitor.level)

    def health(self) -> dict[str, Any]:
        """The ``memory`` section of ``/_vango/health``."""
        t = self.monitor.thresholds
        return {
            "level": str(self.monitor.level),
            "rss": self.monitor.measure(),
            "owned": self.owned(),  # USS: not the preloaded app shared with the template and siblings
            "budget": self.budget.bytes,
            "budget_source": self.budget.source,
            "share": t.share,
            "soft": t.soft,
            "hard": t.hard,
            "critical": t.critical,
            "interval": self.settings.memory_interval,
            "machine_level": str(self.response.machine_level),
            "refusing": self.manager.refusing is not None,
            "estimated_session_bytes": sum(cost.entry_cost(e) for e in self.manager.entries()),
        }
