"""SessionOwner: every session one worker owns, and the one place their state changes.

Sessions are registered by id; detached and cold ones also sit in an index
ordered by last activity (sortedcontainers), so LRU eviction and the
ResumeWindow expiry sweep take from its front in O(log n). Every change of
state goes through :meth:`SessionOwner.transition`, which checks it against
:data:`vango_mp.sessions.states.TRANSITIONS` (an illegal one raises in debug
mode and is logged and refused otherwise) and keeps the indexes in step.
Moving sessions to and from other workers is :mod:`.handover`'s job; this
class gives them up and takes them in.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol

from sortedcontainers import SortedKeyList

from .. import metrics
from ..auth import Binding
from ..census import SESSIONS, Census
from ..cost import entry_cost
from ..protocol import Close
from ..security import new_session_id, redact
from ..session import Session
from ..settings import Settings
from .sealer import Sealer
from .states import IllegalTransition, State, allowed

log = logging.getLogger("vango_mp.sessions")

MAX_SESSIONS, MAX_PER_IP = "max sessions reached", "too many sessions from this IP address"  # census reasons


class Refused(Exception):
    """A session that is not admitted (or not resumed), with its close code and metric reason."""

    def __init__(self, code: Close, reason: str, metric: str | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.metric = metric or reason.replace(" ", "_")


class Keeper(Protocol):
    """The session store's writer (:class:`.checkpoint.Checkpoints`), when there is a store."""

    def save(self, sessions: list[Session]) -> int: ...

    def on_detach(self, session: Session) -> None: ...

    def on_open(self, session: Session) -> None: ...

    def forget(self, session_ids: list[str]) -> None: ...


