"""Moving sessions between workers over the bus: resume from anywhere, hand-over on stop.

**Resume.** A reconnect for a session this worker does not hold live asks
every other worker (``session.adopt`` to ``ANY``). The owner seals the
session, gives it up (HANDED_OVER) and answers with the blob; the asker
remounts it with its element ids, so the client is caught up from the patch
history like on the owner itself (see :mod:`.sealer`). Each worker's loop
answers one request at a time, so of two racing adopters exactly one gets
the blob; the owner remembers where it went (a tombstone) and the other is
*forwarded* there. Nobody answering (the bus timed out) is not "nobody has
it": the resume is refused with 1013 and retried, and the store is read only
when every worker said no. A store shared by several machines
(:mod:`vango_mp.stores.redis`) then asks the machine whose lease names the
session -- its hub puts the same ``session.adopt`` to its workers -- and
reads the checkpoint only when that machine is gone or does not hold it.

**Hand-over.** A stopping worker (rolling reload, recycle, TTOU, full stop)
seals its sessions and deposits them with a peer -- its successor in the
same slot when there is one -- in pieces of at most PIECE_BYTES, one piece
in flight at a time (the answer is the flow control), so no bus frame comes
near the frame limit whatever the sessions weigh. A piece a peer fails to
take goes to another peer, else to the store; an attached session's socket
is closed with 1001 (the client reconnects and resumes wherever it lands).
While a piece is in flight, adopters are redirected to its destination.

Messages::

    session.adopt    {"id": sid, "creds": [browser, user_key, checked]}
                                                      -> {"blob": bytes} | {"refused": reason} | None
                                                         | {"moved": true, "to": slot, "hint": true}
                                                         | {"redirect": slot, "hint": true}
    session.deposit  [[sid, ip, idle_s, blob, binding], ...]   -> count taken

**Who may resume.** Every session is bound to the browser that opened it
and, once authenticated, to its user (:class:`vango_mp.auth.Binding`,
sealed with it). A resume presents its credentials; the owner vets them
*before* it gives the session up, so a refused resume neither moves nor
disturbs the live session (``vet`` is :func:`vango_mp.auth.vet` bound to the
app).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from .. import metrics
from ..observability import prom
from ..auth import Binding, Credentials, NotAuthorized
from ..bus import HUB, BusError, BusTimeout
from ..persist import BlobRejected
from ..protocol import Close
from ..security import redact
from ..session import Session
from ..settings import Settings
from ..stores.base import OwnerRefused, SessionStore, StoreBusy
from .owner import Refused, SessionOwner
from .states import State

log = logging.getLogger("vango_mp.handover")

MAX_TOMBSTONES = 10_000
PIECE_BYTES = 4 * 1024 * 1024  # sealed bytes per deposit message (the bus frame limit is 16 MiB)
PIECE_TIMEOUT = 30.0  # seconds a peer may take to remount one piece
PLACE_TRIES = 3  # peers a piece is offered to before it goes to the store
HANDOVER_PASSES = 3  # rounds on a stop: sessions that arrive meanwhile go in the next
FORWARD_HOPS = 3  # a resume follows "moved to" this many times
REDIRECT_TRIES, REDIRECT_WAIT = 20, 0.05  # a redirected adoption waits this long for a piece in flight


class Bus(Protocol):
    """What hand-over needs of the bus client."""

    pid: int

    async def request(self, peer: int, kind: str, body: Any = None, *, timeout: float | None = None) -> Any: ...

    async def request_any(self, kind: str, body: Any = None, *, timeout: float | None = None) -> Any: ...


class Tombstones:
    """Ids recently given up: to an adopter (``moved_to``) or in a piece to a slot (``deposited_with``)."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._ids: OrderedDict[str, tuple[float, int | None, int | None]] = OrderedDict()

    def add(self, session_id: str, *, deposited_with: int | None = None, moved_to: int | None = None) -> None:
        self._ids[session_id] = (time.monotonic(), deposited_with, moved_to)
        self._ids.move_to_end(session_id)
        while len(self._ids) > MAX_TOMBSTONES:
            self._ids.popitem(last=False)

    def discard(self, session_id: str) -> None:
        """The session is back here: an evicted or expired one must read as gone, not moved."""
        self._ids.pop(session_id, None)

    def answer(self, session_id: str) -> dict[str, Any] | None:
        """The hint for an adopter of a session we gave up, if we did recently."""
        entry = self._ids.get(session_id)
        if entry is None or time.monotonic() - entry[0] >= self.ttl:
            return None
        _, deposited_with, moved_to = entry
        if deposited_with is not None:
            return {"redirect": deposited_with, "hint": True}
        return {"moved": True, "to": moved_to, "hint": True}


