"""Checkpoints: which sessions reach the store, when, and when they leave it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.unit.fakes import Conn
from vango_mp.demo import app
from vango_mp.protocol import Close
from vango_mp.settings import Settings
from vango_mp.session import Session
from vango_mp.sessions import SessionOwner
from vango_mp.worker import Worker


async def opened(owner: SessionOwner) -> Session:
    await owner.admit("10.0.0.1", "browser")
    return owner.open("/counter", "10.0.0.1")


def clicked(worker: Worker, session_id: str, times: int) -> None:
    """Click ``#inc`` ``times`` times, applied and rendered as the session's loop would."""
    session = worker.owner.get(session_id)
    assert session is not None
    for _ in range(times):
        hid = next(h for h, el in session.root._registry.items() if el.attrs.get("id") == "inc")
        session.root.handler(hid, "click")()
        session.flush()


def test_only_changed_sessions_are_written_and_expiry_deletes_them(tmp_path: Path) -> None:
    worker = Worker(Settings(state_dir=str(tmp_path), resume_window=60), 0, app, b"k" * 32)
    owner, store, checkpoints = worker.owner, worker.store, worker.checkpoints
    assert store is not None and checkpoints is not None

    async def scenario() -> None:
        idle, busy, leaving = [await opened(owner) for _ in range(3)]
        owner.attach(busy, Conn())
        assert await checkpoints.checkpoint(owner) == 0  # untouched new sessions are not worth a write
        clicked(worker, busy.id, 3)  # it rendered a change
        assert await checkpoints.checkpoint(owner) == 1
        assert await checkpoints.checkpoint(owner) == 0  # clean again until the next change

        owner.attach(leaving, Conn())
        clicked(worker, leaving.id, 1)
        owner.detach(leaving)  # persisted on disconnect, no interval needed
        assert len(store) == 2

        owner.sweep_expired(now=time.monotonic() + 61)
        assert store.take(leaving.id) is None  # expired: its checkpoint must not resume it
        assert store.take(idle.id) is None
        blob = store.take(busy.id)
        assert blob is not None
        owner.end(busy, Close.GOING_AWAY, "crash", "test")  # as if its worker had crashed
        restored, exact = owner.take_in(busy.id, worker.sealer.open(busy.id, blob), "10.0.0.1")  # the checkpoint brings it back
        assert exact and restored.seq == busy.seq == 3 and restored.path == "/counter"
        assert "Count: 3" in restored.root.html()

    asyncio.run(scenario())


def test_evicted_sessions_are_kept_in_the_store_and_resumable(tmp_path: Path) -> None:
    worker = Worker(Settings(state_dir=str(tmp_path), max_detached=1), 0, app, b"k" * 32)
    owner, store = worker.owner, worker.store
    assert store is not None

    async def scenario() -> None:
        first, second = [await opened(owner) for _ in range(2)]
        clicked(worker, first.id, 2)
        for session in (first, second):
            owner.attach(session, Conn())
        owner.detach(first)  # written on disconnect (it changed)...
        store.delete_many([first.id])  # ...but only what eviction writes counts here
        owner.detach(second)  # untouched: not written; two detached, limit one: first goes
        assert owner.evictions["max_detached"] == 1
        assert len(store) == 1  # the evicted one, persisted first (the reference's rule)
        assert not first.alive  # least recently active
        blob = store.take(first.id)
        assert blob is not None
        restored, _ = owner.take_in(first.id, worker.sealer.open(first.id, blob), "10.0.0.1")
        assert restored.path == "/counter" and "Count: 2" in restored.root.html()

    asyncio.run(scenario())
