"""With a state directory, sessions survive a full stop and restart of the server."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Server, start_server
from vango_mp import demo, persist
from vango_mp.protocol import Close
from vango_mp.testing import Page, SessionClosed, TestClient

pytestmark = pytest.mark.timeout(90)


def test_sessions_survive_a_full_restart(tmp_path: Path) -> None:
    env = {"VANGO_STATE_DIR": str(tmp_path), "VANGO_PERSISTENCE_SECRET": secrets.token_hex(32)}
    first = start_server("--workers", "2", env=env)

    async def before() -> list:
        client = TestClient(first.url)
        pages = [await client.open("/counter") for _ in range(6)]
        for i, page in enumerate(pages):
            for _ in range(i + 1):
                await page.click("#inc")
        await asyncio.gather(*(p.disconnect() for p in pages[:3]))  # detached; the rest stay attached
        return [(p, i + 1) for i, p in enumerate(pages)]

    try:
        pages = asyncio.run(before())
    finally:
        assert first.stop() == 0
    assert (tmp_path / "sessions.sqlite3").exists()
    second = start_server("--workers", "2", env=env)
    try:
        async def after() -> None:
            client = TestClient(second.url)
            for page, count in pages:
                page.client = client
                try:
                    await page.resume()
                except Exception as err:
                    raise AssertionError(f"{err}\n--- first server:\n{first.output()[-3000:]}"
                                         f"\n--- second server:\n{second.output()[-3000:]}") from None
                assert page.text("#count") == f"Count: {count}"
                await page.click("#inc")
                assert page.text("#count") == f"Count: {count + 1}"
                await page.disconnect()

        asyncio.run(after())
    finally:
        second.stop()


def test_sessions_survive_a_worker_crash(tmp_path: Path) -> None:
    """Checkpoints: SIGKILL a worker; its sessions resume elsewhere (or on its successor) with their state."""
    secret = secrets.token_hex(32)  # lets the test open the checkpoints it waits for
    env = {"VANGO_STATE_DIR": str(tmp_path), "VANGO_PERSIST_INTERVAL": "200ms", "VANGO_PERSISTENCE_SECRET": secret}
    server = start_server("--workers", "2", env=env)
    try:
        pids = server.per_worker("pid")
        store = Checkpoints(tmp_path / "sessions.sqlite3", bytes.fromhex(secret))
        try:
            asyncio.run(_crash_and_resume(server, store, pids))
        except Exception as err:
            raise AssertionError(f"{err!r}\n--- server:\n{server.output()[-6000:]}") from err
        output = server.output()
    finally:
        server.stop()
    assert "crashed: killed by SIGKILL" in output
    assert "checkpoint failed" not in output


async def _crash_and_resume(server: Server, store: Checkpoints, pids: dict[int, int]) -> None:
    client = TestClient(server.url)
    pages = []
    for _ in range(40):  # until each worker holds at least three sessions
        pages.append(await client.open("/counter"))
        if min(sum(p.worker == slot for p in pages) for slot in pids) >= 3:
            break
    counts = {}
    for i, page in enumerate(pages):
        for _ in range(i % 4 + 1):
            await page.click("#inc")
        counts[page.session_id] = i % 4 + 1
    victim = pages[0].worker
    gone = [p for p in pages if p.worker == victim]
    await gone[0].disconnect()  # one detached, persisted on disconnect; the others attached
    deadline = time.monotonic() + 10
    while not all(store.seq(p.session_id) == p.last_seq for p in gone):  # each checkpoint has the last click
        assert time.monotonic() < deadline, "no up-to-date checkpoint of every session in 10 s"
        await asyncio.sleep(0.05)

    os.kill(pids[victim], signal.SIGKILL)
    for page in gone[1:]:
        await page.wait_closed(10)
    for page in gone:
        await _resume(page)
        assert page.text("#count") == f"Count: {counts[page.session_id]}", page.session_id
        await page.click("#inc")
        assert page.text("#count") == f"Count: {counts[page.session_id] + 1}"
    for page in pages:
        if page.worker != victim and page not in gone:
            assert page.state.value == "open"  # the other worker's sessions never noticed
    for page in pages:
        await page.disconnect()


class Checkpoints:
    """Read-only view of the store: the seq each session's checkpoint was sealed at."""

    def __init__(self, db: Path, secret: bytes) -> None:
        self.db, self.secret = db, secret

    def seq(self, session_id: str | None) -> int | None:
        if not self.db.exists():
            return None
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT blob FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            return None
        payload = persist.unseal(bytes(row[0]), [self.secret], session_id=str(session_id), schema=demo.app.schema)
        return int(payload["seq"])


async def _resume(page: Page, attempts: int = 40) -> None:
    """Resume as the browser would: retry while the crashed slot is respawning."""
    for attempt in range(attempts):
        try:
            await page.resume(timeout=5)
            return
        except SessionClosed as err:
            if err.code not in (None, 1006, Close.SERVER_BUSY, Close.GOING_AWAY) or attempt == attempts - 1:
                raise
        await asyncio.sleep(0.1 * min(2**attempt, 10))


# Runs the real CLI with one supervisor method broken once a trigger file exists.
_FAULTY_SUPERVISOR = """
import os, sys
from supervisor import arbiter, cli
check_memory = arbiter.Arbiter.check_memory
def broken(self):
    if os.path.exists(os.environ["FAULT_TRIGGER"]):
        raise RuntimeError("injected supervisor bug")
    check_memory(self)
arbiter.Arbiter.check_memory = broken
sys.exit(cli.main(sys.argv[1:]))
"""


def test_a_supervisor_bug_stops_the_workers_gracefully_and_loses_no_session(tmp_path: Path) -> None:
    trigger = tmp_path / "break-now"
    env = {"VANGO_STATE_DIR": str(tmp_path / "state"), "VANGO_PERSISTENCE_SECRET": secrets.token_hex(32)}
    first = start_server("--workers", "2", env={**env, "FAULT_TRIGGER": str(trigger)},
                         command=[sys.executable, "-c", _FAULTY_SUPERVISOR])

    async def before() -> list[Page]:
        client = TestClient(first.url)
        pages = [await client.open("/counter") for _ in range(4)]
        for i, page in enumerate(pages):
            for _ in range(i + 1):
                await page.click("#inc")
        return pages

    try:
        pages = asyncio.run(before())
        workers = first.per_worker("pid")
        trigger.touch()
        assert first.proc.wait(30) == 4
    finally:
        first.stop()
    output = first.output()
    assert "unhandled error in the supervisor loop" in output and "injected supervisor bug" in output
    for slot, pid in workers.items():
        assert f"worker pid {pid} (slot {slot}) exited: exit status 0" in output, output[-3000:]
    second = start_server("--workers", "2", env=env)
    try:
        async def after() -> None:
            client = TestClient(second.url)
            for i, page in enumerate(pages):
                page.client = client
                await page.resume()
                assert page.text("#count") == f"Count: {i + 1}"

        asyncio.run(after())
    finally:
        second.stop()
