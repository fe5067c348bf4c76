"""Drive big sessions (tests/apps/bigapp.py) through hand-overs, and judge what each one saw.

Shared by ``tests/soak/test_handover.py`` (assertions) and
``bench/handover.py`` (figures). A :class:`Crowd` opens sessions through
:mod:`vango_mp.testing`; each :class:`Big` remembers what its page must show
after any move:

- ``digest``/``kib``: the SHA-256 prefix and size of its random state
  (``#fill``), which must come back byte for byte;
- ``count``: clicks known applied. A click whose PATCHES frame came back is
  *confirmed* and must show exactly one more than before. A click whose
  socket closed before its answer is *unsure*: the next resume shows whether
  it was applied (replayed from the history) or not -- once or not at all,
  never twice, and no confirmed click may be missing;
- every close code its sockets got, and every *pause*: from the moment an
  attached session's socket closed under it (a worker stopping: 1001) to its
  first confirmed click after the resume.

A resume is retried as the browser does (1001 "server stopping", 1013
"server busy / session moving", a socket that died) with a short backoff;
4001 or 4009 for a session that exists, or any state other than the one
expected, marks the session failed. Every wait has a deadline; traffic goes
to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psutil

from bench.soak_driver import close_client
from vango_mp.protocol import Close
from vango_mp.testing import FrameTimeout, Page, PageState, SessionClosed, TestClient, VangoTestError

KIB, MIB = 1024, 1024 * 1024
RETRY_CODES = {Close.GOING_AWAY, Close.SERVER_BUSY, 1006, None}  # what the browser reconnects after
BACKOFF_BASE, BACKOFF_CAP = 0.05, 1.0  # seconds between resume attempts (the browser: 1 s base, 30 s cap)
FORBIDDEN_LOG = re.compile(r"\blost\b|nowhere to go|BufferFull|crashed|SIGKILL|deposit of .* failed"
                           r"|Traceback|illegal transition|not owned here", re.IGNORECASE)
_COUNT = re.compile(r"^Count: (\d+)$")
_SIZE = re.compile(r"^Size: (\d+) KiB$")
_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \[(\d+)\] (\w+) ([\w.]+): (.*)$")


@dataclass
class Big:
    """One session as the driver knows it."""

    page: Page
    worker: int | None  # slot of the last WELCOME
    digest: str = "empty"  # what #digest must show
    kib: int = 0  # what #size must show
    count: int = 0  # clicks known applied
    confirmed: int = 0  # clicks whose PATCHES frame came back
    unsure: int = 0  # clicks sent whose answer never came (settled by the next resume)
    sent: int = 0
    replayed: int = 0  # unsure clicks a resume showed applied
    resumes: int = 0
    closes: list[tuple[int | None, str | None]] = field(default_factory=list)  # codes its sockets got
    pauses: list[float] = field(default_factory=list)  # close under it -> first confirmed click after (s)
    timeouts: int = 0  # clicks or WELCOMEs that never came (the socket was dropped and resumed)
    workers: list[int] = field(default_factory=list)  # slot of every WELCOME
    failure: str = ""

    @property
    def sid(self) -> str:
        return (self.page.session_id or "-")[:8]

    def fail(self, why: str) -> None:
        if not self.failure:
            self.failure = why

    def story(self) -> str:
        return (f"{self.sid} count={self.count} confirmed={self.confirmed} unsure={self.unsure} sent={self.sent}"
                f" resumes={self.resumes} workers={self.workers} closes={self.closes} failure={self.failure!r}")


def shown_count(page: Page) -> int | None:
    found = _COUNT.match(page.text("#count")) if page.exists("#count") else None
    return int(found.group(1)) if found else None


def shown_kib(page: Page) -> int | None:
    found = _SIZE.match(page.text("#size")) if page.exists("#size") else None
    return int(found.group(1)) if found else None


@dataclass
class Crowd:
    """Big sessions through one test client (one browser profile, many tabs)."""

    url: str
    timeout: float = 10.0
    concurrency: int = 8
    sessions: list[Big] = field(default_factory=list)
    client: TestClient | None = None

    async def __aenter__(self) -> Crowd:
        self.client = TestClient(self.url, timeout=self.timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await close_client(self.client)

    # -- one session -----------------------------------------------------------------

    async def open(self, path: str = "/") -> Big:
        assert self.client is not None
        page = await self.client.open(path)
        b = Big(page, page.worker, workers=[page.worker if page.worker is not None else -1])
        self.sessions.append(b)
        return b

    async def fill(self, b: Big) -> None:
        """Give the session its random state; remember its digest and size."""
        await b.page.click("#fill", timeout=self.timeout)
        b.digest, b.kib = b.page.text("#digest"), shown_kib(b.page) or 0
        if b.digest == "empty" or not b.kib:
            b.fail(f"fill left digest {b.digest!r}, size {b.kib}")

    async def click(self, b: Big, selector: str = "#inc") -> None:
        """One #inc: confirmed when its PATCHES frame came back (then it must show count + 1)."""
        b.sent += 1
        try:
            await b.page.click(selector, timeout=self.timeout)
        except (SessionClosed, FrameTimeout):
            b.unsure += 1  # sent, or maybe not: either way applied at most once
            raise
        shown = shown_count(b.page)
        if shown != b.count + 1:
            b.fail(f"a confirmed click shows {shown}, expected {b.count + 1}")
        b.count += 1
        b.confirmed += 1

    async def detach(self, b: Big) -> None:
        if b.page.state is PageState.OPEN:
            await b.page.disconnect(timeout=self.timeout)

    def note_close(self, b: Big) -> None:
        """Record how the server closed an attached socket under us."""
        b.closes.append((b.page.closed_code, b.page.closed_reason))
        if b.page.closed_code not in RETRY_CODES:
            b.fail(f"attached socket closed with {b.page.closed_code} {b.page.closed_reason!r}")

    async def resume(self, b: Big, deadline: float) -> bool:
        """Resume (retrying as the browser would) and check the state; False when it failed."""
        attempt = 0
        while not b.failure:
            if attempt:
                await asyncio.sleep(min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)))
            attempt += 1
            if time.monotonic() > deadline:
                b.fail(f"no resume by the deadline ({attempt - 1} attempts, closes {b.closes[-4:]})")
                break
            try:
                await b.page.resume(timeout=self.timeout)
            except SessionClosed as err:
                b.closes.append((err.code, err.reason))
                if err.code not in RETRY_CODES:
                    b.fail(f"resume closed {err.code} {err.reason!r}")
                continue
            except FrameTimeout:
                b.timeouts += 1
                b.page.drop()
                await b.page.wait_closed(self.timeout)
                continue
            b.resumes += 1
            b.worker = b.page.worker
            b.workers.append(b.worker if b.worker is not None else -1)
            self.check(b)
            return not b.failure
        return False

    def check(self, b: Big) -> None:
        """The page shows the session's exact state; unsure clicks are settled by what it shows."""
        page = b.page
        if page.errors:
            b.fail(f"client errors: {page.errors[:3]}")
        digest, kib, shown = page.text("#digest"), shown_kib(page), shown_count(page)
        if (digest, kib) != (b.digest, b.kib):
            b.fail(f"state {digest!r}/{kib} KiB, expected {b.digest!r}/{b.kib} KiB")
        if shown is None or not b.count <= shown <= b.count + b.unsure:
            b.fail(f"count {shown}: {b.count} known applied, {b.unsure} unsure")
            return
        b.replayed += shown - b.count
        b.count, b.unsure = shown, 0

    async def clicker(self, b: Big, stop: asyncio.Event, *, gap: float = 0.02, deadline: float) -> None:
        """Click until ``stop``; a socket closed under it is resumed, and the pause timed."""
        closed_at: float | None = None
        while not stop.is_set() and not b.failure and time.monotonic() < deadline:
            if b.page.state is not PageState.OPEN:
                if closed_at is None:  # closed between two clicks
                    closed_at = time.monotonic()
                    self.note_close(b)
                if not await self.resume(b, deadline):
                    return
                continue
            try:
                await self.click(b)
            except FrameTimeout:
                b.timeouts += 1
                closed_at = time.monotonic()
                b.page.drop()
                await b.page.wait_closed(self.timeout)
                continue
            except SessionClosed:
                closed_at = time.monotonic()
                self.note_close(b)
                continue
            if closed_at is not None:
                b.pauses.append(time.monotonic() - closed_at)
                closed_at = None
            await asyncio.sleep(gap)

    # -- many sessions -------------------------------------------------------------------

    async def gather(self, jobs: Iterable[Awaitable[Any]]) -> list[Any]:
        """Run coroutines at most ``concurrency`` at a time; exceptions are returned, not raised."""
        gate = asyncio.Semaphore(self.concurrency)

        async def one(job: Awaitable[Any]) -> Any:
            async with gate:
                return await job

        return await asyncio.gather(*(one(j) for j in jobs), return_exceptions=True)

    async def populate(self, slot: int | None, big: int, *, path: str = "/", deadline: float,
                       max_opens: int | None = None) -> tuple[list[Big], list[Big]]:
        """Open sessions until ``big`` of them on ``slot`` (any slot: None) hold their state.

        Returns (the big ones, the rest: small sessions that landed elsewhere).
        The kernel's SO_REUSEPORT hash places each session, so for one slot of
        two about twice ``big`` are opened; never more than ``max_opens``.
        """
        mine: list[Big] = []
        others: list[Big] = []
        limit = max_opens if max_opens is not None else (big if slot is None else 4 * big + 32)

        async def one() -> None:
            b = await self.open(path)
            if (slot is None or b.worker == slot) and len(mine) < big:
                mine.append(b)
                await self.fill(b)
            else:
                others.append(b)

        opened = 0
        while len(mine) < big:
            if opened >= limit or time.monotonic() > deadline:
                where = "any slot" if slot is None else f"slot {slot}"
                raise VangoTestError(f"only {len(mine)} of {big} sessions on {where} after {opened} opens")
            n = min(self.concurrency, big - len(mine), limit - opened)
            opened += n
            errors = [r for r in await self.gather(one() for _ in range(n)) if isinstance(r, BaseException)]
            if errors:
                raise errors[0]
        return mine, others

    async def open_on(self, slot: int, *, path: str = "/", deadline: float, max_opens: int = 64) -> Big:
        """A small session on ``slot`` (those landing elsewhere are kept too)."""
        for _ in range(max_opens):
            if time.monotonic() > deadline:
                break
            b = await self.open(path)
            if b.worker == slot:
                return b
        raise VangoTestError(f"no session landed on slot {slot}")

    async def verify(self, sessions: Iterable[Big], deadline: float) -> None:
        """Resume every session (an attached one is disconnected first) and check its state; leave it detached."""
        async def one(b: Big) -> None:
            if b.failure:
                return
            page = b.page
            server_closed = (page.closed_code, page.closed_reason)
            if page.state is PageState.CLOSED and page.closed_code not in (None, Close.NORMAL) \
                    and (not b.closes or b.closes[-1] != server_closed):
                self.note_close(b)  # closed by the server while nobody was clicking (a 1001, say)
            if b.page.state is PageState.OPEN:
                await self.detach(b)
            if await self.resume(b, deadline):
                await self.detach(b)

        for result in await self.gather(one(b) for b in sessions):
            if isinstance(result, BaseException):
                raise result

    def failures(self) -> list[str]:
        return [b.story() for b in self.sessions if b.failure]

    def close_codes(self) -> Counter[int | None]:
        return Counter(code for b in self.sessions for code, _ in b.closes)

    def pauses(self) -> list[float]:
        return [p for b in self.sessions for p in b.pauses]


