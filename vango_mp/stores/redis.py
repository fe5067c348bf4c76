"""The session store for several machines: sealed blobs and session leases in Redis.

Selected by ``store_url = "redis://HOST:PORT/DB"`` (``VANGO_STORE_URL``);
every machine of a cluster uses the same URL and the same
``persistence_secret``. Keys (see :mod:`.wire`) expire with the resume
window, and blobs are the same sealed form as on one machine, so a machine
never trusts what it did not seal with the shared secret.

**One owner.** Every session has a *lease* in Redis naming the machine that
owns it, with a fencing counter that grows on every change of owner. A
machine writes a session's blob only while the lease names it (the SAVE
script checks and writes atomically): a machine that lost a session -- it
was resumed elsewhere while this one could not reach Redis -- has its write
refused and closes its stale copy (``on_stale``). A resume here *claims*
the session (CLAIM, atomic): when the lease names another live machine the
claim does not take the blob but asks that machine, through Redis, to hand
the live session over (its hub routes the request to its workers exactly
like a resume between workers); when the owner is gone (no heartbeat, or
nobody listens on its channel) the claim takes the last checkpoint and moves
the lease here.

**Off the hot path.** Writes (checkpoints, leases of new sessions, deletes)
are queued, coalesced per session, and written in one pipeline by a
background task; nothing here runs per event, so a click never touches
Redis. While Redis is down the queue keeps the newest write per session
(bounded) and retries with backoff; live sessions keep working.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .. import metrics
from .base import OwnerRefused, SessionStore, StoreBusy
from .wire import Rejected, Signer, fence_key, lease_key, machine_key, reply_key, request_channel, session_key

log = logging.getLogger("vango_mp.stores.redis")

MAX_PENDING = 100_000  # queued writes kept while Redis is down (the oldest go first)
BACKOFF_MIN, BACKOFF_MAX = 0.05, 5.0
PING_INTERVAL = 1.0  # how often the connection is checked (health says redis: up/down)
CLAIM_TRIES = 3
GONE_WAITS, GONE_WAIT = 10, 0.1  # a resume waits this long for the checkpoint of an owner that just went

# KEYS: blob, lease, fence. ARGV: machine, blob, ttl ms. Written only while the lease names us (or nobody).
_SAVE = """
local owner = redis.call('GET', KEYS[2])
if owner and string.match(owner, '^%d+|(.*)$') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
if owner then
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
else
  redis.call('SET', KEYS[2], redis.call('INCR', KEYS[3]) .. '|' .. ARGV[1], 'PX', ARGV[3])
