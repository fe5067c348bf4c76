"""What every session store offers: sealed blobs by session id, for one machine or several.

Two implementations: :mod:`.sqlite` (one machine, the default with
``state_dir``) and :mod:`.redis` (several machines sharing one Redis,
``store_url``). Writes are synchronous calls that never wait on a network
(the Redis store queues them behind the caller, in order); the one read that
matters -- :meth:`SessionStore.claim`, taking a session for a resume here --
is async. Blobs are sealed (:mod:`vango_mp.persist`): a store never trusts
what it reads back, and neither does its caller.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable


class StoreBusy(Exception):
    """The session's owner could not be asked or reached just now: the client retries (1013)."""


class OwnerRefused(Exception):
    """The machine that holds the session live refused it to these credentials."""


class SessionStore(ABC):
    """Sealed session blobs by id; ``where`` names the store in logs."""

    where: str = ""
    machine: str = ""  # this machine's id in a cluster (the hub's); "" for an embedded store
    # Called with sessions another machine owns now: their copies here are stale (shared stores only).
    on_stale: Callable[[list[str]], None] = staticmethod(lambda session_ids: None)

    @abstractmethod
    def save(self, session_id: str, ip: str, blob: bytes) -> None:
        """Keep (or replace) one session's blob."""

    @abstractmethod
    def save_many(self, rows: list[tuple[str, str, bytes]]) -> int:
        """Keep many blobs (session id, ip, blob); how many."""

    @abstractmethod
    def delete_many(self, session_ids: list[str]) -> None:
        """Forget these sessions (they ended for good)."""

    @abstractmethod
    async def claim(self, session_id: str, creds: list[object] | None = None) -> bytes | None:
        """The blob of a session to resume *here*, taken so that nobody else can resume it.

        None when the store has no live copy. A store shared by several
        machines first asks the machine that holds the session live (with
        ``creds``, the resume's credentials on the wire); it raises
        :class:`OwnerRefused` or :class:`StoreBusy` for those answers.
        """

    def purge(self) -> int:
        """Drop blobs older than the resume window; how many (a store with expiring keys: 0)."""
        return 0

    def on_open(self, session_id: str) -> None:
        """A new session lives here now (a shared store records the machine as its owner)."""

    def touch(self, session_ids: list[str]) -> None:
        """These sessions still live here (a shared store keeps their leases from expiring)."""

    async def drain(self, timeout: float) -> bool:
        """Wait (at most ``timeout``) until queued writes are stored; whether they are."""
        return True

    def status(self) -> str | None:
        """``"up"`` / ``"down"`` for a networked store; None for an embedded one."""
        return None

    def close(self) -> None:
        """Release connections and files."""
