"""One memory-pressure cycle against a running ``vango-mp --app bench.soak_app:app``.

Phases (each bounded in steps and time):

1. *fill*: waves of sessions -- open, click, detach two of every three --
   with a few older sessions resumed (exact state checked) and detached
   again, until every worker has evicted for memory. Early on, one detached
   session is grown past max_memory_per_session: it must go first.
2. *squeeze*: one session grown past max_memory_per_session and kept
   attached, then new sessions kept attached, until new ones are refused
   with 1013 "server busy" (the workers reached high).
3. *critical*: sessions on the oversized session's worker grow until the
   worker closes attached ones (4013): the oversized one first, then the
   longest idle.
4. *recover*: every attached session detaches; once every worker is under
   soft and accepting, new sessions must be accepted.
5. *verify*: every detached session resumes, newest first: intact, or
   "session expired" if it was evicted. Nothing else is allowed.

:func:`check` turns the record into violations of the soak's invariants.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from bench import soak_checks as checks
from bench.soak_driver import Fleet, RssSampler, Tracked, per_worker, wait_until
from vango_mp.testing import SessionClosed

GROW_PAST = 14  # grows of a 256 KiB session: 3.75 MiB, past max_memory_per_session (3 MiB)
SETTLE = 0.6  # seconds of calm in /_vango/metrics before recovery counts (> worker_heartbeat + memory_interval)
MAX_GROWN_KIB = 1280  # the critical phase grows sessions up to this


@dataclass(frozen=True)
class Limits:
    """A worker's thresholds as /_vango/health reports them."""

    soft: int
    hard: int
    critical: int
    share: int
    budget: int
    interval: float

    @classmethod
    def from_health(cls, health: dict[str, Any]) -> Limits:
        m = health["memory"]
        return cls(m["soft"], m["hard"], m["critical"], m["share"], m["budget"], float(m["interval"]))

    @property
    def machine_hard(self) -> int:
        return int(self.budget * self.hard / self.share)


@dataclass
class Cycle:
    """What one cycle did and saw."""

    waves: int = 0
    refused: int = 0
    closed: list[Tracked] = field(default_factory=list)
    # (closed, [(still attached, its worker then)]): workers change later, as sessions resume elsewhere
    closures: list[tuple[list[Tracked], list[tuple[Tracked, int | None]]]] = field(default_factory=list)
    oversized_attached: Tracked | None = None
    oversized_detached: Tracked | None = None
    accepted_after_recovery: int = 0
    verified: dict[str, int] = field(default_factory=dict)
    evictions: dict[str, float] = field(default_factory=dict)  # per worker, from the metrics
    seconds: dict[str, float] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)  # phase -> time.monotonic() at its start


async def run_cycle(fleet: Fleet, *, wave: int = 24, max_waves: int = 40, max_squeeze: int = 400,
                    max_grows: int = 200, timeout: float = 60.0, rng: random.Random | None = None) -> Cycle:
    """All five phases once."""
    rng = rng or random.Random(5)
    cycle = Cycle()
    for name, phase in (("fill", fill), ("squeeze", squeeze), ("critical", critical), ("recover", recover)):
        start = cycle.started[name] = time.monotonic()
        await phase(fleet, cycle, wave=wave, max_waves=max_waves, max_squeeze=max_squeeze,
                    max_grows=max_grows, timeout=timeout, rng=rng)
        cycle.seconds[name] = time.monotonic() - start
    start = cycle.started["verify"] = time.monotonic()
    cycle.verified = await fleet.verify()
    cycle.seconds["verify"] = time.monotonic() - start
    return cycle


async def memory_evictions(fleet: Fleet) -> dict[str, float]:
    rows = await fleet.metrics()
    out: dict[str, float] = {}
    for reason in ("memory_low", "memory_high", "memory_oversized"):
        for worker, n in per_worker(rows, "vango_evictions_total", reason=reason).items():
            out[worker] = out.get(worker, 0.0) + n
    return out


async def fill(fleet: Fleet, cycle: Cycle, *, wave: int, max_waves: int, rng: random.Random, **_: Any) -> None:
    workers = len(per_worker(await fleet.metrics(), "vango_rss_bytes"))
    before = await memory_evictions(fleet)
    for n in range(max_waves):
        cycle.waves += 1
        await fleet.wave(wave)
        if cycle.oversized_detached is None:  # the most recently used, yet it must go first
            cycle.oversized_detached = await _oversized(fleet, detach=True)
        older = [s for s in fleet.detached_sessions() if s is not cycle.oversized_detached]
        for s in rng.sample(older, min(3, len(older))):
            if await fleet.resume(s) == "resumed":
                await fleet.click(s)
                await fleet.detach(s)
        now = await memory_evictions(fleet)
        if len(now) >= workers and all(now[w] > before.get(w, 0.0) for w in now):
            break
    cycle.evictions = await memory_evictions(fleet)


