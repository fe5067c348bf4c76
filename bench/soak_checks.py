"""The soak's invariants, checked from the outside: each returns a list of violations (empty = holds).

They use only what a client and ``/proc`` can see -- the driver's record
of every session (:mod:`bench.soak_driver`) and the sampled RSS of every
worker -- so they check the server, not its own account of itself. Times
compare across processes because ``time.monotonic()`` is one clock on Linux;
``margin`` absorbs the gap between a client's send and the server's
handling of it.
"""

from __future__ import annotations

from collections.abc import Iterable

from bench.soak_driver import MIB, RssSampler, Tracked

SURVIVED = ("attached", "detached")


def rss_over_hard(sampler: RssSampler, hard: int, interval: float, slack: float) -> list[str]:
    """No worker stays at or above ``hard`` longer than one check interval (plus ``slack``)."""
    out = []
    for pid, start, end, peak in sampler.runs_above(hard):
        if end - start > interval + slack:
            out.append(f"worker {pid}: RSS >= hard ({hard // MIB} MiB) for {end - start:.2f}s from {start:.3f} "
                       f"(peak {peak / MIB:.1f} MiB; allowed {interval + slack:.2f}s)")
    return out


def evictions_in_lru_order(sessions: Iterable[Tracked], margin: float = 0.05) -> list[str]:
    """No survivor sat detached on a worker, older than a session evicted there meanwhile.

    A session ``e`` found evicted was evicted while it was detached, between
    its last disconnect and the resume that found it gone. A session ``s``
    that stayed detached on the same worker through all of that window, and
    had detached earlier, was less recently used: LRU eviction takes it
    first, so it must not have survived. Oversized sessions go first by
    design and are left out as ``e``.
    """
    sessions = list(sessions)
    evicted = [e for e in sessions if e.status == "evicted" and e.detaches and not e.oversized]
    survivors = [s for s in sessions if s.status in SURVIVED and not s.oversized]
    out = []
    for e in evicted:
        e_before, _, e_worker, e_end = e.detaches[-1]
        for s in survivors:
            for before, after, worker, end in s.detaches:
                if worker == e_worker and after + margin < e_before and end > e_end:
                    out.append(f"{_sid(e)} (detached {e_before:.3f}) evicted on worker {int(worker)} while "
                               f"{_sid(s)} (detached {after:.3f}) survived there")
                    break
    return out


def attached_closed_only_without_detached(sessions: Iterable[Tracked], margin: float = 0.05) -> list[str]:
    """No attached session was closed (4013) on a worker that still held a detached survivor."""
    sessions = list(sessions)
    out = []
    for c in (c for c in sessions if c.status == "closed" and c.closed_window):
        lo, hi = c.closed_window
        for s in sessions:
            if s.status not in SURVIVED:
                continue
            for _, after, worker, end in s.detaches:
                if worker == c.worker and after + margin < lo and end > hi:
                    out.append(f"attached {_sid(c)} closed on worker {c.worker} while detached {_sid(s)} "
                               f"(since {after:.3f}) was still there")
                    break
    return out


def closed_longest_idle_first(closed: Iterable[Tracked], attached: Iterable[tuple[Tracked, int | None]],
                              tolerance: float = 0.3) -> list[str]:
    """Among attached sessions of a worker, the ones closed for memory were the longest idle (oversized first).

    ``attached``: the sessions still attached right after the closures, each
    with its worker at that moment. A close happened between two scans
    (lo, hi]; the closed session was active at least as late as its last
    activity before lo, a survivor at most as late as its last activity
    before hi: only a survivor idle for longer than the closed one even so,
    by ``tolerance`` (ACKs touch sessions too), counts.
    """
    survivors = [(a, worker) for a, worker in attached if not a.oversized]
    out = []
    for c in closed:
        if c.oversized or c.closed_window is None:
            continue
        lo, hi = c.closed_window
        c_active = c.active_before(lo)
        for a, worker in survivors:
            if worker == c.worker and a.active_before(hi) + tolerance < c_active:
                out.append(f"{_sid(c)} (active {c_active:.3f}) closed on worker {c.worker} before the idler "
                           f"{_sid(a)} (active {a.active_before(hi):.3f})")
    return out


def oversized_closed_first(closures: Iterable[tuple[list[Tracked], list[tuple[Tracked, int | None]]]],
                           oversized: Tracked) -> list[str]:
    """A worker that closed attached sessions did not keep an oversized one attached (it goes first)."""
    out = []
    for closed, attached in closures:
        worker = next((w for a, w in attached if a is oversized), None)
        if worker is not None and any(c.worker == worker for c in closed):
            out.append(f"oversized {_sid(oversized)} ({oversized.kib} KiB) survived closures on worker {worker}")
    return out


def refusals_only_at_high(refusals: Iterable[float], sampler: RssSampler, *, soft: int, hard: int,
                          machine_hard: int, slack: float) -> list[str]:
    """Every "server busy" falls in a pressure episode: from a reading at or above hard (a worker's,
    or all workers' together against the machine's) until every worker is back under soft.

    ``slack`` covers the check interval and the supervisor's view, one heartbeat behind.
    """
    episodes = _episodes(sampler, soft=soft, hard=hard, machine_hard=machine_hard)
    out = []
    for t in refusals:
        if not any(start - slack <= t <= end + slack for start, end in episodes):
            out.append(f"new session refused at {t:.3f} outside any high-pressure episode {episodes}")
    return out


def _episodes(sampler: RssSampler, *, soft: int, hard: int, machine_hard: int) -> list[tuple[float, float]]:
    latest: dict[int, int] = {}
    episodes: list[tuple[float, float]] = []
    start: float | None = None
    for t, pid, rss in sorted(sampler.samples):
        latest[pid] = rss
        high = rss >= hard or sum(latest.values()) >= machine_hard
        if high and start is None:
            start = t
        elif start is not None and all(v < soft for v in latest.values()):
            episodes.append((start, t))
            start = None
    if start is not None:
        episodes.append((start, float("inf")))
    return episodes


def lost(sessions: Iterable[Tracked]) -> list[str]:
    """Sessions that were neither resumed intact, evicted (4001) nor closed (4013)."""
    return [f"{_sid(s)}: {s.note}" for s in sessions if s.status == "lost"]


def _sid(s: Tracked) -> str:
    return (s.page.session_id or "?")[:6]