end
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return 1
"""
# KEYS: lease, fence. ARGV: machine, ttl ms. A session that lives here: a new one, or one whose lease is
# refreshed (or written again: Redis lost it) at a checkpoint tick. 0 when another machine holds the lease.
_OPEN = """
local owner = redis.call('GET', KEYS[1])
if not owner then
  redis.call('SET', KEYS[1], redis.call('INCR', KEYS[2]) .. '|' .. ARGV[1], 'PX', ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return 1
end
if string.match(owner, '^%d+|(.*)$') == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
"""
# KEYS: blob, lease, fence. ARGV: machine, ttl ms, machine key prefix, machine known to be gone ('' if none).
# Another live machine's lease: {'owned', machine}. Else the blob, if any, is taken (deleted) and the lease
# moves here; without a blob nothing changes (a stopping owner's last write may be on its way).
_CLAIM = """
local owner = redis.call('GET', KEYS[2])
if owner then
  local m = string.match(owner, '^%d+|(.*)$')
  if m and m ~= ARGV[1] and m ~= ARGV[4] and redis.call('EXISTS', ARGV[3] .. m) == 1 then return {'owned', m} end
end
local blob = redis.call('GET', KEYS[1])
if not blob then return {'none'} end
redis.call('DEL', KEYS[1])
local fence = redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], ARGV[2])
redis.call('SET', KEYS[2], fence .. '|' .. ARGV[1], 'PX', ARGV[2])
return {'blob', blob, fence}
"""


def _machine_of(lease: bytes | None) -> str | None:
    if not lease:
        return None
    _, _, machine = lease.decode("utf-8", "replace").partition("|")
    return machine


class RedisStore(SessionStore):
    """Sealed blobs and leases in Redis, written behind the caller; see the module docstring."""

    def __init__(self, url: str, *, ttl: float, secret: bytes, timeout: float = 5.0, machine: str = "") -> None:
        self.url = url
        self.where = _redact_url(url)
        self.ttl_ms = max(1000, int(ttl * 1000))
        self.timeout = timeout
        self.machine = machine or f"lone-{secrets.token_hex(6)}"  # the hub tells a supervised worker its machine
        self.signer = Signer(secret)
        self.client = aioredis.Redis.from_url(url, socket_timeout=timeout + 2, socket_connect_timeout=timeout)
        self._save, self._open = self.client.register_script(_SAVE), self.client.register_script(_OPEN)
        self._claim = self.client.register_script(_CLAIM)
        self._pending: OrderedDict[str, tuple[str, bytes]] = OrderedDict()  # sid -> (op, blob), oldest first
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._up: bool | None = None
        self._inflight: set[str] = set()  # sessions whose writes taken from the queue, not yet answered by Redis
        self.on_stale: Callable[[list[str]], None] = lambda ids: None  # sessions whose lease is another's now

    # -- the background tasks --------------------------------------------------------

    def _start(self) -> None:
        if not self._tasks:
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._writer()), loop.create_task(self._monitor())]

    def status(self) -> str:
        self._start()
        return "connecting" if self._up is None else "up" if self._up else "down"

    def _mark(self, up: bool, err: Exception | None = None) -> None:
        if up != self._up:
            (log.info if up else log.error)("redis %s is %s%s", self.where, "up" if up else "down",
                                            f" ({err})" if err else "")
            metrics.inc("vango_redis_transitions_total", state="up" if up else "down")
        self._up = up

    async def _monitor(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self.client.ping(), self.timeout)
                self._mark(True)
                if self._pending:
                    self._wake.set()
            except (RedisError, OSError, asyncio.TimeoutError) as err:
                self._mark(False, err)
            await asyncio.sleep(PING_INTERVAL)

    async def _writer(self) -> None:
        backoff = BACKOFF_MIN
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = list(self._pending.items())
                self._pending.clear()
                self._inflight = {sid for sid, _ in batch}
                try:
                    await self._write(batch)
                    backoff = BACKOFF_MIN
                except (RedisError, OSError, asyncio.TimeoutError) as err:
                    self._mark(False, err)
                    for sid, item in reversed(batch):  # put back unless something newer came meanwhile
                        if sid not in self._pending:
                            self._pending[sid] = item
                            self._pending.move_to_end(sid, last=False)
                    await asyncio.sleep(backoff * (1 + random.random()))
                    backoff = min(backoff * 2, BACKOFF_MAX)
                finally:
                    self._inflight = set()

    async def _write(self, batch: list[tuple[str, tuple[str, bytes]]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for sid, (op, blob) in batch:
            if op == "save":
                await self._save(keys=[session_key(sid), lease_key(sid), fence_key(sid)], args=[self.machine, blob, self.ttl_ms],
                                 client=pipe)
            elif op in ("open", "touch"):
                await self._open(keys=[lease_key(sid), fence_key(sid)], args=[self.machine, self.ttl_ms], client=pipe)
            else:
                pipe.delete(session_key(sid), lease_key(sid), fence_key(sid))
        results = await asyncio.wait_for(pipe.execute(), self.timeout)
        self._mark(True)
        stale = [sid for (sid, (op, _)), ok in zip(batch, results) if op != "delete" and ok == 0]
        if stale:
            log.warning("%d sessions are owned by another machine now: closing the copies here", len(stale))
            metrics.inc("vango_redis_stale_writes_total", len(stale))
            self.on_stale(stale)

    def _queue(self, session_id: str, op: str, blob: bytes = b"") -> None:
        if op == "touch" and session_id in self._pending:
            return  # a queued save or open refreshes the lease anyway
        self._pending[session_id] = (op, blob)
        self._pending.move_to_end(session_id)
        while len(self._pending) > MAX_PENDING:
            sid, _ = self._pending.popitem(last=False)
            log.error("redis write queue full: dropped the write of one session")
            metrics.inc("vango_redis_dropped_writes_total")
        self._start()
        self._wake.set()

    async def drain(self, timeout: float) -> bool:
        """Wait (at most ``timeout``) until every queued write is in Redis; whether it is."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (self._pending or self._inflight) and loop.time() < deadline:
            self._wake.set()
            await asyncio.sleep(0.01)
        return not (self._pending or self._inflight)

    # -- SessionStore -------------------------------------------------------------------

    def save(self, session_id: str, ip: str, blob: bytes) -> None:
        self._queue(session_id, "save", blob)

    def save_many(self, rows: list[tuple[str, str, bytes]]) -> int:
        for sid, _, blob in rows:
            self._queue(sid, "save", blob)
        return len(rows)

    def delete_many(self, session_ids: list[str]) -> None:
        for sid in session_ids:
            self._queue(sid, "delete")

    def on_open(self, session_id: str) -> None:
        self._queue(session_id, "open")

    def touch(self, session_ids: list[str]) -> None:
        """Keep the leases of sessions that live here from expiring (checkpoint ticks call this)."""
        for sid in session_ids:
            self._queue(sid, "touch")

    async def claim(self, session_id: str, creds: list[object] | None = None) -> bytes | None:
        """Take the session for a resume here: from its live owner on another machine, else its checkpoint."""
        gone, waits = "", 0
        try:
            for _ in range(CLAIM_TRIES + GONE_WAITS):
                if session_id in self._pending or session_id in self._inflight:  # our own last word on it must be in Redis first
                    await self.drain(self.timeout)
                result = await asyncio.wait_for(self._claim(
                    keys=[session_key(session_id), lease_key(session_id), fence_key(session_id)],
                    args=[self.machine, self.ttl_ms, machine_key(""), gone]), self.timeout)
                self._mark(True)
                kind = result[0].decode() if isinstance(result[0], bytes) else str(result[0])
                if kind == "blob":
                    metrics.inc("vango_redis_claims_total", source="checkpoint")
                    return bytes(result[1])
                if kind == "none":
                    if gone and waits < GONE_WAITS:  # its owner just stopped: its last checkpoint may be on its way
                        waits += 1
                        await asyncio.sleep(GONE_WAIT)
                        continue
                    return None
                owner = result[1].decode("utf-8", "replace")
                answer = await self._ask(owner, session_id, creds)
                if answer is _GONE:
                    gone = owner  # nobody listens there: its checkpoint is ours to take
                    continue
                if isinstance(answer, dict) and isinstance(answer.get("blob"), bytes):
                    await self._lease_here(session_id, owner)
                    metrics.inc("vango_redis_claims_total", source="live")
                    return answer["blob"]
                if isinstance(answer, dict) and "refused" in answer:
                    raise OwnerRefused(str(answer["refused"]))
                if answer is None:
                    gone = owner  # it said it does not hold the session: take the checkpoint
                    continue
                raise StoreBusy(f"session is moving on machine {owner}")
        except (RedisError, OSError, asyncio.TimeoutError) as err:
            self._mark(False, err)
            raise StoreBusy(f"redis unavailable: {err}") from None
        raise StoreBusy("session kept changing owner")

    async def _ask(self, machine: str, session_id: str, creds: list[object] | None) -> Any:
        """Ask ``machine``'s hub to hand the session over; its answer, or _GONE if nobody listens there."""
        rid = secrets.token_hex(12)
        request = self.signer.pack({"rid": rid, "id": session_id, "creds": creds or [], "reply": reply_key(rid),
                                    "from": self.machine})
        if await self.client.publish(request_channel(machine), request) == 0:
            log.info("machine %s does not listen: resuming from its checkpoint", machine)
            return _GONE
        popped = await self.client.blpop([reply_key(rid)], timeout=self.timeout)
        if popped is None:
            raise StoreBusy(f"machine {machine} did not answer")
        try:
            reply = self.signer.unpack(popped[1])
        except Rejected as bad:
            metrics.inc("vango_redis_rejected_total", what="reply")
            raise StoreBusy(f"unusable answer from {machine}: {bad}") from None
        if reply.get("rid") != rid:
            raise StoreBusy("answer to another request")
        return reply.get("answer")

    async def _lease_here(self, session_id: str, previous: str) -> None:
        """The session came from ``previous`` live: the lease moves here with the next fence."""
        pipe = self.client.pipeline(transaction=True)
        pipe.incr(fence_key(session_id))
        pipe.pexpire(fence_key(session_id), self.ttl_ms)
        fence, _ = await pipe.execute()
        await self.client.set(lease_key(session_id), f"{fence}|{self.machine}", px=self.ttl_ms)

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def aclose(self, timeout: float = 2.0) -> None:
        """Write what is queued (at most ``timeout``), then close the connections."""
        await self.drain(timeout)
        self.close()
        await self.client.aclose()


_GONE = object()


def _redact_url(url: str) -> str:
    """The URL without a password, for logs."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"
