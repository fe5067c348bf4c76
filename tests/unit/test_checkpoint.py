"""Checkpoints: which sessions reach the store, when, and when they leave it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.unit.fakes import Conn
from vango_mp.checkpoint import checkpoint
from vango_mp.demo import app
from vango_mp.settings import Settings
from vango_mp.worker import WorkerContext


def test_only_changed_sessions_are_written_and_expiry_deletes_them(tmp_path: Path) -> None:
    ctx = WorkerContext(Settings(state_dir=str(tmp_path), resume_window=60), 0, app, b"k" * 32)
    assert ctx.store is not None

    async def scenario() -> None:
        idle, busy, leaving = (ctx.open_session("/counter", "10.0.0.1") for _ in range(3))
        assert await checkpoint(ctx) == 0  # untouched new sessions are not worth a write
        busy.seq += 1  # it rendered a change
        assert await checkpoint(ctx) == 1
        assert await checkpoint(ctx) == 0  # clean again until the next change

        ctx.manager.attach(leaving, Conn())
        leaving.seq += 1
        ctx.manager.detach(leaving)  # persisted on disconnect, no interval needed
        assert len(ctx.store) == 2

        ctx.manager.sweep_expired(now=time.monotonic() + 61)
        assert ctx.store.take(leaving.id) is None  # expired: its checkpoint must not resume it
        assert ctx.store.take(idle.id) is None
        blob = ctx.store.take(busy.id)
        assert blob is not None
        busy.close(quiet=True)  # as if its worker had crashed: the checkpoint brings it back
        restored = ctx.restore(busy.id, blob, "10.0.0.1")
        assert restored.seq == busy.seq and restored.path == "/counter"

    asyncio.run(scenario())


def test_evicted_sessions_are_kept_in_the_store_and_resumable(tmp_path: Path) -> None:
    ctx = WorkerContext(Settings(state_dir=str(tmp_path), max_detached=1), 0, app, b"k" * 32)
    assert ctx.store is not None

    async def scenario() -> None:
        first, second = (ctx.open_session("/counter", "10.0.0.1") for _ in range(2))
        for session in (first, second):  # untouched: nothing written on disconnect
            ctx.manager.attach(session, Conn())
            ctx.manager.detach(session)
        assert ctx.manager.evictions["max_detached"] == 1
        assert len(ctx.store) == 1  # the evicted one, persisted first (the reference's rule)
        evicted = first if not first.alive else second
        blob = ctx.store.take(evicted.id)
        assert blob is not None
        assert ctx.restore(evicted.id, blob, "10.0.0.1").path == "/counter"

    asyncio.run(scenario())
