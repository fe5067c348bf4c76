"""Moving sessions between workers over the bus: adoption and hand-over.

A reconnect that lands on a worker which does not hold the session asks every
other worker (``session.adopt`` to ``ANY``). The owner seals the session,
forgets it and answers with the blob; the asker unseals, remounts and sends
the client a FULL so its DOM ids match the new tree. Each worker's loop runs
one request at a time, so of two racing adopters exactly one gets the blob;
the other gets ``{"moved": true}`` from the owner's tombstone and closes its
socket with 4009. A stopping worker deposits its sessions, sealed, with a
peer (``session.deposit``) — its successor in the same slot during a rolling
reload — so clients reconnecting anywhere still find them; while a deposit is
in flight the stopping worker answers adopters with ``{"redirect": slot}``,
and since the hub forwards one peer's messages in order, the deposit reaches
that slot before the adopter's follow-up request does.

Messages::

    session.adopt    {"id": sid}                      -> {"blob": bytes} | None
                                                         | {"moved": true, "to": slot, "hint": true}
                                                         | {"redirect": slot, "hint": true}
    session.deposit  [[sid, ip, idle_s, blob], ...]   -> count taken
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from . import metrics
from .bus import HUB, BusError, BusTimeout
from .protocol import Close
from .security import redact
from .sessions import ColdSession

if TYPE_CHECKING:
    from .worker import WorkerContext

log = logging.getLogger("vango_mp.adoption")

MAX_TOMBSTONES = 10_000
DEPOSIT_CHUNK = 200
REDIRECT_TRIES, REDIRECT_WAIT = 20, 0.05  # a redirected adoption waits this long for a deposit in flight


class Moved(Exception):
    """The session was already handed to another worker (lost adoption race)."""


class Unanswered(Exception):
    """The bus did not answer in time: a live worker may still own the session."""


class Tombstones:
    """Ids recently handed over: adopted (a second adopter lost the race) or deposited with a slot."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._ids: OrderedDict[str, tuple[float, int | None, int | None]] = OrderedDict()

    def add(self, session_id: str, deposited_with: int | None = None, moved_to: int | None = None) -> None:
        self._ids[session_id] = (time.monotonic(), deposited_with, moved_to)
        self._ids.move_to_end(session_id)
        while len(self._ids) > MAX_TOMBSTONES:
            self._ids.popitem(last=False)

    def discard(self, session_id: str) -> None:
        """The session is back here (adopted again): an evicted or expired one must read as gone, not moved."""
        self._ids.pop(session_id, None)

    def get(self, session_id: str) -> tuple[bool, int | None]:
        """(handed over recently?, the slot it was deposited with, if any)."""
        entry = self._ids.get(session_id)
        if entry is None or time.monotonic() - entry[0] >= self.ttl:
            return False, None
        return True, entry[1]

    def moved_to(self, session_id: str) -> int | None:
        """The slot that adopted the session, if it was adopted recently."""
        entry = self._ids.get(session_id)
        return entry[2] if entry is not None and time.monotonic() - entry[0] < self.ttl else None

    def __contains__(self, session_id: str) -> bool:
        return self.get(session_id)[0]


def give_up(ctx: WorkerContext, session_id: str, deposit_with: int | None = None,
            moved_to: int | None = None) -> bytes | None:
    """Seal and forget a session this worker holds, for another worker to adopt (or a deposit)."""
    entry = ctx.manager.take(session_id)
    if entry is None:
        return None
    if isinstance(entry, ColdSession):
        blob = entry.blob
    else:
        blob = ctx.seal(entry)
        entry.close(Close.SESSION_TAKEN, "session resumed elsewhere", quiet=True)
    ctx.tombstones.add(session_id, deposit_with, moved_to)
    metrics.inc("vango_sessions_handed_over_total")
    return blob


def handle_adopt(ctx: WorkerContext, body: Any, peer: int) -> dict[str, Any] | None:
    """Bus handler: another worker wants a session; answer if it is ours."""
    session_id = body.get("id") if isinstance(body, dict) else None
    if not isinstance(session_id, str):
        raise ValueError("session.adopt wants {'id': str}")
    blob = give_up(ctx, session_id, moved_to=peer)
    if blob is not None:
        log.info("handing session %s to worker %s", redact(session_id), peer)
        return {"blob": blob}
    gone, slot = ctx.tombstones.get(session_id)
    if not gone:
        return None
    # Hints: over ANY, an owner's blob wins over them (a tombstone can be stale).
    if slot is None:
        return {"moved": True, "to": ctx.tombstones.moved_to(session_id), "hint": True}
    return {"redirect": slot, "hint": True}


def handle_deposit(ctx: WorkerContext, body: Any, peer: int) -> int:
    """Bus handler: a stopping peer leaves its sessions with us, sealed."""
    now = time.monotonic()
    taken = 0
    for item in body if isinstance(body, list) else []:
        sid, ip, idle, blob = item
        created = now - float(idle)
        ctx.manager.add_cold(ColdSession(str(sid), str(ip), created, now - float(idle), bytes(blob)))
        taken += 1
    log.info("took %d sessions from stopping worker %s", taken, peer)
    return taken


