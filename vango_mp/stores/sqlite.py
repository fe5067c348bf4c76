"""The embedded session store: sealed session blobs in an SQLite file.

With ``state_dir`` set, every worker opens ``<state_dir>/sessions.sqlite3``
(WAL mode, so workers read and write side by side). Sessions land here when
nobody else can take them — a worker stopping with no live peer (a full stop
or deploy), or a detached session evicted under pressure — and as
checkpoints of live ones (:mod:`vango_mp.checkpoint`); a resume that no
worker can answer looks here last. ``take`` deletes as it reads
(``DELETE … RETURNING``), so a blob is resumed at most once: the single-owner
rule holds across processes. Blobs are sealed (see :mod:`vango_mp.persist`);
the store trusts nothing it reads back.

One machine's store; several machines share :mod:`vango_mp.stores.redis`
instead (``store_url``). Both follow :class:`vango_mp.stores.base.SessionStore`.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path

from .base import SessionStore

log = logging.getLogger("vango_mp.store")

FILENAME = "sessions.sqlite3"
OPEN_RETRY_SECONDS = 5.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    ip TEXT NOT NULL,
    saved REAL NOT NULL,
    blob BLOB NOT NULL
)
"""


class SqliteStore(SessionStore):
    """Sealed blobs by session id, shared by every worker of one machine."""

    def __init__(self, state_dir: str, *, ttl: float) -> None:
        path = Path(state_dir)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = path / FILENAME
        self.where = str(self.path)
        self.ttl = ttl
        # Calls are short and made from the worker's loop thread only.
        self._db = sqlite3.connect(self.path, timeout=2.0, isolation_level=None)
        try:
            self._setup()
        except BaseException:
            self._db.close()
            raise
        os.chmod(self.path, 0o600)

    def _setup(self) -> None:
        """WAL mode and the table. Switching to WAL does not wait on the busy
        timeout, so workers starting together retry it; the supervisor has
        usually done it before they fork (see :func:`prepare`)."""
        deadline = time.monotonic() + OPEN_RETRY_SECONDS
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute(_SCHEMA)
                return
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) and "busy" not in str(err) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def save(self, session_id: str, ip: str, blob: bytes) -> None:
        """Keep (or replace) one session's blob."""
        self._db.execute(
            "INSERT OR REPLACE INTO sessions (id, ip, saved, blob) VALUES (?, ?, ?, ?)",
            (session_id, ip, time.time(), blob),
        )

    def save_many(self, rows: list[tuple[str, str, bytes]]) -> int:
        """Keep many blobs in one transaction; how many."""
        now = time.time()
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO sessions (id, ip, saved, blob) VALUES (?, ?, ?, ?)",
                [(sid, ip, now, blob) for sid, ip, blob in rows],
            )
        return len(rows)

    def delete_many(self, session_ids: list[str]) -> None:
        """Forget these sessions (they ended for good)."""
        if session_ids:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany("DELETE FROM sessions WHERE id = ?", [(sid,) for sid in session_ids])

    def take(self, session_id: str) -> bytes | None:
        """Remove and return a session's blob, if it is there and within the resume window."""
        row = self._db.execute(
            "DELETE FROM sessions WHERE id = ? RETURNING saved, blob", (session_id,)
        ).fetchone()
        if row is None:
            return None
        saved, blob = row
        return bytes(blob) if time.time() - saved <= self.ttl else None

    async def claim(self, session_id: str, creds: list[object] | None = None) -> bytes | None:
        """For a resume here: :meth:`take` (one machine: the bus already asked every live worker)."""
        return self.take(session_id)

    def purge(self) -> int:
        """Drop blobs older than the resume window; how many."""
        cur = self._db.execute("DELETE FROM sessions WHERE saved < ?", (time.time() - self.ttl,))
        return cur.rowcount

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0])

    def close(self) -> None:
        self._db.close()


def prepare(state_dir: str) -> None:
    """Create the store once, before the workers open it side by side (OSError / sqlite3.Error if impossible)."""
    SqliteStore(state_dir, ttl=0).close()


def open_store(state_dir: str | None, ttl: float) -> SqliteStore | None:
    """The store for ``state_dir``, or None when no state directory is configured."""
    if not state_dir:
        return None
    try:
        return SqliteStore(state_dir, ttl=ttl)
    except (OSError, sqlite3.Error) as err:
        log.error("session store in %s unavailable (%s): sessions live in memory only", state_dir, err)
        return None
