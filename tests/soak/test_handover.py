"""Hand-over of big sessions: a recycle, 20 rolling reloads and resumes racing a hand-over lose nothing.

The app is ``tests/apps/bigapp.py``: each session holds 256 KiB of random
bytes (lz4 cannot shrink them: a sealed session weighs what its state does)
and a click counter; its page shows the state's digest, so the client knows
the state came back byte for byte. ``bench/handover_driver.py`` keeps, for
every session, the clicks known applied and those whose answer never came,
and judges every resume: the exact state, each click applied once or (an
unsure one) not at all, never a confirmed one lost. A resume is retried on
1001 / 1013 / a dead socket, as the browser does; 4001 or 4009 for a
session that exists fails it. The server must never log a lost session, a
failed deposit, a bus drop of a worker or a crash.

Everything is bounded: sessions by count, every wait by a deadline.
127.0.0.1 only; only the server started here is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from bench.handover_driver import (
    MIB, Big, Crowd, LogLine, alive, first, forbidden_lines, log_lines, percentile, proc_rss, wait_until,
)
from tests.apps.bigapp import BALLAST_MIB
from tests.conftest import Server, start_server

pytestmark = [pytest.mark.soak]

APP = ("--workers", "2", "--app", "tests.apps.bigapp:app")
# Every session comes from 127.0.0.1: lift the per-IP limits meant for real
# clients; keep detached sessions hot (no cold tier) so the hand-over seals them.
ENV = {
    "VANGO_MAX_SESSIONS_PER_IP": "0",
    "VANGO_MAX_CONCURRENT_HANDSHAKES_PER_IP": "0",
    "VANGO_COLD_AFTER": "0",
    "VANGO_WORKER_HEARTBEAT": "250ms",
}
ALLOWED_CLOSES = {1001, 1013, 1006, None}  # what a moving session's client may see (and retries)


def _story(crowd: Crowd, server: Server, tail: int = 120) -> str:
    lines = [f"close codes {dict(crowd.close_codes())}", *crowd.failures()[:20]]
    events = [line for line in server.output().splitlines()
              if "tornado.access" not in line and "handing session" not in line]
    return "\n".join(lines + ["--- server output, without access and hand-over lines ---", *events[-tail:]])


@contextlib.contextmanager
def _story_on_failure(crowd: Crowd, server: Server) -> Iterator[None]:
    try:
        yield
    except AssertionError:
        print(_story(crowd, server))
        raise


def _drive(server: Server, crowd: Crowd, scenario: Coroutine[Any, Any, dict], seconds: float,
           *, finally_: Callable[[], None] = lambda: None) -> tuple[dict, str, float]:
    """Run ``scenario`` against ``server`` (stopped afterwards); (report, server output, seconds taken).

    On any failure the crowd's and the server's story is printed first.
    """
    started = time.monotonic()
    try:
        report = asyncio.run(asyncio.wait_for(scenario, seconds))
        output = server.output()
    except BaseException:
        print(_story(crowd, server))
        raise
    finally:
        finally_()
        server.stop()
    return report, output, time.monotonic() - started


def _common_checks(crowd: Crowd, output: str) -> None:
    assert not crowd.failures(), "\n".join(crowd.failures()[:20])
    codes = crowd.close_codes()
    assert set(codes) <= ALLOWED_CLOSES, f"close codes {dict(codes)}"
    assert not forbidden_lines(output), "\n".join(forbidden_lines(output)[:20])
    for b in crowd.sessions:
        assert b.count <= b.sent, b.story()  # never more applied than sent


def _workers(server: Server) -> dict[int, int]:
    """slot -> pid."""
    return server.per_worker("pid", 2, timeout=10.0)


# -- 1. a recycle of a worker holding > 40 MiB of sessions ------------------------------------------------

BIG_ON_RECYCLED = 172  # x 256 KiB = 43 MiB of sessions on the recycled worker
CLICKING = 32  # of them attached and clicking through the recycle; the rest detached
RECYCLE_LIMIT = 128 * MIB  # --max-worker-rss (owned memory); the sessions alone stay well below it
BALLAST_MARGIN = 16 * MIB  # the ballast takes the worker this far past the limit


@pytest.mark.timeout(150)
def test_recycled_worker_hands_over_43_mib_of_sessions_and_every_click_counts_once() -> None:
    server = start_server(
        *APP, "--max-worker-rss", str(RECYCLE_LIMIT), "--memory-interval", "100ms",
        env={**ENV, "VANGO_MEMORY_RECYCLE_AFTER": "1s", "VANGO_RECYCLE_MIN_INTERVAL": "600s"},
    )
    crowd = Crowd(server.url, concurrency=8)
    report, output, took = _drive(server, crowd, _recycle(server, crowd), 120)
    print(f"recycle test: {took:.1f}s,",
          {k: v for k, v in report.items() if k != "clickers"})
    with _story_on_failure(crowd, server):
        _check_recycle(report, output, crowd)


def _check_recycle(report: dict, output: str, crowd: Crowd) -> None:
    old_pid, slot, held = report["old_pid"], report["slot"], report["held"]
    assert re.search(rf"recycling worker pid {old_pid}\b", output)
    assert f"worker pid {old_pid} (slot {slot}) exited: exit status 0" in output
    handed = [m for m in re.finditer(rf"\[{old_pid}\] INFO vango_mp.handover: handed over (\d+) of (\d+) sessions",
                                     output)]
    assert handed, output[-3000:]
    placed, total = sum(int(m.group(1)) for m in handed), sum(int(m.group(2)) for m in handed)
    assert placed == total >= BIG_ON_RECYCLED, (placed, total)
    assert held["sessions"] >= BIG_ON_RECYCLED and held["state_mib"] > 40, held
    _common_checks(crowd, output)
    clickers = report["clickers"]
    assert all(b.pauses for b in clickers), [b.story() for b in clickers if not b.pauses]
    assert all(any(code == 1001 for code, _ in b.closes) for b in clickers), [b.story() for b in clickers]
    assert sum(b.confirmed for b in clickers) >= 2 * len(clickers)


async def _recycle(server: Server, crowd: Crowd) -> dict:
    deadline = time.monotonic() + 110
    async with crowd:
        pids = _workers(server)
        slot = 0
        old_pid = pids[slot]
        big, small = await crowd.populate(slot, BIG_ON_RECYCLED, deadline=deadline)
        ballast = await crowd.open_on(slot, deadline=deadline)
        clickers = big[:CLICKING]
        for b in big[CLICKING:] + small:
            await crowd.detach(b)
        mem = server.per_worker("memory", 2)
        owned = mem[slot]["owned"]
        assert max(m["owned"] for m in mem.values()) < RECYCLE_LIMIT - 32 * MIB, \
            f"a worker is near the limit before the ballast: {[m['owned'] // MIB for m in mem.values()]} MiB"
        assert _workers(server) == pids, "a worker was replaced before the recycle was triggered"
        on_slot = [b for b in crowd.sessions if b.worker == slot]
        held = {"sessions": len(on_slot), "state_mib": round(sum(b.kib for b in on_slot) / 1024, 1),
                "owned_mib": owned // MIB}

        stop = asyncio.Event()
        tasks = [asyncio.create_task(crowd.clicker(b, stop, deadline=deadline)) for b in clickers]
        try:
            await wait_until(lambda: all(b.confirmed for b in clickers) or any(t.done() for t in tasks), 20,
                             "every clicker clicking")
            # The leak that gets the worker recycled: not session state, it does not move.
            for _ in range(math.ceil((RECYCLE_LIMIT - owned + BALLAST_MARGIN) / (BALLAST_MIB * MIB))):
                await ballast.page.click("#ballast", timeout=crowd.timeout)
            await wait_until(lambda: re.search(rf"recycling worker pid {old_pid}\b", server.output()), 20,
                             f"worker pid {old_pid} picked for recycling")
            await wait_until(lambda: not alive(old_pid), 40, f"worker pid {old_pid} gone")
            # Every clicker was closed under (1001), resumed, and clicked again.
            await wait_until(lambda: all(b.pauses or b.failure for b in clickers) or any(t.done() for t in tasks),
                             30, "every clicker resumed and clicking")
            for _ in range(2):  # two more confirmed clicks each after the recycle
                target = {id(b): b.confirmed + 1 for b in clickers}
                await wait_until(lambda: all(b.confirmed >= target[id(b)] or b.failure for b in clickers), 20,
                                 "clicks after the recycle")
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        await crowd.verify(crowd.sessions, deadline)
        return {"old_pid": old_pid, "slot": slot, "held": held, "clickers": clickers,
                "pause_p50_ms": _ms(percentile(crowd.pauses(), 50)), "pause_max_ms": _ms(max(crowd.pauses(), default=None)),
                "replayed": sum(b.replayed for b in crowd.sessions),
                "unsure_not_applied": sum(b.sent - b.count for b in clickers)}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


# -- 2. twenty rolling reloads: the supervisor stays lean, new workers start the same size ------------------

RELOADS = 20
RELOAD_SESSIONS = 64  # x 256 KiB = 16 MiB through the hub at every reload (8 MiB per slot)
SUPERVISOR_GROWTH = 8 * MIB
START_RSS_DRIFT = 4 * MIB  # the first and the last new worker's RSS at ready, apart at most this much
_SPAWNED = re.compile(r"spawned worker pid (\d+)")
_SERVED = re.compile(r"now served by pid (\d+)")


class ReadyRss(threading.Thread):
    """Every new worker's RSS as it reports ready, before any session reaches it.

    Follows the log: a worker is sampled (psutil, every few ms) from its
    "spawned worker pid" line; its RSS at ready is its last sample taken
    before the supervisor's "slot N now served by pid" line (timestamped in
    the log), which precedes the old worker's SIGTERM and so any hand-over.
    Only valid while no client connects during a reload.
    """

    def __init__(self, server: Server, period: float = 0.003) -> None:
        super().__init__(name="ready-rss", daemon=True)
        self.server, self.period = server, period
        self.samples: dict[int, list[tuple[float, int]]] = {}  # pid -> [(epoch, rss)]
        self.ready: dict[int, float] = {}  # pid -> epoch of its "now served by" line
        self.order: list[int] = []  # pids in spawn order
        self._halt = threading.Event()

    def run(self) -> None:
        seen = 0
        while not self._halt.is_set():
            lines = self.server.lines
            for line in lines[seen:len(lines)]:
                if (m := _SPAWNED.search(line)) and int(m.group(1)) not in self.samples:
                    self.samples[int(m.group(1))] = []
                    self.order.append(int(m.group(1)))
                elif (m := _SERVED.search(line)) and (parsed := log_lines(line)):
                    self.ready[int(m.group(1))] = parsed[0].at
            seen = len(lines)
            for pid, series in self.samples.items():
                if pid not in self.ready:
                    rss = proc_rss(pid)
                    if rss:
                        series.append((time.time(), rss))
            self._halt.wait(self.period)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def at_ready(self) -> list[tuple[int, int]]:
        """(pid, RSS at ready) of every successor, in spawn order (the first workers have no such line)."""
        out = []
        for pid in self.order:
            if pid in self.ready:
                before = [rss for at, rss in self.samples[pid] if at < self.ready[pid]]
                if before:
                    out.append((pid, before[-1]))
        return out


@pytest.mark.timeout(150)
def test_twenty_rolling_reloads_keep_the_supervisor_lean_and_every_session() -> None:
    server = start_server(*APP, env={**ENV, "VANGO_MEMORY_RECYCLE_AFTER": "0"})
    crowd = Crowd(server.url, concurrency=8)
    sampler = ReadyRss(server)
    report, output, took = _drive(server, crowd, _reloads(server, crowd, sampler), 130, finally_=sampler.stop)
    with _story_on_failure(crowd, server):
        _check_reloads(report, output, crowd, took)


def _check_reloads(report: dict, output: str, crowd: Crowd, took: float) -> None:
    ready = report["ready_rss"]
    print(f"reload test: {took:.1f}s, supervisor RSS {report['supervisor_mib']} MiB, "
          f"reloads took {report['reload_s']} s, new workers' RSS at ready (MiB): {[r // MIB for _, r in ready]}")
    assert output.count("rolling reload complete") == RELOADS
    assert report["supervisor_rss"][1] - report["supervisor_rss"][0] <= SUPERVISOR_GROWTH, report["supervisor_mib"]
    assert len(ready) >= 2 * RELOADS - 2, f"RSS at ready of only {len(ready)} successors"
    assert abs(ready[-1][1] - ready[0][1]) <= START_RSS_DRIFT, [r // MIB for _, r in ready]
    assert max(r for _, r in ready) - min(r for _, r in ready) <= START_RSS_DRIFT, [r // MIB for _, r in ready]
    handed = [(int(m.group(1)), int(m.group(2))) for m in re.finditer(r"handed over (\d+) of (\d+) sessions", output)]
    assert len(handed) >= 2 * RELOADS and all(placed == total for placed, total in handed), handed
    assert sum(total for _, total in handed) >= RELOADS * RELOAD_SESSIONS
    _common_checks(crowd, output)


async def _reloads(server: Server, crowd: Crowd, sampler: ReadyRss) -> dict:
    deadline = time.monotonic() + 125
    async with crowd:
        big, small = await crowd.populate(None, RELOAD_SESSIONS, deadline=deadline)
        for b in big + small:
            await crowd.detach(b)  # nobody connects during the reloads: every new worker starts clean
        await wait_until(lambda: sum(server.per_worker("sessions", 2)[s]["detached"] for s in (0, 1))
                         >= RELOAD_SESSIONS, 10, "every session detached")
        sampler.start()
        before = proc_rss(server.pid)
        took = []
        for i in range(1, RELOADS + 1):
            t0 = time.monotonic()
            os.kill(server.pid, signal.SIGHUP)
            await wait_until(lambda: server.output().count("rolling reload complete") >= i, 30, f"reload {i}")
            took.append(round(time.monotonic() - t0, 2))
        after = proc_rss(server.pid)
        await crowd.verify(crowd.sessions, deadline)
        return {"supervisor_rss": (before, after), "supervisor_mib": (round(before / MIB, 1), round(after / MIB, 1)),
                "ready_rss": sampler.at_ready(), "reload_s": took}


# -- 3. resumes racing a hand-over -----------------------------------------------------------------

RACE_SESSIONS = 64  # x 256 KiB, both slots: each old worker hands over ~8 MiB in pieces
RACE_CLICKING = 8  # attached, clicking: told 1001 mid-hand-over, they resume at once
RACE_ROUNDS = 3


@pytest.mark.timeout(120)
def test_a_resume_racing_a_hand_over_ends_on_the_new_owner_with_its_state() -> None:
    server = start_server(*APP, env={**ENV, "VANGO_MEMORY_RECYCLE_AFTER": "0"})
    crowd = Crowd(server.url, concurrency=16)
    report, output, took = _drive(server, crowd, _race(server, crowd), 100)
    print(f"race test: {took:.1f}s, {report}")
    with _story_on_failure(crowd, server):
        _common_checks(crowd, output)
        # The race did happen: resumes in flight while an old worker handed its sessions over,
        # some of them served by the stopping worker itself (adopted from it mid-hand-over).
        assert report["resumes_during_handover"] >= 20, report
        assert report["adopted_from_stopping"] + report["retried"] >= 1, report


async def _race(server: Server, crowd: Crowd) -> dict:
    deadline = time.monotonic() + 95
    async with crowd:
        big, small = await crowd.populate(None, RACE_SESSIONS, deadline=deadline)
        clickers = big[:RACE_CLICKING]
        parked = big[RACE_CLICKING:] + small
        for b in parked:
            await crowd.detach(b)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(crowd.clicker(b, stop, deadline=deadline)) for b in clickers]
        spans: list[tuple[float, float]] = []  # (start, end) epoch of each resume fired into a hand-over

        async def race_one(b: Big) -> None:
            t0 = time.time()
            if await crowd.resume(b, deadline):
                spans.append((t0, time.time()))
                await crowd.detach(b)

        try:
            for i in range(1, RACE_ROUNDS + 1):
                served = server.output().count("now served by pid")
                os.kill(server.pid, signal.SIGHUP)
                for k in (1, 2):  # the moment each slot's old worker is told to stop, resume everyone
                    await wait_until(lambda: server.output().count("now served by pid") >= served + k, 30,
                                     f"reload {i}: old worker {k} told to stop", period=0.002)
                    results = await crowd.gather(race_one(b) for b in parked)
                    errors = [r for r in results if isinstance(r, BaseException)]
                    assert not errors, errors[:3]
                await wait_until(lambda: server.output().count("rolling reload complete") >= i, 30, f"reload {i}")
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        await crowd.verify(crowd.sessions, deadline)
    lines = log_lines(server.output())
    windows = _handover_windows(lines)
    during = sum(1 for s, e in spans if any(s < w_end and e > w_start for w_start, w_end, _ in windows))
    stopping_pids = {pid: w_start for w_start, _, pid in windows}
    adopted = sum(1 for line in lines if line.pid in stopping_pids and line.at >= stopping_pids[line.pid]
                  and line.message.startswith("handing session"))
    return {"windows_ms": [round((e - s) * 1000) for s, e, _ in windows], "resumes": len(spans),
            "resumes_during_handover": during, "adopted_from_stopping": adopted,
            "retried": sum(1 for b in crowd.sessions for code, _ in b.closes if code in (1001, 1013)),
            "close_codes": dict(crowd.close_codes())}


def _handover_windows(lines: list[LogLine]) -> list[tuple[float, float, int]]:
    """(SIGTERM, exit, pid) of every old worker a reload stopped, from the supervisor's log."""
    out = []
    for line in lines:
        m = re.search(r"now served by pid (\d+)", line.message)
        if not m:
            continue
        # The old worker of that slot is the one whose exit follows.
        slot = re.search(r"slot (\d+)", line.message)
        exit_line = first(lines, rf"worker pid (\d+) \(slot {slot.group(1) if slot else '?'}\) exited", after=line.at)
        if exit_line is not None:
            pid = int(re.search(r"worker pid (\d+)", exit_line.message).group(1))  # type: ignore[union-attr]
            out.append((line.at, exit_line.at, pid))
    return out
