"""SessionManager: the sessions one worker owns, their limits and eviction.

Attached sessions are counted; detached ones also sit in an index ordered by
last activity (sortedcontainers), so LRU eviction and the ResumeWindow
expiry sweep take from its front in O(log n).
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator

from sortedcontainers import SortedKeyList

from . import metrics
from .protocol import Close
from .security import redact
from .session import Session, SessionState
from .settings import Settings

log = logging.getLogger("vango_mp.sessions")


class Refused(Exception):
    """A new session that limits do not admit, with its close code and metric reason."""

    def __init__(self, code: Close, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class SessionManager:
    """Owns every session of one worker: lookup, admission, detach index, eviction."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._sessions: dict[str, Session] = {}
        self._detached: SortedKeyList = SortedKeyList(key=lambda s: (s.last_active, s.id))
        self._per_ip: Counter[str] = Counter()
        self.refusing: str | None = None  # set under memory pressure: "server busy"
        self.evictions: Counter[str] = Counter()

    # -- queries -------------------------------------------------------------

    def get(self, session_id: str) -> Session | None:
        session = self._sessions.get(session_id)
        return session if session is not None and session.alive else None

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[Session]:
        return iter(list(self._sessions.values()))

    @property
    def detached_count(self) -> int:
        return len(self._detached)

    @property
    def attached_count(self) -> int:
        return len(self._sessions) - len(self._detached)

    def detached_lru(self) -> list[Session]:
        """Detached sessions, least recently active first."""
        return list(self._detached)

    # -- admission -----------------------------------------------------------

    def admit(self, ip: str) -> None:
        """Raise Refused when a new session from ``ip`` is not allowed now."""
        s = self.settings
        if self.refusing:
            raise Refused(Close.SERVER_BUSY, self.refusing)
        if s.max_sessions and len(self._sessions) >= s.max_sessions:
            if not self._evict_one(self._pick(self._detached), "max_sessions"):
                raise Refused(Close.SERVER_BUSY, "max sessions reached")
        if s.max_sessions_per_ip and self._per_ip[ip] >= s.max_sessions_per_ip:
            mine = [x for x in self._detached if x.ip == ip]
            if not (s.evict_on_ip_limit and mine and self._evict_one(mine[0], "ip_limit")):
                raise Refused(Close.RATE_LIMITED, "too many sessions from this IP address")

    def add(self, session: Session) -> None:
        """Register a new (or adopted) session; it starts detached until attached."""
        self._sessions[session.id] = session
        self._per_ip[session.ip] += 1
        session.on_end = self._forget
        metrics.inc("vango_sessions_created_total")

    # -- transitions -----------------------------------------------------------

    def attach(self, session: Session, conn: object) -> None:
        """Take a session out of the detached index and give it a connection."""
        if session.state is SessionState.DETACHED:
            self._detached.discard(session)
        session.attach(conn)  # type: ignore[arg-type]

    def detach(self, session: Session) -> None:
        """A socket closed: keep the session resumable for ResumeWindow."""
        if session.state is not SessionState.ATTACHED:
            return
        session.detach()
        if self.settings.resume_window <= 0:
            session.close(Close.SESSION_EXPIRED, "resume disabled")
            return
        self._detached.add(session)
        limit = self.settings.max_detached
        while limit and len(self._detached) > limit:
            self._evict_one(self._pick(self._detached), "max_detached")

    def _forget(self, session: Session) -> None:
        if self._sessions.pop(session.id, None) is None:
            return
        self._detached.discard(session)
        self._per_ip[session.ip] -= 1
        if self._per_ip[session.ip] <= 0:
            del self._per_ip[session.ip]

    # -- eviction ----------------------------------------------------------------

    def _pick(self, candidates: SortedKeyList | list[Session]) -> Session | None:
        if not candidates:
            return None
        policy = self.settings.eviction_policy
        if policy == "oldest":
            return min(candidates, key=lambda s: s.created)
        if policy == "random":
            return random.choice(list(candidates))
        return candidates[0]

    def _evict_one(self, session: Session | None, reason: str) -> bool:
        if session is None:
            return False
        log.info("evicting detached session %s (%s)", redact(session.id), reason)
        self.evictions[reason] += 1
        metrics.inc("vango_evictions_total", reason=reason)
        self._detached.discard(session)
        session.close(Close.SESSION_EXPIRED, "session expired", evicted=True)
        return True

    def evict_detached(self, count: int, reason: str) -> int:
        """Evict up to ``count`` detached sessions by policy; how many went."""
        done = 0
        while done < count and self._evict_one(self._pick(self._detached), reason):
            done += 1
        return done

    def sweep_expired(self, now: float | None = None) -> int:
        """Expire detached sessions idle past ResumeWindow; how many went."""
        deadline = (now if now is not None else time.monotonic()) - self.settings.resume_window
        done = 0
        while self._detached and self._detached[0].last_active < deadline:
            self._evict_one(self._detached[0], "expired")
            done += 1
        return done

    def close_all(self, code: int, reason: str, keep: Callable[[Session], bool] | None = None) -> None:
        """Close every session (worker stopping)."""
        for session in self:
            if keep is None or not keep(session):
                session.close(code, reason)