async def adopt_remote(ctx: WorkerContext, session_id: str) -> bytes | None:
    """Ask the other workers for a session's blob; None when nobody holds it."""
    if ctx.bus is None:
        return None
    body = {"id": session_id}
    try:
        answer = await ctx.bus.request_any("session.adopt", body, timeout=ctx.settings.bus_timeout)
        if isinstance(answer, dict) and isinstance(answer.get("redirect"), int):
            answer = await _follow(ctx, answer["redirect"], body)
    except BusTimeout as err:
        # Not "nobody has it": the store (a checkpoint) must not be read now, or two could own it.
        log.warning("adoption of %s unanswered: %s", redact(session_id), err)
        raise Unanswered(session_id) from None
    except BusError as err:
        log.warning("adoption of %s failed: %s", redact(session_id), err)
        return None
    if not isinstance(answer, dict):
        return None
    if answer.get("moved"):
        if answer.get("to") == ctx.slot:
            return await _arrival(ctx, session_id)
        raise Moved(session_id)
    blob = answer.get("blob")
    return blob if isinstance(blob, bytes) else None


async def _follow(ctx: WorkerContext, slot: int, body: dict[str, Any]) -> Any:
    """Ask the slot a stopping worker deposits the session with.

    The deposit goes in chunks, each sent once the last is taken, so the
    session may not be there yet: a miss is retried for up to a second.
    """
    assert ctx.bus is not None
    for _ in range(REDIRECT_TRIES):
        answer = await ctx.bus.request(slot, "session.adopt", body, timeout=ctx.settings.bus_timeout)
        if answer is not None:
            return answer
        await asyncio.sleep(REDIRECT_WAIT)
    return None


async def _arrival(ctx: WorkerContext, session_id: str) -> bytes | None:
    """The session went to a worker in our slot: this one (and it is gone since: evicted,
    expired), or a predecessor still stopping, whose deposit may be on its way: wait for that.
    """
    for _ in range(REDIRECT_TRIES):
        entry = ctx.manager.take(session_id)
        if isinstance(entry, ColdSession):
            return entry.blob
        if entry is not None:
            raise Moved(session_id)  # resumed here meanwhile by another socket
        if not await _predecessor_alive(ctx):
            return None
        await asyncio.sleep(REDIRECT_WAIT)
    return None


async def _predecessor_alive(ctx: WorkerContext) -> bool:
    """Whether an older worker of our slot is still connected (a rolling reload or recycle)."""
    assert ctx.bus is not None
    try:
        peers = await ctx.bus.request(HUB, "peers", timeout=2.0)
    except BusError:
        return False
    return any(isinstance(p, list) and p[:1] == [ctx.slot] and p[1] != ctx.bus.pid for p in peers or [])


async def deposit_all(ctx: WorkerContext) -> int:
    """Seal every session we hold and leave them with a peer, else in the store (we are stopping)."""
    if not len(ctx.manager):
        return 0
    target = await _successor(ctx) if ctx.bus is not None and not ctx.cluster_stopping else None
    if ctx.cluster_stopping:
        # Re-checked after the round trip: the hub's order, sent before our
        # SIGTERM, has been read by now even if the signal was handled first.
        target = None
    items: list[list[Any]] = []
    now = time.monotonic()
    for entry in ctx.manager.entries():
        idle, ip = now - entry.last_active, entry.ip
        blob = give_up(ctx, entry.id, deposit_with=target)
        if blob is not None:
            items.append([entry.id, ip, idle, blob])
    left = items
    if target is not None:
        left = await _deposit(ctx, target, items)
    if left and ctx.store is not None:
        ctx.store.save_many([(sid, ip, blob) for sid, ip, _, blob in left])
        log.info("stored %d sessions in %s", len(left), ctx.store.path)
    elif left:
        log.warning("%d sessions had nowhere to go (no peer, no state_dir): lost", len(left))
    return len(items) - len(left) if ctx.store is None else len(items)


async def _deposit(ctx: WorkerContext, target: int, items: list[list[Any]]) -> list[list[Any]]:
    """Hand ``items`` to ``target`` in chunks; return those it did not take."""
    assert ctx.bus is not None
    left: list[list[Any]] = []
    for start in range(0, len(items), DEPOSIT_CHUNK):
        chunk = items[start : start + DEPOSIT_CHUNK]
        try:
            await ctx.bus.request(target, "session.deposit", chunk)
        except BusError as err:
            log.error("deposit to slot %s failed: %s", target, err)
            left += chunk
    log.info("deposited %d of %d sessions with slot %s", len(items) - len(left), len(items), target)
    return left


async def _successor(ctx: WorkerContext) -> int | None:
    """The slot to leave sessions with: our own slot if a newer worker serves it, else the emptiest peer."""
    assert ctx.bus is not None
    try:
        peers = await ctx.bus.request(HUB, "stats", timeout=2.0)
    except BusError:
        return None
    me = ctx.bus.pid
    others = [p for p in peers or [] if isinstance(p, dict) and p.get("pid") != me and p.get("ready", True)]
    same = [p for p in others if p.get("slot") == ctx.slot]
    if same:
        return ctx.slot
    if not others:
        return None
    load = lambda p: sum((p.get("stats") or {}).get(k, 0) for k in ("attached", "detached"))  # noqa: E731
    return int(min(others, key=load)["slot"])
