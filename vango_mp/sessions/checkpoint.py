"""Checkpoints: live sessions copied into the session store, so a worker crash costs at most PersistInterval.

Only with a store (``state_dir``). A session is *dirty* when its seq moved
since its last checkpoint (every state change a user sees renders a PATCHES
frame). Every ``persist_interval`` seconds the worker seals its dirty
sessions into the store, a chunk at a time so a big worker keeps serving in
between; a dirty session is also sealed when its socket closes (the
reference's persist on disconnect), and every session is before it is
evicted. A session that expires has its row deleted, so a stale copy never
brings it back.

A checkpoint never makes a second owner: a resume reads the store only when
no live worker claims the session over the bus (see :mod:`.handover`), and
``take`` deletes what it reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from .. import metrics
from ..observability import prom
from ..security import redact
from ..session import Session
from ..stores.base import SessionStore
from .sealer import Sealer
from .states import State

log = logging.getLogger("vango_mp.checkpoint")

CHUNK = 200  # sessions sealed between two yields to the loop


def dirty(session: Session) -> bool:
    """Whether the session changed since it was last written (and still lives here)."""
    return session.alive and session.saved_seq != session.seq


class Checkpoints:
    """Writes sessions into the store: on an interval, on disconnect, before eviction."""

    def __init__(self, store: SessionStore, sealer: Sealer, *, stopping: Callable[[], bool] = lambda: False) -> None:
        self.store = store
        self.sealer = sealer
        self.stopping = stopping  # a stopping worker hands its sessions over instead
        self._task: asyncio.Task[int] | None = None

    def save(self, sessions: Iterable[Session]) -> int:
        """Write ``sessions`` in one transaction; how many were written.

        Live ones are sealed here (one that cannot be is logged and skipped,
        never the whole batch); cold ones already are their blob.
        """
        rows = []
        for session in sessions:
            try:
                rows.append((session.id, session.ip, self.sealer.seal(session)))
            except Exception:  # debug mode: unserializable state; the session keeps running
                log.exception("session %s: could not be sealed for the store", redact(session.id))
                continue
            if session.state is not State.COLD:
                session.saved_seq = session.seq
        if rows:
            with prom.Stopwatch() as took:
                self.store.save_many(rows)
            prom.record_store_write(took.seconds)
            metrics.inc("vango_store_writes_total", len(rows))
        return len(rows)

    def on_detach(self, session: Session) -> None:
        """Persist on disconnect."""
        if not self.stopping() and dirty(session):
            self.save([session])

    def on_open(self, session: Session) -> None:
        """A new session: a store shared by machines records it as this machine's."""
        self.store.on_open(session.id)

    def forget(self, session_ids: list[str]) -> None:
        """Expired for good: their stored copies must not resume them."""
        self.store.delete_many(session_ids)

    async def checkpoint(self, sessions: Iterable[Session]) -> int:
        """Write every dirty one of ``sessions``, CHUNK at a time; how many were written."""
        sessions = list(sessions)
        todo = [s for s in sessions if dirty(s)]
        self.store.touch([s.id for s in sessions if s.alive and not dirty(s)])  # their leases stay ours
        written = 0
        for start in range(0, len(todo), CHUNK):
            # Re-checked: a session may have moved, ended or been saved while we yielded.
            written += self.save([s for s in todo[start : start + CHUNK] if dirty(s)])
            await asyncio.sleep(0)
        return written

    def tick(self, sessions: Callable[[], Iterable[Session]]) -> None:
        """Start a checkpoint of ``sessions()`` unless one is still running (a periodic callback)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(sessions))

    async def _run(self, sessions: Callable[[], Iterable[Session]]) -> int:
        try:
            return await self.checkpoint(sessions())
        except Exception:  # a full disk or a locked file: log, keep serving, try again next time
            log.exception("checkpoint failed")
            return 0
