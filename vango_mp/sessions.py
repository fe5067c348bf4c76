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
from .cost import entry_cost
from .protocol import Close
from .security import redact
from .session import Session, SessionState
from .settings import Settings

log = logging.getLogger("vango_mp.sessions")


class ColdSession:
    """A long-detached session kept only as its sealed blob (the cold tier)."""

    __slots__ = ("id", "ip", "created", "last_active", "blob")

    def __init__(self, session_id: str, ip: str, created: float, last_active: float, blob: bytes) -> None:
        self.id = session_id
        self.ip = ip
        self.created = created
        self.last_active = last_active
        self.blob = blob

    @property
    def alive(self) -> bool:
        return True


Entry = Session | ColdSession


class Refused(Exception):
    """A new session that limits do not admit, with its close code and metric reason."""

    def __init__(self, code: Close, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class SessionManager:
    """Owns every session of one worker: lookup, admission, detach index, eviction."""

    def __init__(self, settings: Settings, sealer: Callable[[Session], bytes] | None = None) -> None:
        self.settings = settings
        self.sealer = sealer  # turns a session into its blob (cold tier, hand-over)
        self._sessions: dict[str, Entry] = {}
        self._detached: SortedKeyList = SortedKeyList(key=lambda s: (s.last_active, s.id))
        self._per_ip: Counter[str] = Counter()
        self.refusing: str | None = None  # set under memory pressure: "server busy"
        self.evictions: Counter[str] = Counter()
        # Persists detached sessions before they are evicted for memory or
        # max_detached (the session store, when one is configured).
        self.keeper: Callable[[list[Entry]], None] | None = None
        # Checkpoint hooks (vango_mp.checkpoint): a socket closed; sessions expired for good.
        self.on_detach: Callable[[Session], None] | None = None
        self.on_expire: Callable[[list[str]], None] | None = None

    # -- queries -------------------------------------------------------------

    def get(self, session_id: str) -> Session | None:
        """The live (hot) session with this id, if this worker holds one."""
        session = self._sessions.get(session_id)
        return session if type(session) is Session and session.alive else None

    def take(self, session_id: str) -> Entry | None:
        """Remove a session from this worker for a hand-over (or a cold resume) and return it."""
        entry = self._sessions.get(session_id)
        if entry is None:
            return None
        if type(entry) is ColdSession:
            self._drop(entry)
        return entry

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[Session]:
        return iter([s for s in self._sessions.values() if type(s) is Session])

    def entries(self) -> list[Entry]:
        """Every session held, hot and cold."""
        return list(self._sessions.values())

    @property
    def cold_count(self) -> int:
        return sum(1 for s in self._detached if type(s) is ColdSession)

    @property
    def detached_count(self) -> int:
        return len(self._detached)

    @property
    def attached_count(self) -> int:
        return len(self._sessions) - len(self._detached)

    def detached_lru(self) -> list[Entry]:
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
            mine = [x for x in self._detached if x.ip == ip]  # LRU order
            if not (s.evict_on_ip_limit and mine and self._evict_one(mine[0], "ip_limit")):
                raise Refused(Close.RATE_LIMITED, "too many sessions from this IP address")

    def add(self, session: Session) -> None:
        """Register a new (or adopted) session; it starts detached until attached."""
        self._sessions[session.id] = session
        self._per_ip[session.ip] += 1
        session.on_end = self._forget
        metrics.inc("vango_sessions_created_total")

    def add_cold(self, cold: ColdSession) -> None:
        """Take in a sealed session handed over by a stopping peer."""
        if cold.id in self._sessions:
            return
        self._sessions[cold.id] = cold
        self._per_ip[cold.ip] += 1
        self._detached.add(cold)
        self._enforce_max_detached()

    def chill(self, now: float | None = None) -> int:
        """Seal detached sessions idle past ``cold_after`` into the cold tier; how many."""
        if self.sealer is None or self.settings.cold_after <= 0:
            return 0
        deadline = (now if now is not None else time.monotonic()) - self.settings.cold_after
        hot = [s for s in self._detached.irange(None, None) if type(s) is Session and s.last_active < deadline]
        for session in hot:
            self.freeze(session)
        return len(hot)

    def freeze(self, session: Session) -> ColdSession:
        """Replace a detached session by its blob; the live objects are released."""
        assert self.sealer is not None
        cold = ColdSession(session.id, session.ip, session.created, session.last_active, self.sealer(session))
        self._detached.discard(session)
        session.on_end = None
        session.close(Close.NORMAL, "cold", quiet=True)
        self._sessions[cold.id] = cold
        self._detached.add(cold)
        return cold

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
        if self.on_detach is not None:
            self.on_detach(session)
        self._enforce_max_detached()

    def _enforce_max_detached(self) -> None:
        limit = self.settings.max_detached
        while limit and len(self._detached) > limit:
            victim = self._pick(self._detached)
            self._keep([victim] if victim is not None else [])
            self._evict_one(victim, "max_detached")

    def _forget(self, session: Session) -> None:
        if self._sessions.get(session.id) is not session:
            return
        self._drop(session)

    def _drop(self, session: Entry) -> None:
        del self._sessions[session.id]
        self._detached.discard(session)
        self._per_ip[session.ip] -= 1
        if self._per_ip[session.ip] <= 0:
            del self._per_ip[session.ip]

    # -- eviction ----------------------------------------------------------------

    def _pick(self, candidates: SortedKeyList | list[Entry]) -> Entry | None:
        if not candidates:
            return None
        policy = self.settings.eviction_policy
        if policy == "oldest":
            return min(candidates, key=lambda s: s.created)
        if policy == "random":
            return random.choice(list(candidates))
        return candidates[0]

    def _in_order(self, entries: list[Entry]) -> list[Entry]:
        """Detached entries (given in LRU order) in the eviction policy's order."""
        policy = self.settings.eviction_policy
        if policy == "oldest":
            return sorted(entries, key=lambda s: s.created)
        if policy == "random":
            random.shuffle(entries)
        return entries

    def _evict_one(self, session: Entry | None, reason: str) -> bool:
        if session is None:
            return False
        # Memory evictions come by the hundred; vango_mp.pressure logs one line per round.
        (log.debug if reason.startswith("memory") else log.info)(
            "evicting detached session %s (%s)", redact(session.id), reason)
        self.evictions[reason] += 1
        metrics.inc("vango_evictions_total", reason=reason)
        if type(session) is ColdSession:
            self._drop(session)
        else:
            self._detached.discard(session)
            session.close(Close.SESSION_EXPIRED, "session expired", evicted=True)
        return True

    def evict_detached(self, count: int, reason: str) -> int:
        """Evict up to ``count`` detached sessions by policy; how many went."""
        done = 0
        while done < count and self._evict_one(self._pick(self._detached), reason):
            done += 1
        return done

    def evict_for_memory(self, need: int | None, *, oversized: int = 0) -> tuple[int, int]:
        """Evict detached sessions until their estimates add up to ``need`` bytes (None: all of them).

        Sessions estimated over ``oversized`` bytes (MaxMemoryPerSession; 0 =
        no limit) go first, then the eviction policy's order (LRU). Returns
        (sessions evicted, estimated bytes freed).
        """
        ordered = self._in_order(list(self._detached))
        if oversized:  # a stable sort: policy order within each group
            ordered.sort(key=lambda e: entry_cost(e) <= oversized)
        victims: list[Entry] = []
        freed = 0
        for entry in ordered:
            if need is not None and freed >= need:
                break
            victims.append(entry)
            freed += entry_cost(entry)
        self._keep(victims)
        reason = "memory_low" if need is not None else "memory_high"
        for entry in victims:
            big = bool(oversized) and entry_cost(entry) > oversized
            self._evict_one(entry, "memory_oversized" if big else reason)
        return len(victims), freed

    def close_for_memory(self, need: int, *, oversized: int = 0, at_most: int = 0) -> tuple[int, int]:
        """Close attached sessions until their estimates add up to ``need`` bytes (at least one, at most ``at_most``).

        Oversized ones first, then the longest idle; the client is told why
        (4013 "server under memory pressure"). Returns (closed, estimated bytes).
        """
        attached = [s for s in self if s.state is SessionState.ATTACHED]
        attached.sort(key=lambda s: (not (oversized and entry_cost(s) > oversized), s.last_active))
        closed = freed = 0
        now = time.monotonic()
        for session in attached:
            if closed and (freed >= need or closed == at_most):
                break
            cost = entry_cost(session)
            reason = "memory_oversized" if oversized and cost > oversized else "memory_critical"
            log.warning("closing attached session %s (%s): ~%d KiB, idle %.1fs", redact(session.id), reason,
                        cost // 1024, now - session.last_active)
            self.evictions[reason] += 1
            metrics.inc("vango_evictions_total", reason=reason)
            session.close(Close.MEMORY_PRESSURE, "server under memory pressure", evicted=True)
            closed += 1
            freed += cost
        return closed, freed

    def _keep(self, entries: list[Entry]) -> None:
        if self.keeper is None or not entries:
            return
        try:
            self.keeper(entries)
        except Exception:  # a failing store must not stop the eviction that protects the worker
            log.exception("could not persist %d sessions before evicting them", len(entries))

    def sweep_expired(self, now: float | None = None) -> int:
        """Expire detached sessions idle past ResumeWindow; how many went."""
        deadline = (now if now is not None else time.monotonic()) - self.settings.resume_window
        gone: list[str] = []
        while self._detached and self._detached[0].last_active < deadline:
            gone.append(self._detached[0].id)
            self._evict_one(self._detached[0], "expired")
        if gone and self.on_expire is not None:
            self.on_expire(gone)
        return len(gone)

    def close_all(self, code: int, reason: str, keep: Callable[[Session], bool] | None = None) -> None:
        """Close every session (worker stopping)."""
        for session in self:
            if keep is None or not keep(session):
                session.close(code, reason)
