"""Checkpoints: live sessions copied into the session store, so a worker crash costs at most PersistInterval.

Only with a store (``state_dir``). A session is *dirty* when its seq moved
since its last checkpoint (every state change a user sees renders a PATCHES
frame). Every ``persist_interval`` seconds the worker seals its dirty
sessions into the store, a chunk at a time so a big worker keeps serving in
between; a dirty session is also sealed when its socket closes (the
reference's persist on disconnect). A session that expires has its row
deleted, so a stale copy never brings it back.

A checkpoint never makes a second owner: a resume reads the store only when
no live worker claims the session over the bus (see
:meth:`vango_mp.live.LiveSocket._fetch`), and ``take`` deletes what it reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import metrics
from .security import redact
from .session import Session
from .sessions import ColdSession

if TYPE_CHECKING:
    from .worker import WorkerContext

log = logging.getLogger("vango_mp.checkpoint")

CHUNK = 200  # sessions sealed between two yields to the loop


def dirty(session: Session) -> bool:
    """Whether the session changed since it was last written (and still lives here)."""
    return session.alive and session.saved_seq != session.seq


def save(ctx: WorkerContext, entries: Sequence[Session | ColdSession]) -> int:
    """Write ``entries`` into the store in one transaction; how many were written.

    Hot sessions are sealed here (one that cannot be is logged and skipped,
    never the whole batch); cold ones already are their blob. Checkpoints,
    disconnects and evictions (``SessionManager.keeper``) all come through.
    """
    assert ctx.store is not None
    rows = []
    for entry in entries:
        if isinstance(entry, ColdSession):
            rows.append((entry.id, entry.ip, entry.blob))
            continue
        try:
            rows.append((entry.id, entry.ip, ctx.seal(entry)))
        except Exception:  # debug mode: unserializable state; the session keeps running
            log.exception("session %s: could not be sealed for the store", redact(entry.id))
            continue
        entry.saved_seq = entry.seq
    if rows:
        ctx.store.save_many(rows)
        metrics.inc("vango_store_writes_total", len(rows))
    return len(rows)


async def checkpoint(ctx: WorkerContext) -> int:
    """Write every dirty session, CHUNK at a time; how many were written."""
    todo = [s for s in ctx.manager if dirty(s)]
    written = 0
    for start in range(0, len(todo), CHUNK):
        # Re-checked: a session may have moved, ended or been saved while we yielded.
        written += save(ctx, [s for s in todo[start : start + CHUNK] if dirty(s)])
        await asyncio.sleep(0)
    return written


def on_detach(ctx: WorkerContext, session: Session) -> None:
    """Persist on disconnect; a stopping worker hands its sessions over instead."""
    if not ctx.stopping and dirty(session):
        save(ctx, [session])


def on_expire(ctx: WorkerContext, session_ids: list[str]) -> None:
    """Expired for good: their stored copies must not resume them."""
    assert ctx.store is not None
    ctx.store.delete_many(session_ids)


class Checkpointer:
    """Run :func:`checkpoint` every ``persist_interval`` seconds, never two at once."""

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        self.task: asyncio.Task[int] | None = None

    def tick(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> int:
        try:
            return await checkpoint(self.ctx)
        except Exception:  # a full disk or a locked file: log, keep serving, try again next time
            log.exception("checkpoint failed")
            return 0
