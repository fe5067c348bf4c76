"""Drive the memory-pressure soak: sessions in waves, and what became of each.

Shared by ``tests/soak`` (short, with assertions) and ``bench/soak.py``
(long, with a CSV and a plot). A :class:`Fleet` opens sessions of
``bench/soak_app.py`` through :mod:`vango_mp.testing` and remembers, for
each, its count and payload size, the worker of its last WELCOME, when it
was last detached and what finally became of it:

    attached / detached   still live, as far as the client knows
    evicted               a resume got 4001 "session expired"
    closed                the server closed it while attached: 4013
    lost                  anything else (wrong state on resume, no answer):
                          the soak's one unforgivable outcome

Times are ``time.monotonic()``: on Linux one clock for every process, so
they compare with the server's ``last_active``. :class:`RssSampler` reads
every worker's RSS straight from ``/proc`` (psutil) in a thread.
Every loop is bounded in count and by a deadline; traffic goes to
127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import psutil

from vango_mp.protocol import Close
from vango_mp.testing import FrameTimeout, Page, SessionClosed, TestClient, VangoTestError

KIB, MIB = 1024, 1024 * 1024
RETRY_BASE = 0.05  # seconds before the second resume attempt; doubles per attempt
_ROW = re.compile(r'^(\w+)\{([^}]*)\} (\S+)$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass
class Tracked:
    """One session as the driver knows it."""

    page: Page
    kib: int  # payload the page must show
    step: int = 0  # KiB each #grow adds (the route's kb)
    count: int = 0  # clicks the server applied
    # Clicks sent whose answer never came (the socket closed first): each may
    # or may not have been applied, never twice. The next resume settles them.
    unsure: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    worker: int | None = None  # slot of the last WELCOME
    status: str = "attached"
    detached: tuple[float, float] | None = None  # (before, after) the last disconnect
    active_at: float = 0.0  # last event sent
    closed_window: tuple[float, float] | None = None  # a 4013 arrived between these scans
    checked_at: float | None = None  # when a verifying resume decided its fate
    oversized: bool = False
    note: str = ""
    # Every stretch spent detached: [before, after] the disconnect, the worker, and
    # when the next resume began (inf while still detached).
    detaches: list[list[float]] = field(default_factory=list)
    activity: list[float] = field(default_factory=list)  # when it was opened, clicked or resumed

    def active_before(self, t: float) -> float:
        """The last activity before ``t`` (0.0 if none)."""
        return max((a for a in self.activity if a < t), default=0.0)


async def close_client(client: TestClient | None) -> None:
    """Drop every page of a load client (no goodbye frames: the sessions stay detached) and close it."""
    if client is not None:
        for page in client.pages:
            page.drop()
        client.pages.clear()
        await client.aclose()


@dataclass
class Fleet:
    """Sessions of the soak app through one test client (one browser profile, many tabs)."""

    url: str
    kib: int = 256
    timeout: float = 10.0
    concurrency: int = 8
    sessions: list[Tracked] = field(default_factory=list)
    refusals: list[float] = field(default_factory=list)  # new sessions refused with 1013
    opened: int = 0
    resumed: int = 0
    retired: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # final outcomes, pruned
    client: TestClient | None = None
    last_scan: float = field(default_factory=time.monotonic)

    async def __aenter__(self) -> Fleet:
        self.client = TestClient(self.url, timeout=self.timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await close_client(self.client)

    # -- one session -------------------------------------------------------------

    async def open(self, kib: int | None = None) -> Tracked | None:
        """A new session (SSR + WELCOME); None when the server refused it with 1013."""
        assert self.client is not None
        kib = kib or self.kib
        try:
            page = await self.client.open(f"/soak/{kib}")
        except SessionClosed as err:
            if err.code == Close.SERVER_BUSY:
                self.refusals.append(time.monotonic())
                return None
            raise
        self.opened += 1
        s = Tracked(page, kib, kib, worker=page.worker, active_at=time.monotonic())
        s.activity.append(s.active_at)
        self.sessions.append(s)
        return s

    async def click(self, s: Tracked, selector: str = "#inc") -> None:
        s.active_at = time.monotonic()
        s.activity.append(s.active_at)
        try:
            await s.page.click(selector, timeout=self.timeout)
        except (SessionClosed, FrameTimeout):
            s.unsure[selector] += 1
            raise
        if selector == "#inc":
            s.count += 1
        elif selector == "#grow":
            s.kib += s.step

    async def grow(self, s: Tracked) -> None:
        """Add one payload step to the session (``#grow``)."""
        await self.click(s, "#grow")

    async def detach(self, s: Tracked) -> None:
        if s.page.state.value != "open":
            return  # the server closed it: scan_closed() records how
        before = time.monotonic()
        await s.page.disconnect(timeout=self.timeout)
        s.detached, s.status = (before, time.monotonic()), "detached"
        s.detaches.append([before, s.detached[1], float(s.worker if s.worker is not None else -1), float("inf")])

    async def resume(self, s: Tracked, *, attempts: int = 8) -> str:
        """Resume and check the exact state; the outcome: resumed, evicted or lost (detached again after)."""
        if s.detaches and s.detaches[-1][3] == float("inf"):
            s.detaches[-1][3] = time.monotonic()
        codes = []
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(RETRY_BASE * 2 ** (attempt - 1))  # backoff, as the browser client
            s.activity.append(time.monotonic())
            try:
                await s.page.resume(timeout=self.timeout)
            except SessionClosed as err:
                if err.code == Close.SESSION_EXPIRED:
                    return self._settle(s, "evicted")
                codes.append(f"{err.code} {err.reason}")
                s.note = ", ".join(codes)
                if err.code in (Close.GOING_AWAY, Close.SERVER_BUSY, None, 1006):
                    continue  # a worker stopping (recycled) or the socket died: the client retries
                return self._settle(s, "lost", f"resume closed {err.code} {err.reason}")
            except FrameTimeout as err:
                s.page.drop()
                await s.page.wait_closed(self.timeout)
                s.note = str(err)
                continue
            s.worker = s.page.worker
            self.resumed += 1
            got = (s.page.text("#count"), s.page.text("#size"))
            if not _settle_unsure(s, got):
                want = (f"Count: {s.count}", f"Size: {s.kib} KiB")
                return self._settle(s, "lost", f"state {got} != {want} (unanswered clicks: {dict(s.unsure)})")
            s.status = "attached"
            return "resumed"
        return self._settle(s, "lost", f"no resume in {attempts} attempts: {s.note}")

    def _settle(self, s: Tracked, status: str, note: str = "") -> str:
        s.status, s.note, s.checked_at = status, note, time.monotonic()
        return status

    # -- many sessions -------------------------------------------------------------

    async def gather(self, jobs: list[Any]) -> list[Any]:
        """Run coroutines at most ``concurrency`` at a time; exceptions are returned, not raised."""
        gate = asyncio.Semaphore(self.concurrency)

        async def one(job: Any) -> Any:
            async with gate:
                return await job

        return await asyncio.gather(*(one(j) for j in jobs), return_exceptions=True)

    async def wave(self, n: int, *, clicks: int = 2, detach_every: int = 3, keep: int = 1) -> list[Tracked]:
        """Open ``n`` sessions and click each; then detach all but ``keep`` of every ``detach_every``."""
        async def start() -> Tracked | None:
            s = await self.open()
            for _ in range(clicks if s else 0):
                await self.click(s)  # type: ignore[arg-type]
            return s

        got = [s for s in await self.gather([start() for _ in range(n)]) if isinstance(s, Tracked)]
        for i, s in enumerate(got):
            if i % detach_every >= keep and s.status == "attached":
                await self.detach(s)  # one at a time: detach order is LRU order
        return got

    def attached(self, worker: int | None = None) -> list[Tracked]:
        return [s for s in self.sessions if s.status == "attached" and worker in (None, s.worker)]

    def detached_sessions(self) -> list[Tracked]:
        return [s for s in self.sessions if s.status == "detached"]

    def scan_closed(self) -> list[Tracked]:
        """Attached sessions the server closed (4013) since the last scan."""
        now, since = time.monotonic(), self.last_scan
        found = []
        for s in self.attached():
            if s.page.state.value == "closed" and s.page.closed_code is not None:
                if s.page.closed_code == Close.MEMORY_PRESSURE:
                    s.status, s.closed_window, s.checked_at = "closed", (since, now), now
                    found.append(s)
                else:  # dropped some other way (a worker stopping): a detach we did not time
                    s.status, s.detached = "detached", (since, now)
                    s.detaches.append([since, now, float(s.worker if s.worker is not None else -1), float("inf")])
        self.last_scan = now
        return found

    async def verify(self) -> dict[str, int]:
        """Resume every detached session, newest detach first; tally the outcomes and detach again."""
        todo = sorted(self.detached_sessions(), key=lambda s: s.detached[1] if s.detached else 0.0, reverse=True)
        tally: dict[str, int] = defaultdict(int)
        for s in todo:
            outcome = await self.resume(s)
            tally[outcome] += 1
            if outcome == "resumed":
                s.checked_at = time.monotonic()
                await self.detach(s)
        return dict(tally)

    def prune(self) -> None:
        """Forget sessions whose fate is settled (long runs), keeping the counts."""
        keep = []
        for s in self.sessions:
            if s.status in ("evicted", "closed", "lost"):
                self.retired[s.status] += 1
            else:
                keep.append(s)
        self.sessions = keep
        assert self.client is not None
        alive = {id(s.page) for s in keep}
        self.client.pages = [p for p in self.client.pages if id(p) in alive]

    def outcomes(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int, self.retired)
        for s in self.sessions:
            counts[s.status] += 1
        return dict(counts)

    # -- the server's own figures ----------------------------------------------------

    async def metrics(self) -> dict[str, dict[str, float]]:
        """``/_vango/metrics`` as {name: {"label=v,...": value}}; every worker, peers as of their last heartbeat."""
        assert self.client is not None
        resp = await self.client.get("/_vango/metrics")
        rows: dict[str, dict[str, float]] = defaultdict(dict)
        for line in resp.body.decode().splitlines():
            m = _ROW.match(line)
            if m:
                labels = ",".join(f"{k}={v}" for k, v in sorted(_LABEL.findall(m.group(2))))
                rows[m.group(1)][labels] = float(m.group(3))
        return rows


def _settle_unsure(s: Tracked, got: tuple[str | None, str | None]) -> bool:
    """Whether the page shows the tracked state, each unanswered click applied once or not at all.

    True: the tracked state becomes what the page shows and nothing is unsure any more.
    """
    counts = {f"Count: {s.count + n}": s.count + n for n in range(s.unsure["#inc"] + 1)}
    sizes = {f"Size: {s.kib + n * s.step} KiB": s.kib + n * s.step for n in range(s.unsure["#grow"] + 1)}
    if got[0] not in counts or got[1] not in sizes:
        return False
    s.count, s.kib = counts[got[0]], sizes[got[1]]  # type: ignore[index]
    s.unsure.clear()
    return True


def per_worker(rows: dict[str, dict[str, float]], name: str, **match: str) -> dict[str, float]:
    """One metric summed per worker label, over rows whose labels include ``match``."""
    out: dict[str, float] = defaultdict(float)
    for labels, value in rows.get(name, {}).items():
        pairs = dict(p.split("=", 1) for p in labels.split(",") if p)
        if all(pairs.get(k) == v for k, v in match.items()):
            out[pairs.get("worker", "")] += value
    return dict(out)


class RssSampler(threading.Thread):
    """Reads every worker's RSS every ``period`` seconds until stopped.

    Workers are the supervisor's children, re-listed every half second, so
    a recycled worker's successor is followed too.
    """

    def __init__(self, supervisor_pid: int, period: float = 0.02) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.supervisor = psutil.Process(supervisor_pid)
        self.period = period
        self.samples: list[tuple[float, int, int]] = []  # (time, pid, rss)
        self.pids: set[int] = set()
        self._halt = threading.Event()

    def run(self) -> None:
        procs: list[psutil.Process] = []
        listed = 0.0
        while not self._halt.is_set():
            now = time.monotonic()
            if now - listed > 0.5:
                try:
                    procs = self.supervisor.children()
                except psutil.NoSuchProcess:
                    return
                self.pids.update(p.pid for p in procs)
                listed = now
            for proc in procs:
                try:
                    self.samples.append((time.monotonic(), proc.pid, proc.memory_info().rss))
                except psutil.NoSuchProcess:
                    pass
            self._halt.wait(self.period)

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(5)

    def peak(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for _, pid, rss in self.samples:
            out[pid] = max(out.get(pid, 0), rss)
        return out

    def runs_above(self, limit: int) -> list[tuple[int, float, float, int]]:
        """Every stretch a worker's samples stayed at or above ``limit``: (pid, first, last, peak).

        ``first`` and ``last`` are the first and last samples of the stretch at
        or above the limit: what was seen, so a gap in the sampling (this
        thread starved of CPU) never counts as time above the limit.
        """
        by_pid: dict[int, list[tuple[float, int]]] = defaultdict(list)
        for t, pid, rss in self.samples:
            by_pid[pid].append((t, rss))
        runs = []
        for pid, series in by_pid.items():
            first = last = None
            peak = 0
            for t, rss in series + [(float("inf"), -1)]:
                if rss >= limit:
                    first, last, peak = (t if first is None else first), t, max(peak, rss)
                elif first is not None:
                    runs.append((pid, first, last, peak))
                    first = last = None
                    peak = 0
        return runs


async def wait_until(predicate: Any, timeout: float, what: str, period: float = 0.1) -> Any:
    """Await ``predicate()`` (a coroutine function) until it returns something true; raise past ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise VangoTestError(f"timed out after {timeout}s waiting for {what} (last: {value!r})")
        await asyncio.sleep(period)