Vet = Callable[[Binding, Credentials, bool], None]  # (binding, credentials, in memory here) -> NotAuthorized


def _vet_nothing(binding: Binding, creds: Credentials, in_memory: bool) -> None:
    if binding.browser != creds.browser:
        raise NotAuthorized("session belongs to another browser")


class Handover:
    """This worker's side of moving sessions: answers peers, fetches for resumes, deposits on stop."""

    def __init__(self, owner: SessionOwner, settings: Settings, *, slot: int, vet: Vet = _vet_nothing,
                 store: SessionStore | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.owner = owner
        self.vet = vet
        self.settings = settings
        self.slot = slot
        self.store = store
        self.clock = clock
        self.bus: Bus | None = None  # set once the worker joined the hub
        self.tombstones = Tombstones(max(settings.resume_window, 1.0))
        self.stopping = False  # this worker stops: resumes go elsewhere
        self.cluster_stopping = False  # the whole server stops: no peer will take our sessions

    def handlers(self) -> dict[str, Callable[[Any, int], Any]]:
        """Bus request/broadcast handlers, by kind."""
        return {
            "session.adopt": self.answer_adopt,
            "session.deposit": self.take_deposit,
            "cluster_stopping": lambda body, peer: setattr(self, "cluster_stopping", True),
            "session.make_room": self.answer_make_room,
        }

    # -- answering peers ---------------------------------------------------------------

    def answer_adopt(self, body: Any, peer: int) -> dict[str, Any] | None:
        """Another worker wants a session: the blob if it is ours, else a hint if it was."""
        session_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(session_id, str):
            raise ValueError("session.adopt wants {'id': str, 'creds': [...]}")
        session = self.owner.entry(session_id)
        if session is not None:
            try:
                self.vet(Binding.of(session), Credentials.from_wire(body.get("creds")), False)
            except (NotAuthorized, TypeError, ValueError) as refused:
                log.info("refusing session %s to worker %s: %s", redact(session_id), peer, refused)
                return {"refused": str(refused)}
            blob = self.owner.hand_over(session, Close.SESSION_TAKEN, "session resumed elsewhere")
            if blob is not None:
                self.tombstones.add(session_id, moved_to=peer)
                log.info("handing session %s to worker %s", redact(session_id), peer)
                return {"blob": blob}
        return self.tombstones.answer(session_id)

    def answer_make_room(self, body: Any, peer: int) -> bool | None:
        """A peer is at the per-IP limit for a browser: evict one of that browser's detached sessions here."""
        if not isinstance(body, dict):
            raise ValueError("session.make_room wants {'ip': str, 'browser': str}")
        return True if self.owner.evict_for_browser(str(body.get("ip")), str(body.get("browser"))) else None

    async def make_room(self, ip: str, browser: str) -> bool:
        """Ask the other workers to make room for one more session of ``browser`` from ``ip``."""
        if self.bus is None:
            return False
        try:
            answer = await self.bus.request_any("session.make_room", {"ip": ip, "browser": browser},
                                                timeout=self.settings.bus_timeout)
        except BusError:
            return False
        return answer is True

    def take_deposit(self, body: Any, peer: int) -> int:
        """A stopping peer leaves a piece of its sessions with us, sealed."""
        taken = 0
        for item in body if isinstance(body, list) else []:
            sid, ip, idle, blob, binding = item
            if self.owner.take_in_cold(str(sid), str(ip), float(idle), bytes(blob), Binding.from_wire(binding)):
                self.tombstones.discard(str(sid))
                taken += 1
        log.info("took %d sessions from stopping worker %s", taken, peer)
        return taken

    # -- resume -------------------------------------------------------------------------

    async def resume(self, session_id: str, ip: str, creds: Credentials) -> tuple[Session, bool, bool]:
        """The session to resume here for ``creds``: (session, held live here before, client DOM known).

        Raises :class:`Refused` with the close code the client acts on; a
        refusal leaves the session where and as it was.
        """
        started = time.perf_counter()  # vango_resume_seconds (the same worker's is timed by the socket)
        session = self.owner.get(session_id)
        if session is not None:
            self._check(Binding.of(session), creds, in_memory=True)
            session.csrf_token = creds.token
            return session, True, True
        found = self.owner.entry(session_id) or await self._fetch(session_id, creds)
        if isinstance(found, Session):
            self._check(Binding.of(found), creds, in_memory=found.alive)
            if found.state is State.COLD:
                thawed = self._remounted(lambda: self.owner.thaw(found, csrf_token=creds.token, user=creds.user))
                prom.record_resume("same_worker", time.perf_counter() - started)  # from its own cold blob
                return found, False, thawed
            found.csrf_token = creds.token
            return found, True, True  # resumed here by another socket meanwhile
        blob, stored = found, False
        if blob is None and self.store is not None:
            blob, stored = await self._claim(session_id, creds), True  # left there (or live on another machine)
        if blob is None:
            raise Refused(Close.SESSION_EXPIRED, "session expired", "unknown_session")
        payload = self._remounted(lambda: self.owner.sealer.open(session_id, blob))
        try:
            self._check(Binding.of_payload(payload), creds, in_memory=False)
        except Refused:
            if stored:
                self.store.save(session_id, str(payload.get("ip", ip)), blob)  # type: ignore[union-attr]
            raise
        # The vetted user before the remount: route guards render the page it left, not the login page.
        session, exact = self._remounted(lambda: self.owner.take_in(session_id, payload, ip, csrf_token=creds.token,
                                                                    user=creds.user))
        self.tombstones.discard(session_id)
        metrics.inc("vango_sessions_resumed_total", kind="adopted")
        prom.record_resume("restored" if stored else "adopted", time.perf_counter() - started)
        return session, False, exact

    async def _claim(self, session_id: str, creds: Credentials) -> bytes | None:
        """The session's blob from the store -- which, shared by machines, asks the one that holds it live."""
        assert self.store is not None
        try:
            return await self.store.claim(session_id, creds.wire())
        except OwnerRefused as refused:
            log.info("resume of %s refused by the machine that holds it: %s", redact(session_id), refused)
            raise Refused(Close.NOT_AUTHORIZED, "not authorized", "auth_resume") from None
        except StoreBusy as busy:
            log.warning("resume of %s from the store: %s", redact(session_id), busy)
            raise Refused(Close.SERVER_BUSY, "server busy", "store_busy") from None

    def _check(self, binding: Binding, creds: Credentials, *, in_memory: bool) -> None:
        try:
            self.vet(binding, creds, in_memory)
        except NotAuthorized as refused:
            log.info("resume refused: %s", refused)
            raise Refused(Close.NOT_AUTHORIZED, "not authorized", "auth_resume") from None

    @staticmethod
    def _remounted(remount: Callable[[], Any]) -> Any:
        try:
            return remount()
        except BlobRejected as rejected:
            metrics.inc("vango_blobs_rejected_total", reason=rejected.reason)
            raise Refused(Close.SESSION_EXPIRED, "session expired", "blob_" + rejected.reason.replace(" ", "_"))
        except LookupError:
            raise Refused(Close.SESSION_EXPIRED, "session expired", "no_route") from None

    async def _fetch(self, session_id: str, creds: Credentials) -> bytes | Session | None:
        """The blob from the worker that holds the session (or the session, if its piece came
        to us meanwhile); None when nobody does."""
        if self.bus is None:
            return None
        body = {"id": session_id, "creds": creds.wire()}
        try:
            answer = await self.bus.request_any("session.adopt", body, timeout=self.settings.bus_timeout)
            for _ in range(FORWARD_HOPS):
                if not isinstance(answer, dict) or "blob" in answer:
                    break
                if answer.get("redirect") == self.slot:  # in a piece on its way to us
                    return await self._arrival(session_id, in_flight=True)
                if answer.get("to") == self.slot:
                    return await self._arrival(session_id, in_flight=False)
                if isinstance(answer.get("redirect"), int):
                    answer = await self._follow(answer["redirect"], body)
                elif isinstance(answer.get("to"), int):  # it moved on: ask where it went
                    answer = await self.bus.request(answer["to"], "session.adopt", body,
                                                    timeout=self.settings.bus_timeout)
                else:
                    break
        except BusTimeout as err:
            # Not "nobody has it": the store (a checkpoint) must not be read now, or two could own it.
            log.warning("adoption of %s unanswered: %s", redact(session_id), err)
            raise Refused(Close.SERVER_BUSY, "server busy", "adoption_unanswered") from None
        except BusError as err:
            log.warning("adoption of %s failed: %s", redact(session_id), err)
            return None
        if not isinstance(answer, dict):
            return None
        if "refused" in answer:
            log.info("resume of %s refused by its owner: %s", redact(session_id), answer["refused"])
            raise Refused(Close.NOT_AUTHORIZED, "not authorized", "auth_resume")
        blob = answer.get("blob")
        if isinstance(blob, bytes):
            return blob
        # A hint with no session at its end: it is in flight between workers. Try again shortly.
        raise Refused(Close.SERVER_BUSY, "session moving, try again", "adoption_moving")

    async def _follow(self, slot: int, body: dict[str, Any]) -> Any:
        """Ask the slot a stopping worker deposits the session with; its piece may still be on the way."""
        assert self.bus is not None
        for _ in range(REDIRECT_TRIES):
            answer = await self.bus.request(slot, "session.adopt", body, timeout=self.settings.bus_timeout)
            if answer is not None:
                return answer
            await asyncio.sleep(REDIRECT_WAIT)
        return None

    async def _arrival(self, session_id: str, *, in_flight: bool) -> Session | None:
        """The session comes to this worker: in a piece on its way (``in_flight``: wait for it), or
        it went to our slot -- an older worker still stopping, whose piece may be on its way, or
        this one (gone since: evicted, expired)."""
        for _ in range(REDIRECT_TRIES):
            session = self.owner.entry(session_id)
            if session is not None:
                return session
            if not in_flight and not await self._predecessor_alive():
                return None
            await asyncio.sleep(REDIRECT_WAIT)
        return None

    async def _predecessor_alive(self) -> bool:
        """Whether an older worker of our slot is still connected (a rolling reload or recycle)."""
        assert self.bus is not None
        try:
            peers = await self.bus.request(HUB, "peers", timeout=2.0)
        except BusError:
            return False
        return any(isinstance(p, list) and p[:1] == [self.slot] and p[1] != self.bus.pid for p in peers or [])

    # -- stopping -----------------------------------------------------------------------

    async def stop(self, deadline: float) -> None:
        """Hand every session to a peer (or the store) before this worker exits; the rest are closed."""
        self.stopping = True
        # A resume that was fetching its session when we stopped lands here
        # after the first pass: it goes in the next.
        for _ in range(HANDOVER_PASSES):
            if not len(self.owner) or self.clock() >= deadline:
                break
            try:
                await asyncio.wait_for(self.deposit_all(), deadline - self.clock())
            except asyncio.TimeoutError:
                log.warning("graceful stop: session hand-over timed out")
        self.owner.close_all(Close.GOING_AWAY, "server stopping")

    async def deposit_all(self) -> int:
        """Give every session to a peer in pieces (else to the store); how many found a new owner."""
        if not len(self.owner):
            return 0
        target = await self._successor(exclude=set()) if self._peers_may_take() else None
        if not self._peers_may_take():
            # Re-checked after the round trip: the hub's order, sent before our
            # SIGTERM, has been read by now even if the signal was handled first.
            target = None
        pending = self.owner.entries()
        placed = total = 0
        carry: list[Any] | None = None
        while pending or carry:
            piece: list[list[Any]] = [carry] if carry else []
            size = len(carry[3]) if carry else 0
            carry = None
            while pending:
                item = self._seal_for_deposit(pending.pop(), target)
                if item is None:
                    continue
                if piece and size + len(item[3]) > PIECE_BYTES:
                    carry = item
                    break
                piece.append(item)
                size += len(item[3])
            if piece:
                total += len(piece)
                placed += await self._place(piece, target)
        if total:
            log.info("handed over %d of %d sessions (slot %s)", placed, total, target)
        return placed

    def _peers_may_take(self) -> bool:
        return self.bus is not None and not self.cluster_stopping

    def _seal_for_deposit(self, session: Session, target: int | None) -> list[Any] | None:
        if self.owner.entry(session.id) is not session:
            return None  # it moved on while we were sending an earlier piece
        idle, ip, binding = self.clock() - session.last_active, session.ip, Binding.of(session)
        blob = self.owner.hand_over(session, Close.GOING_AWAY, "server stopping")
        if blob is None:
            return None
        if target is not None:
            self.tombstones.add(session.id, deposited_with=target)
        return [session.id, ip, idle, blob, binding.wire()]

    async def _place(self, piece: list[list[Any]], target: int | None) -> int:
        """Deposit one piece with ``target`` (another peer if it fails), else the store; how many were placed."""
        tried: set[int] = set()
        while target is not None and len(tried) < PLACE_TRIES:
            tried.add(target)
            try:
                assert self.bus is not None
                taken = await self.bus.request(target, "session.deposit", piece, timeout=PIECE_TIMEOUT)
                metrics.inc("vango_handover_bytes_total", sum(len(i[3]) for i in piece))
                if taken != len(piece):  # it held some already (a stale cold copy of its own): those it kept
                    log.warning("slot %s took %s of %d sessions; it holds the others already", target, taken, len(piece))
                return len(piece)
            except BusError as err:
                log.error("deposit of %d sessions with slot %s failed: %s", len(piece), target, err)
            target = await self._successor(exclude=tried)
            for item in piece:
                if target is not None:
                    self.tombstones.add(item[0], deposited_with=target)
                else:
                    self.tombstones.discard(item[0])
        if self.store is not None:
            self.store.save_many([(sid, ip, blob) for sid, ip, _, blob, _ in piece])
            for item in piece:
                self.tombstones.discard(item[0])  # adopters find it in the store
            log.info("stored %d sessions in %s", len(piece), self.store.where)
            return len(piece)
        log.error("%d sessions lost: no peer took them and there is no state_dir", len(piece))
        metrics.inc("vango_sessions_lost_total", len(piece))
        return 0

    async def _successor(self, *, exclude: set[int]) -> int | None:
        """The slot to leave sessions with: our own if a newer worker serves it, else the emptiest peer."""
        assert self.bus is not None
        try:
            peers = await self.bus.request(HUB, "stats", timeout=2.0)
        except BusError:
            return None
        me = self.bus.pid
        others = [p for p in peers or [] if isinstance(p, dict) and p.get("pid") != me and p.get("ready", True)
                  and p.get("slot") not in exclude]
        if any(p.get("slot") == self.slot for p in others):
            return self.slot
        if not others:
            return None

        def load(p: dict[str, Any]) -> int:
            return sum((p.get("stats") or {}).get(k, 0) for k in ("attached", "detached"))

        return int(min(others, key=load)["slot"])
