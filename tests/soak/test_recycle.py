"""A worker owning more than --max-worker-rss is recycled: rolling, its sessions handed on, none lost.

No memory pressure here (the budget is the machine's): only the recycling
limit, what an idle worker owns (USS) + 12 MiB, is in play. Sessions fill both workers past it;
the supervisor replaces one worker (its successor in the same slot first),
the old one hands every session over and exits cleanly, and every session
-- attached ones told 1001 "server stopping", detached ones deposited --
resumes with its exact state.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from bench.soak_driver import MIB, Fleet, wait_until
from tests.conftest import Server, start_server

from .conftest import APP, BASE_ENV, worker_pids

pytestmark = [pytest.mark.soak, pytest.mark.timeout(120)]

LIMIT_ABOVE_IDLE = 12 * MIB
DRIVE_SECONDS = 90  # well inside the test's timeout, so a stall reports what stalled


def test_bloated_worker_is_recycled_without_losing_sessions(idle_owned: int) -> None:
    server = start_server(
        *APP, "--max-worker-rss", str(idle_owned + LIMIT_ABOVE_IDLE), "--memory-interval", "100ms",
        env={**BASE_ENV, "VANGO_MEMORY_RECYCLE_AFTER": "1s"},
    )
    fleet = Fleet(server.url)
    try:
        before = worker_pids(server)
        recycled = asyncio.run(asyncio.wait_for(drive(server, fleet, before), DRIVE_SECONDS))
        output = server.output()
    except BaseException:
        print(_story(fleet, server.output()))
        raise
    finally:
        server.stop()
    slot, old_pid = recycled
    assert re.search(rf"recycling worker pid {old_pid}\b", output), output[-3000:]
    assert f"worker pid {old_pid} (slot {slot}) exited: exit status 0" in output, output[-3000:]
    assert "crashed" not in output and "SIGKILL" not in output
    on_old = [s for s in fleet.sessions if s.detaches and any(int(d[2]) == slot for d in s.detaches)]
    assert on_old, "no session was on the recycled worker"
    assert set(fleet.outcomes()) <= {"detached", "attached"}, fleet.outcomes()


async def drive(server: Server, fleet: Fleet, before: dict[int, int]) -> tuple[int, int]:
    async with fleet:
        recycled: tuple[int, int] | None = None
        for _ in range(40):
            await fleet.wave(16, detach_every=3, keep=2)
            recycled = _replaced(server, before)
            if recycled:
                break
        if recycled is None:
            recycled = await wait_until(lambda: _async(_replaced(server, before)), 15, "a worker recycled")
        slot, old_pid = recycled
        await wait_until(lambda: _async(not _alive(old_pid)), 30, f"old worker {old_pid} gone")
        for _ in range(3):  # the other worker may be recycled meanwhile: its sessions are told 1001 too
            fleet.scan_closed()  # a session told 1001 counts as detached
            for s in fleet.attached():
                await fleet.detach(s)
            tally = await fleet.verify()
            assert set(tally) <= {"resumed"}, tally
        return recycled


def _story(fleet: Fleet, output: str) -> str:
    """What each session went through and the server's last words: the failure report."""
    lines = [f"outcomes {fleet.outcomes()}"]
    for s in fleet.sessions:
        if s.status not in ("attached", "detached") or s.note:
            sid = s.page.session_id or ""
            lines.append(f"  {sid} {s.status} worker={s.worker} note={s.note!r} detaches={s.detaches}")
            lines += [f"    | {line}" for line in output.splitlines() if sid and sid[:6] in line]
    events = [line for line in output.splitlines() if "tornado.access" not in line and "handing session" not in line]
    return "\n".join(lines + ["--- server output, without access and hand-over lines ---", *events[-150:]])


def _replaced(server: Server, before: dict[int, int]) -> tuple[int, int] | None:
    """(slot, old pid) of a worker whose slot is now served by another pid, if any."""
    try:
        now = worker_pids(server, timeout=2.0)
    except AssertionError:
        return None
    for slot, pid in before.items():
        if now.get(slot, pid) != pid:
            return slot, pid
    return None


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def _async(value: object) -> object:
    return value