class SessionOwner:
    """Owns every session of one worker: lookup, admission, transitions, eviction, expiry, cold tier."""

    def __init__(
        self, settings: Settings, sealer: Sealer, *, keeper: Keeper | None = None,
        before_admit: Callable[[], None] = lambda: None, census: Census | None = None,
    ) -> None:
        self.settings = settings
        self.sealer = sealer
        self.keeper = keeper
        self.census = census if census is not None else Census(settings)  # server-wide session counts
        # Asks the other workers to evict one of a browser's detached sessions (Handover.make_room).
        self.make_room_elsewhere: Callable[[str, str], Awaitable[bool]] = _nowhere
        self.before_admit = before_admit  # re-reads memory before anything is mounted here
        self._sessions: dict[str, Session] = {}
        self._detached: SortedKeyList = SortedKeyList(key=lambda s: (s.last_active, s.id))
        self.refusing: str | None = None  # set under memory pressure: "server busy"
        self.evictions: Counter[str] = Counter()

    # -- queries -------------------------------------------------------------

    def get(self, session_id: str) -> Session | None:
        """The live (attached or detached) session with this id, if this worker holds one."""
        session = self._sessions.get(session_id)
        return session if session is not None and session.alive else None

    def entry(self, session_id: str) -> Session | None:
        """The session with this id in any state held here (cold too)."""
        return self._sessions.get(session_id)

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[Session]:
        """Live sessions (a copy: safe to transition while iterating)."""
        return iter([s for s in self._sessions.values() if s.alive])

    def entries(self) -> list[Session]:
        """Every session held, live and cold."""
        return list(self._sessions.values())

    @property
    def cold_count(self) -> int:
        return sum(1 for s in self._detached if s.state is State.COLD)

    @property
    def detached_count(self) -> int:
        """Detached and cold: what eviction may take."""
        return len(self._detached)

    @property
    def attached_count(self) -> int:
        return len(self._sessions) - len(self._detached)

    def detached_lru(self) -> list[Session]:
        """Detached and cold sessions, least recently active first."""
        return list(self._detached)

    # -- the state machine -----------------------------------------------------

    def transition(self, session: Session, to: State, reason: str = "") -> bool:
        """Move ``session`` to ``to`` keeping the indexes in step; False (logged) if illegal."""
        src = session.state
        if not allowed(src, to) or self._sessions.get(session.id) is not session:
            what = "not owned here" if self._sessions.get(session.id) is not session else "illegal"
            message = f"session {redact(session.id)}: {what} transition {src.name} -> {to.name} ({reason})"
            metrics.inc("vango_illegal_transitions_total", to=to.value)
            if self.settings.debug:
                raise IllegalTransition(message)
            log.error(message)
            return False
        if src is State.DETACHED or src is State.COLD:
            self._detached.discard(session)
        session.state = to
        if to is State.DETACHED or to is State.COLD:
            self._detached.add(session)
        elif to is State.HANDED_OVER or to is State.CLOSED:
            session.end_reason = reason
            self._unregister(session)
        return True

    def _register(self, session: Session, *, admitted: bool = False) -> None:
        """Hold ``session`` here; counted server-wide unless :meth:`admit` counted it already."""
        self._sessions[session.id] = session
        if not admitted:
            self.census.change(SESSIONS, session.ip, 1)
        session.owner = self
        if session.state is State.DETACHED or session.state is State.COLD:
            self._detached.add(session)

    def _unregister(self, session: Session) -> None:
        del self._sessions[session.id]
        self.census.change(SESSIONS, session.ip, -1)

    # -- birth -------------------------------------------------------------------

    async def admit(self, ip: str, browser: str) -> None:
        """Count one more session from ``ip`` within the server-wide limits (Refused otherwise).

        At ``max_sessions`` one detached session here makes room (eviction
        policy). At ``max_sessions_per_ip`` (with ``evict_on_ip_limit``) only a
        detached session of the same *browser* does: clients behind one NAT
        share an IP, and one must not evict another's session. Follow with
        :meth:`open`, or :meth:`withdraw` if the session is not opened after all.
        """
        self.before_admit()
        if self.refusing:
            raise Refused(Close.SERVER_BUSY, self.refusing)
        reason = await self.census.enter(SESSIONS, ip)
        if reason == MAX_SESSIONS and self._evict(self._pick(self._detached), "max_sessions"):
            reason = await self.census.enter(SESSIONS, ip)  # after our -1 on the same bus connection
        if reason == MAX_PER_IP and self.settings.evict_on_ip_limit:
            if self.evict_for_browser(ip, browser) or await self.make_room_elsewhere(ip, browser):
                reason = await self.census.enter(SESSIONS, ip)
        if reason == MAX_PER_IP:
            raise Refused(Close.RATE_LIMITED, reason, "ip_limit")
        if reason is not None:
            raise Refused(Close.SERVER_BUSY, reason)

    def evict_for_browser(self, ip: str, browser: str) -> bool:
        """Evict the least recently active detached session of ``browser`` from ``ip``, if one is here."""
        mine = [x for x in self._detached if x.ip == ip and x.browser == browser]  # LRU order
        return bool(mine) and self._evict(mine[0], "ip_limit")

    def withdraw(self, ip: str) -> None:
        """An admitted session was not opened after all (no route, refused by a hook)."""
        self.census.change(SESSIONS, ip, -1)

    def open(self, path: str, ip: str, *, csrf_token: str = "",
             prepare: Callable[[Session], None] | None = None) -> Session:
        """Mount and start a new session :meth:`admit` counted (LookupError: no route); it starts DETACHED.

        ``prepare(session)`` runs before the first render (auth: the page
        mounts with its user); what it raises propagates, nothing registered.
        """
        session = Session(new_session_id(), None, settings=self.settings, ip=ip, path=path)
        session.csrf_token = csrf_token  # before the first render: its forms carry it
        if prepare is not None:
            prepare(session)
        session.root = self.sealer.mount(path, session, None)
        self._register(session, admitted=True)
        if self.keeper is not None:
            self.keeper.on_open(session)
        session.start()
        metrics.inc("vango_sessions_created_total")
        return session

    def take_in(self, session_id: str, payload: dict[str, Any], ip: str, *,
                csrf_token: str = "", user: Any = None) -> tuple[Session, bool]:
        """Remount a session moved here from its opened blob (LookupError: no route); (session, DOM known).

        ``user``: the one the resuming request authenticated (vetted against the
        blob's binding), known before the remount so route guards see it.
        """
        self.before_admit()  # a remount grows this worker like a new session
        old = self._sessions.get(session_id)
        if old is not None:  # a stale cold copy (ours, from before it moved): the blob is newer
            self.transition(old, State.CLOSED, "superseded")
        session = Session(session_id, None, settings=self.settings, ip=ip, path=str(payload["path"]))
        session.csrf_token = csrf_token
        session.user = user
        exact = self.sealer.remount(session, payload)
        session.saved_seq = -1  # any stored copy was taken, or is older: checkpoint it afresh
        self._register(session)
        session.start()
        metrics.inc("vango_sessions_created_total")
        return session, exact

    def take_in_cold(self, session_id: str, ip: str, idle: float, blob: bytes, binding: Binding) -> bool:
        """Keep a sealed session a stopping peer handed over; False if one is already here."""
        if session_id in self._sessions:
            return False
        session = Session(session_id, None, settings=self.settings, ip=ip, path="")
        session.blob = blob
        session.browser, session.user_key, session.authenticated = binding.browser, binding.user_key, \
            binding.authenticated
        session.state = State.COLD
        session.created = session.last_active = time.monotonic() - idle
        self._register(session)
        self._enforce_max_detached()
        return True

    # -- attach / detach -----------------------------------------------------------

    def attach(self, session: Session, conn: object) -> bool:
        """Give a session a connection; a socket it had already is told it lost (4009)."""
        old = session.conn if session.state is State.ATTACHED else None
        if not self.transition(session, State.ATTACHED, "attach"):
            return False
        if old is not None and old is not conn:
            session.unbind()
            old.close(Close.SESSION_TAKEN, "session resumed elsewhere")  # type: ignore[union-attr]
        session.bind(conn)  # type: ignore[arg-type]
        return True

    def detach(self, session: Session) -> None:
        """A socket closed: keep the session resumable for ResumeWindow."""
        if session.state is not State.ATTACHED:
            return  # already moved on (handed over, closed): the socket's close came after
        session.unbind()
        if self.settings.resume_window <= 0:
            self.end(session, Close.SESSION_EXPIRED, "resume disabled", "resume_disabled")
            return
        self.transition(session, State.DETACHED, "socket closed")
        if self.keeper is not None:
            self.keeper.on_detach(session)
        self._enforce_max_detached()

    # -- cold tier -----------------------------------------------------------------

    def chill(self, now: float | None = None) -> int:
        """Seal detached sessions idle past ``cold_after`` into the cold tier; how many."""
        if self.settings.cold_after <= 0:
            return 0
        deadline = (now if now is not None else time.monotonic()) - self.settings.cold_after
        hot = [s for s in self._detached if s.state is State.DETACHED and s.last_active < deadline]
        return sum(1 for s in hot if self.freeze(s))

    def freeze(self, session: Session) -> bool:
        """DETACHED -> COLD: keep only the sealed blob; the live objects are released."""
        try:
            blob = self.sealer.seal(session)
        except Exception:  # unsealable (debug, too large): it stays hot
            log.exception("session %s could not go cold", redact(session.id))
            return False
        if not self.transition(session, State.COLD, "cold"):
            return False
        session.release()
        session.root = None  # type: ignore[assignment]
        session.blob = blob
        return True

    def thaw(self, session: Session, *, csrf_token: str = "", user: Any = None) -> bool:
        """COLD -> DETACHED: remount from the blob (BlobRejected / LookupError: it is closed); DOM still matches?

        ``user`` as for :meth:`take_in`.
        """
        assert session.blob is not None
        self.before_admit()
        session.csrf_token = csrf_token
        session.user = user
        try:
            exact = self.sealer.remount(session, self.sealer.open(session.id, session.blob))
        except Exception:
            self.transition(session, State.CLOSED, "unusable blob")
            raise
        self.transition(session, State.DETACHED, "thaw")
        session.saved_seq = -1
        session.start()
        return exact

    # -- the end -------------------------------------------------------------------

    def hand_over(self, session: Session, code: int, reason: str) -> bytes | None:
        """Seal and give up a session another worker (or the store) will own; its socket gets ``code``.

        None when it cannot move (too large, unserializable): then it is closed
        here, its client told why (4001).
        """
        try:
            blob = self.sealer.seal(session)
        except Exception as err:
            log.error("session %s cannot be handed over: %s", redact(session.id), err)
            self.end(session, Close.SESSION_EXPIRED, "session could not be moved", "unsealable")
            return None
        if self.transition(session, State.HANDED_OVER, reason):
            session.release(code, reason)
            metrics.inc("vango_sessions_handed_over_total")
        return blob

    def end(self, session: Session, code: int, reason: str, metric: str) -> None:
        """Close a session for good here (its socket, if any, gets ``code``/``reason``)."""
        if self.transition(session, State.CLOSED, metric):
            session.release(code, reason)
            metrics.inc("vango_sessions_closed_total", reason=metric)

    def close_all(self, code: int, reason: str) -> None:
        """Close every session (worker stopping, nothing could take them)."""
        for session in self.entries():
            self.end(session, code, reason, "stopping")

    # -- eviction --------------------------------------------------------------------

    def _pick(self, candidates: SortedKeyList | list[Session]) -> Session | None:
        if not candidates:
            return None
        policy = self.settings.eviction_policy
        if policy == "oldest":
            return min(candidates, key=lambda s: s.created)
        if policy == "random":
            return random.choice(list(candidates))
        return candidates[0]

    def _in_order(self, entries: list[Session]) -> list[Session]:
        """Detached entries (given in LRU order) in the eviction policy's order."""
        policy = self.settings.eviction_policy
        if policy == "oldest":
            return sorted(entries, key=lambda s: s.created)
        if policy == "random":
            random.shuffle(entries)
        return entries

    def _evict(self, session: Session | None, reason: str) -> bool:
        """Close one detached or cold session (counted under ``reason``)."""
        if session is None:
            return False
        # Memory evictions come by the hundred; vango_mp.pressure logs one line per round.
        (log.debug if reason.startswith("memory") else log.info)(
            "evicting detached session %s (%s)", redact(session.id), reason)
        self.evictions[reason] += 1
        metrics.inc("vango_evictions_total", reason=reason)
        self.end(session, Close.SESSION_EXPIRED, "session expired", reason)
        return True

    def _enforce_max_detached(self) -> None:
        limit = self.settings.max_detached
        while limit and len(self._detached) > limit:
            victim = self._pick(self._detached)
            self._keep([victim] if victim is not None else [])
            self._evict(victim, "max_detached")

    def evict_for_memory(self, need: int | None, *, oversized: int = 0) -> tuple[int, int]:
        """Evict detached sessions until their estimates add up to ``need`` bytes (None: all of them).

        Sessions estimated over ``oversized`` bytes (MaxMemoryPerSession; 0 =
        no limit) go first, then the eviction policy's order (LRU). Returns
        (sessions evicted, estimated bytes freed).
        """
        ordered = self._in_order(list(self._detached))
        if oversized:  # a stable sort: policy order within each group
            ordered.sort(key=lambda e: entry_cost(e) <= oversized)
        victims: list[Session] = []
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
            self._evict(entry, "memory_oversized" if big else reason)
        return len(victims), freed

    def close_for_memory(self, need: int, *, oversized: int = 0, at_most: int = 0) -> tuple[int, int]:
        """Close attached sessions until their estimates add up to ``need`` bytes (at least one, at most ``at_most``).

        Oversized ones first, then those with the most output their client
        has not read (a slow or hostile reader), then the longest idle; the
        client is told why (4013 "server under memory pressure"). Returns
        (closed, estimated bytes).
        """
        attached = [s for s in self._sessions.values() if s.state is State.ATTACHED]
        attached.sort(key=lambda s: (not (oversized and entry_cost(s) > oversized), -_unread(s), s.last_active))
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
            self.end(session, Close.MEMORY_PRESSURE, "server under memory pressure", reason)
            closed += 1
            freed += cost
        return closed, freed

    def _keep(self, entries: list[Session]) -> None:
        """Persist sessions about to be evicted (the reference's rule), when there is a store."""
        if self.keeper is None or not entries:
            return
        try:
            self.keeper.save(entries)
        except Exception:  # a failing store must not stop the eviction that protects the worker
            log.exception("could not persist %d sessions before evicting them", len(entries))

    def sweep_expired(self, now: float | None = None) -> int:
        """Expire detached sessions idle past ResumeWindow; how many went."""
        deadline = (now if now is not None else time.monotonic()) - self.settings.resume_window
        gone: list[str] = []
        while self._detached and self._detached[0].last_active < deadline:
            gone.append(self._detached[0].id)
            self._evict(self._detached[0], "expired")
        if gone and self.keeper is not None:
            self.keeper.forget(gone)
        return len(gone)


def _unread(session: Session) -> int:
    return session.conn.pending_output() if session.conn is not None else 0


async def _nowhere(ip: str, browser: str) -> bool:
    return False