async def squeeze(fleet: Fleet, cycle: Cycle, *, max_squeeze: int, **_: Any) -> None:
    cycle.oversized_attached = await _oversized(fleet, detach=False)
    fleet.scan_closed()
    refused_before = len(fleet.refusals)
    for _ in range(max_squeeze):
        s = await fleet.open()
        if s is not None:
            try:
                await fleet.click(s)
            except SessionClosed:
                pass
        _note_closures(fleet, cycle)
        if len(fleet.refusals) - refused_before >= 3:
            break
    cycle.refused = len(fleet.refusals) - refused_before


async def critical(fleet: Fleet, cycle: Cycle, *, max_grows: int, **_: Any) -> None:
    """Grow the newest sessions on the oversized session's worker until that worker closes some.

    Each grows to at most MAX_GROWN_KIB, well under max_memory_per_session:
    the sessions to go must be the idle ones, not these.
    """
    x = cycle.oversized_attached
    if cycle.closed or x is None or x.status != "attached":
        return  # the squeeze already drove a worker to close sessions
    newest = [s for s in fleet.attached(x.worker) if s is not x][-16:]
    for i in range(max_grows):
        live = [s for s in newest if s.status == "attached" and s.kib + s.step <= MAX_GROWN_KIB]
        if not live:
            break
        try:
            await fleet.grow(live[i % len(live)])
        except SessionClosed:
            pass  # closed under our click: the scan records it
        if _note_closures(fleet, cycle):
            break


def _note_closures(fleet: Fleet, cycle: Cycle) -> bool:
    closed = fleet.scan_closed()
    if closed:
        cycle.closed += closed
        cycle.closures.append((closed, [(s, s.worker) for s in fleet.attached()]))
    return bool(closed)


async def recover(fleet: Fleet, cycle: Cycle, *, timeout: float, **_: Any) -> None:
    _note_closures(fleet, cycle)
    for s in sorted(fleet.attached(), key=lambda s: s.active_at):
        try:
            await fleet.detach(s)
        except SessionClosed:
            pass
    fleet.scan_closed()

    calm_since: list[float] = []

    async def settled() -> bool:
        # A peer's figures in /_vango/metrics are as of its last heartbeat: calm must last longer than that.
        rows = await fleet.metrics()
        levels = per_worker(rows, "vango_memory_level")
        refusing = per_worker(rows, "vango_memory_refusing")
        if not levels or any(levels.values()) or any(refusing.values()):
            calm_since.clear()
            return False
        calm_since[:] = calm_since or [time.monotonic()]
        return time.monotonic() - calm_since[0] >= SETTLE

    await wait_until(settled, timeout, "every worker under soft and accepting")
    for _ in range(6):
        s = await fleet.open()
        if s is not None:
            cycle.accepted_after_recovery += 1
            await fleet.click(s)
            await fleet.detach(s)


async def _oversized(fleet: Fleet, *, detach: bool) -> Tracked | None:
    s = await fleet.open()
    if s is None:
        return None
    s.oversized = True
    for _ in range(GROW_PAST):
        await fleet.grow(s)
    await fleet.click(s)
    if detach:
        await fleet.detach(s)
    return s


def check(fleet: Fleet, cycles: list[Cycle], sampler: RssSampler, limits: Limits) -> list[str]:
    """Every invariant over the record of some cycles; the violations found."""
    return check_sessions(fleet, cycles) + check_memory(fleet, sampler, limits)


def check_sessions(fleet: Fleet, cycles: list[Cycle]) -> list[str]:
    """What became of each session: nothing lost, evictions LRU, closures only of the idle, oversized first."""
    sessions = fleet.sessions
    problems = checks.lost(sessions)
    problems += checks.evictions_in_lru_order(sessions)
    problems += checks.attached_closed_only_without_detached(sessions)
    for cycle in cycles:
        for closed, attached in cycle.closures:
            problems += checks.closed_longest_idle_first(closed, attached)
        if cycle.oversized_attached is not None:
            problems += checks.oversized_closed_first(cycle.closures, cycle.oversized_attached)
    return problems


def check_memory(fleet: Fleet, sampler: RssSampler, limits: Limits, *, rss_slack: float = 0.5,
                 busy_slack: float = 2.0) -> list[str]:
    """RSS never stays above hard longer than a check interval; "server busy" only under pressure."""
    problems = checks.rss_over_hard(sampler, limits.hard, limits.interval, rss_slack)
    problems += checks.refusals_only_at_high(fleet.refusals, sampler, soft=limits.soft, hard=limits.hard,
                                             machine_hard=limits.machine_hard, slack=busy_slack + limits.interval)
    return problems