# -- the server's side ---------------------------------------------------------------------


@dataclass(frozen=True)
class LogLine:
    at: float  # epoch seconds (the log's local time, millisecond resolution)
    pid: int
    level: str
    logger: str
    message: str


def log_lines(output: str) -> list[LogLine]:
    """The server's log lines that parse (``time [pid] LEVEL logger: message``)."""
    out = []
    for line in output.splitlines():
        m = _LINE.match(line)
        if m:
            at = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            out.append(LogLine(at, int(m.group(2)), m.group(3), m.group(4), m.group(5)))
    return out


def forbidden_lines(output: str) -> list[str]:
    """Log lines that must never appear while the server runs (sessions lost, crashes, bus drops)."""
    return [line for line in output.splitlines() if FORBIDDEN_LOG.search(line)]


def first(lines: list[LogLine], pattern: str, *, pid: int | None = None, after: float = 0.0) -> LogLine | None:
    regex = re.compile(pattern)
    for line in lines:
        if line.at >= after and (pid is None or line.pid == pid) and regex.search(line.message):
            return line
    return None


def proc_rss(pid: int) -> int:
    """VmRSS of ``pid`` in bytes (0 once it is gone)."""
    try:
        return psutil.Process(pid).memory_info().rss
    except psutil.NoSuchProcess:
        return 0


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def wait_until(predicate: Callable[[], Any], timeout: float, what: str, period: float = 0.05) -> Any:
    """Poll ``predicate()`` (plain function) until it returns something true; raise past ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise VangoTestError(f"timed out after {timeout}s waiting for {what} (last: {value!r})")
        await asyncio.sleep(period)


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]
