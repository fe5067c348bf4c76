"""The hub's link to Redis: one machine's single subscription, in a thread of the supervisor.

With ``store_url`` set, the supervisor is one machine of a cluster. Its hub
stays the only bus peer of its workers; this link, a thread running an
asyncio loop with the ``redis`` package's asyncio client, is the hub's only
line to Redis:

- **Global signals.** A worker's write goes to the hub as before; the link
  runs it in Redis -- ``set`` and ``incr`` in one Lua script (the value and
  the key's sequence number change together, atomically), ``append`` and
  ``update`` as a compare-and-set through the same script, retried on a
  concurrent write -- and the script publishes the update. The link hears
  every machine's updates on one subscription and the hub fans them out
  over its bus. The writer is answered once Redis has applied the
  write and its update came back on the subscription, so every machine's
  workers get one key's updates in the same (sequence) order; nothing
  acknowledged is lost. While Redis is down a write fails at
  once with :data:`DOWN`, and after a reconnect the hub sends every worker a
  fresh snapshot (they catch up).
- **Hand-over requests.** Another machine that resumes a session this one
  owns asks on ``vango:req:<machine>``; the hub asks its workers (like a
  resume between workers) and the link pushes the signed answer back.
- **Cluster broadcasts.** A bus broadcast whose kind starts with
  ``cluster.`` (or is ``auth.logout``: :func:`vango_mp.stores.wire.is_cluster_kind`)
  also goes to every other machine's workers, as a broadcast from the hub.
- **Session limits over every machine.** ``max_sessions`` and
  ``max_sessions_per_ip`` count every machine's sessions: the hub counts
  its own (:mod:`supervisor.census`), mirrors them into Redis, and admits a
  new session only if a Lua script finds room after adding the other live
  machines' counts (while Redis is down, each machine enforces the limits
  alone).
- **Liveness.** ``vango:m:<machine>`` is refreshed every second; a machine
  whose key expired is gone, and its sessions resume from checkpoints.

The link reconnects with exponential backoff (jittered, up to 5 s). The
thread starts after the template is forked, and talks to the hub only
through a queue and a wake-up socket the hub's selector watches.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import selectors
import socket
import threading
from collections.abc import Callable
from typing import Any

import msgpack
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from vango_mp.globals import GlobalWriteError, apply_op
from vango_mp.stores import wire

log = logging.getLogger("vango_mp.supervisor.redis")

DOWN = "global signals unavailable: redis is down"
BACKOFF_MIN, BACKOFF_MAX = 0.1, 5.0
HEARTBEAT = 1.0
OP_TIMEOUT = 5.0
CAS_TRIES = 100
REPLY_TTL_MS = 30_000

# KEYS: values, seqs. ARGV: key, op (set | incr | cas), arg (msgpack), default (msgpack), expected seq (cas),
# channel, update header. Returns {seq, value} or {0} when a cas lost to another write.
_GLOBAL = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local seq = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local new
if ARGV[2] == 'cas' then
  if seq ~= tonumber(ARGV[5]) then return {0} end
  new = ARGV[3]
elseif ARGV[2] == 'set' then
  new = ARGV[3]
elseif ARGV[2] == 'incr' then
  local v = cmsgpack.unpack(cur or ARGV[4])
  local n = cmsgpack.unpack(ARGV[3])
  if type(v) ~= 'number' or type(n) ~= 'number' then return redis.error_reply('incr needs numbers') end
  local r = v + n
  if r >= 9007199254740992 or r <= -9007199254740992 then return redis.error_reply('incr: beyond 2^53') end
  new = cmsgpack.pack(r)
else
  return redis.error_reply('unknown op')
end
seq = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('HSET', KEYS[1], ARGV[1], new)
redis.call('PUBLISH', ARGV[6], cmsgpack.pack(ARGV[1], seq) .. ARGV[7] .. new)
return {seq, new}
"""

# Session limits over every machine. KEYS: machines set, our counts hash. ARGV: machine, ip, total limit,
# per-IP limit, our total, our count for ip (both with the new session), census hash prefix, machine key
# prefix, ttl ms. Returns 0 (admitted: our counts are stored), 1 (max sessions), 2 (per IP).
_CENSUS_ENTER = """
local total, ipcount = tonumber(ARGV[5]), tonumber(ARGV[6])
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if m ~= ARGV[1] then
    if redis.call('EXISTS', ARGV[8] .. m) == 1 then
      total = total + tonumber(redis.call('HGET', ARGV[7] .. m, 'total') or '0')
      ipcount = ipcount + tonumber(redis.call('HGET', ARGV[7] .. m, 'ip:' .. ARGV[2]) or '0')
    else
      redis.call('SREM', KEYS[1], m)
    end
  end
end
if tonumber(ARGV[3]) > 0 and total > tonumber(ARGV[3]) then return 1 end
if tonumber(ARGV[4]) > 0 and ipcount > tonumber(ARGV[4]) then return 2 end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'total', ARGV[5], 'ip:' .. ARGV[2], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[9])
return 0
"""
CENSUS_REASONS = {1: "max sessions reached", 2: "too many sessions from this IP address"}  # as on one machine

Event = tuple[Any, ...]


class RedisLink:
    """One machine's Redis connection, driven from the hub (see the module docstring)."""

    def __init__(self, url: str, machine: str, secret: bytes, selector: selectors.BaseSelector,
                 deliver: Callable[[Event], None]) -> None:
        self.url, self.machine = url, machine
        self.signer = wire.Signer(secret)
        self.deliver = deliver  # runs in the hub's thread, one event at a time
        self.status = "connecting"
        self._inbox: collections.deque[Event] = collections.deque()
        self._rsock, self._wsock = socket.socketpair()
        for sock in (self._rsock, self._wsock):
            sock.setblocking(False)
        self.selector = selector
        selector.register(self._rsock, selectors.EVENT_READ, self._drain)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writes: asyncio.Queue[tuple[Any, ...]] | None = None
        self._client: aioredis.Redis | None = None
        self._stopping = False
        # Applied writes whose update has not come back on the subscription yet (answered from
        # here if the connection drops first), and updates of ours that came before Redis's answer.
        self._unacked: dict[tuple[int, int], Event] = {}
        self._acked: set[tuple[int, int]] = set()
        self._mirror: dict[str, Any] | None = None  # session counts not yet written (link thread only)
        self._mirror_queued = False
        self._thread = threading.Thread(target=self._run, name="vango-redis", daemon=True)

    # -- the hub's side (its thread) -----------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def write(self, pid: int, wid: int, key: str, op: str, args: list[Any], default: Any) -> None:
        """Run a worker's global write in Redis; the hub hears ("update", ...) or ("error", ...)."""
        if self.status != "up" or self._loop is None:
            self.deliver(("error", pid, wid, key, DOWN))
            return
        self._call(lambda: self._writes.put_nowait(("global", pid, wid, key, op, args, default)))  # type: ignore[union-attr]

    def census_enter(self, ip: str, total: int, per_ip: int, mine: int, mine_ip: int,
                     done: Callable[[str | None], None]) -> None:
        """Whether one more session from ``ip`` fits every machine's limits; ``done(None | reason)`` in the hub."""
        if self.status != "up" or self._loop is None:
            done(None)  # Redis is down: each machine enforces its own limits
            return
        item = ("census", ip, total, per_ip, mine, mine_ip, done)
        self._call(lambda: self._writes.put_nowait(item))  # type: ignore[union-attr]

    def census_mirror(self, total: int, by_ip: dict[str, int], *, full: bool) -> None:
        """Store this machine's session counts (``full``: replace them all) for the other machines' checks."""
        if self.status == "up" and self._loop is not None:
            by_ip = dict(by_ip)
            self._call(lambda: self._merge_mirror(total, by_ip, full))

    def _merge_mirror(self, total: int, by_ip: dict[str, int], full: bool) -> None:
        """(Link thread.) Coalesce count changes: a burst of session ends is one write, not one each."""
        pending = self._mirror if self._mirror is not None and not full else {"full": full, "ips": {}}
        pending["ips"].update(by_ip)
        pending["total"] = total
        self._mirror = pending
        if not self._mirror_queued:
            self._mirror_queued = True
            self._writes.put_nowait(("mirror",))  # type: ignore[union-attr]

    def broadcast(self, kind: str, body: Any) -> None:
        """Send a cluster broadcast (``wire.is_cluster_kind``) to every other machine."""
        if self.status == "up":
            data = self.signer.pack({"from": self.machine, "kind": kind, "body": body})
            self._call(lambda: self._spawn(self._publish(wire.BROADCAST_CHANNEL, data)))

    def answer(self, reply: str, rid: str, body: Any) -> None:
        """Push the answer to another machine's request."""
        data = self.signer.pack({"rid": rid, "answer": body})
        self._call(lambda: self._spawn(self._push(reply, data)))

    def close(self) -> None:
        """Stop the thread (at most a second), forget the wake-up socket."""
        self._stopping = True
        if self._loop is not None:
            self._call(lambda: [t.cancel() for t in asyncio.all_tasks(self._loop)])
            self._thread.join(1.0)
        if self._rsock.fileno() != -1:
            try:
                self.selector.unregister(self._rsock)
            except (KeyError, ValueError):
                pass
        self.close_in_child()

    def close_in_child(self) -> None:
        """In a forked child: close our copies of the wake-up pair (never touch the shared selector)."""
        self._rsock.close()
        self._wsock.close()

    def _call(self, fn: Callable[[], Any]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(fn)
            except RuntimeError:  # closed meanwhile
                pass

    def _drain(self, mask: int) -> None:
        try:
            while self._rsock.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        while self._inbox:
            event = self._inbox.popleft()
            if event[0] == "status":
                self.status = event[1]
            try:
                if event[0] == "call":  # a callback the hub gave us, run in its thread
                    event[1](*event[2:])
                    continue
                self.deliver(event)
            except Exception:
                log.exception("hub: handling redis event %s failed", event[0])

    # -- the link's side (its thread) ------------------------------------------------------

    def _post(self, event: Event) -> None:
        self._inbox.append(event)
        try:
            self._wsock.send(b"!")
        except (BlockingIOError, InterruptedError, OSError):
            pass  # a byte is pending already (or we are closing)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._writes = asyncio.Queue()
        try:
            loop.run_until_complete(self._main())
        except asyncio.CancelledError:
            pass
        finally:
            loop.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        task.add_done_callback(lambda t: t.cancelled() or t.exception() and log.warning(
            "redis: %s", t.exception()))

    async def _main(self) -> None:
        backoff = BACKOFF_MIN
        while not self._stopping:
            client = aioredis.Redis.from_url(self.url, socket_connect_timeout=OP_TIMEOUT)
            tasks: list[asyncio.Task[Any]] = []
            try:
                await asyncio.wait_for(client.ping(), OP_TIMEOUT)
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(wire.GLOBAL_CHANNEL, wire.BROADCAST_CHANNEL,
                                       wire.request_channel(self.machine))
                await self._beat(client)
                self._client = client
                self._post(("snapshot", await self._snapshot(client)))
                self._post(("status", "up"))
                log.info("redis %s: connected as machine %s", _redacted(self.url), self.machine)
                backoff = BACKOFF_MIN
                script = client.register_script(_GLOBAL)
                tasks = [asyncio.create_task(self._listen(pubsub)), asyncio.create_task(self._heartbeat(client)),
                         asyncio.create_task(self._writer(client, script))]
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # the error that ended the connection
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, asyncio.TimeoutError, ConnectionError) as err:
                if not self._stopping:
                    log.error("redis %s unavailable: %s; retrying in %.1fs", _redacted(self.url), err, backoff)
            finally:
                for task in tasks:
                    task.cancel()
                self._client = None
                self._post(("status", "down"))
                self._fail_queued()
                try:
                    await client.aclose()
                except Exception:
                    pass
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, BACKOFF_MAX)

    def _fail_queued(self) -> None:
        for update in self._unacked.values():  # applied in Redis: answered, even if out of order
            self._post(update)
        self._unacked.clear()
        self._acked.clear()
        self._mirror, self._mirror_queued = None, False  # the hub writes every count again when we are back
        assert self._writes is not None
        while not self._writes.empty():
            item = self._writes.get_nowait()
            if item[0] == "global":
                self._post(("error", item[1], item[2], item[3], DOWN))
            elif item[0] == "census":
                self._post(("call", item[-1], None))

    async def _beat(self, client: aioredis.Redis) -> None:
        pipe = client.pipeline(transaction=False)
        pipe.set(wire.machine_key(self.machine), "1", px=wire.MACHINE_TTL_MS)
        pipe.pexpire(wire.census_key(self.machine), wire.MACHINE_TTL_MS)  # our session counts live as long as we do
        await asyncio.wait_for(pipe.execute(), OP_TIMEOUT)

    async def _heartbeat(self, client: aioredis.Redis) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            await self._beat(client)  # a hung server times out here and ends the connection

    async def _snapshot(self, client: aioredis.Redis) -> dict[str, list[Any]]:
        values, seqs = await asyncio.wait_for(
            asyncio.gather(client.hgetall(wire.GLOBAL_VALUES), client.hgetall(wire.GLOBAL_SEQS)), OP_TIMEOUT)
        out: dict[str, list[Any]] = {}
        for raw_key, raw in values.items():
            try:
                key, seq = raw_key.decode(), int(seqs.get(raw_key, b"0"))
                out[key] = [seq, msgpack.unpackb(raw, raw=False, strict_map_key=False)]
            except Exception:
                log.warning("redis: global %r holds data that is not ours: ignored", raw_key[:80])
        return out

    async def _listen(self, pubsub: Any) -> None:
        async for message in pubsub.listen():
            if message.get("type") != "message":
                continue
            channel, data = message["channel"].decode(), message["data"]
            try:
                if channel == wire.GLOBAL_CHANNEL:
                    key, seq, machine, pid, wid, value = wire.decode_update(data)
                    if machine == self.machine:  # one of ours: its writer is answered with it
                        if self._unacked.pop((pid, wid), None) is None:
                            self._acked.add((pid, wid))
                    else:
                        pid = wid = 0
                    self._post(("update", key, seq, value, pid, wid))
                elif channel == wire.BROADCAST_CHANNEL:
                    msg = self.signer.unpack(data)
                    if msg.get("from") != self.machine and isinstance(msg.get("kind"), str) \
                            and wire.is_cluster_kind(msg["kind"]):
                        self._post(("broadcast", msg["kind"], msg.get("body")))
                else:
                    msg = self.signer.unpack(data)
                    if not (isinstance(msg.get("rid"), str) and isinstance(msg.get("id"), str)
                            and isinstance(msg.get("reply"), str) and msg["reply"].startswith(wire.PREFIX + "rep:")):
                        raise wire.Rejected("malformed request")
                    self._post(("adopt", msg["rid"], msg["reply"], {"id": msg["id"], "creds": msg.get("creds")}))
            except wire.Rejected as bad:
                log.warning("redis: refused a message on %s: %s", channel, bad)
                self._post(("rejected", channel))

    async def _writer(self, client: aioredis.Redis, script: Any) -> None:
        assert self._writes is not None
        census = client.register_script(_CENSUS_ENTER)
        while True:
            item = await self._writes.get()
            try:
                if item[0] == "global":
                    await self._global(client, script, *item[1:])
                elif item[0] == "census":
                    await self._census_enter(census, *item[1:])
                else:
                    await self._census_mirror(client)
            except (RedisError, OSError, asyncio.TimeoutError) as err:
                if item[0] == "global":
                    self._post(("error", item[1], item[2], item[3], DOWN))
                elif item[0] == "census":
                    self._post(("call", item[-1], None))
                self._fail_queued()
                raise ConnectionError(f"redis write failed: {err}") from None

    async def _global(self, client: aioredis.Redis, script: Any, pid: int, wid: int, key: str, op: str,
                      args: list[Any], default: Any) -> None:
        try:
            seq, value = await asyncio.wait_for(self._apply(client, script, pid, wid, key, op, args, default),
                                                OP_TIMEOUT)
        except GlobalWriteError as err:
            self._post(("error", pid, wid, key, str(err)))
            return
        if (pid, wid) in self._acked:  # its update came first, on the subscription
            self._acked.discard((pid, wid))
        else:
            self._unacked[(pid, wid)] = ("update", key, seq, value, pid, wid)

    async def _census_enter(self, census: Any, ip: str, total: int, per_ip: int, mine: int, mine_ip: int,
                            done: Callable[[str | None], None]) -> None:
        verdict = await asyncio.wait_for(census(
            keys=[wire.CENSUS_MACHINES, wire.census_key(self.machine)],
            args=[self.machine, ip, total, per_ip, mine, mine_ip, wire.census_key(""), wire.machine_key(""),
                  wire.MACHINE_TTL_MS]), OP_TIMEOUT)
        self._post(("call", done, CENSUS_REASONS.get(int(verdict))))

    async def _census_mirror(self, client: aioredis.Redis) -> None:
        pending, self._mirror, self._mirror_queued = self._mirror, None, False
        if pending is None:
            return
        key = wire.census_key(self.machine)
        pipe = client.pipeline(transaction=True)
        if pending["full"]:
            pipe.delete(key)
        counts = {f"ip:{ip}": n for ip, n in pending["ips"].items() if n > 0}
        gone = [f"ip:{ip}" for ip, n in pending["ips"].items() if n <= 0]
        pipe.hset(key, mapping={"total": pending["total"], **counts})
        if gone:
            pipe.hdel(key, *gone)
        pipe.pexpire(key, wire.MACHINE_TTL_MS)
        pipe.sadd(wire.CENSUS_MACHINES, self.machine)
        await asyncio.wait_for(pipe.execute(), OP_TIMEOUT)

    async def _apply(self, client: aioredis.Redis, script: Any, pid: int, wid: int, key: str, op: str,
                     args: list[Any], default: Any) -> tuple[int, Any]:
        header = wire.update_header(self.machine, pid, wid)
        keys = [wire.GLOBAL_VALUES, wire.GLOBAL_SEQS]
        pack = _packer()
        if op in ("set", "incr"):
            if op == "incr":
                apply_op("incr", 0, args)  # the argument's checks, as on one machine
            try:
                result = await script(keys=keys, args=[key, op, pack(args[0]), pack(default), 0,
                                                      wire.GLOBAL_CHANNEL, header])
            except ResponseError as err:
                raise GlobalWriteError(str(err).rpartition(": ")[2] or str(err)) from None
            return int(result[0]), msgpack.unpackb(result[1], raw=False, strict_map_key=False)
        for _ in range(CAS_TRIES):
            pipe = client.pipeline(transaction=True)  # value and seq of one moment
            pipe.hget(wire.GLOBAL_VALUES, key)
            pipe.hget(wire.GLOBAL_SEQS, key)
            raw, seq = await pipe.execute()
            current = msgpack.unpackb(raw, raw=False, strict_map_key=False) if raw is not None else default
            value = apply_op(op, current, args)
            result = await script(keys=keys, args=[key, "cas", pack(value), b"", int(seq or 0),
                                                  wire.GLOBAL_CHANNEL, header])
            if int(result[0]):
                return int(result[0]), value
        raise GlobalWriteError(f"{op}: too many concurrent writes to {key!r}")

    async def _publish(self, channel: str, data: bytes) -> None:
        if self._client is not None:
            await self._client.publish(channel, data)

    async def _push(self, reply: str, data: bytes) -> None:
        if self._client is not None:
            pipe = self._client.pipeline(transaction=True)
            pipe.rpush(reply, data)
            pipe.pexpire(reply, REPLY_TTL_MS)
            await pipe.execute()


def _packer() -> Callable[[Any], bytes]:
    return lambda value: msgpack.packb(value, use_bin_type=True)


def _redacted(url: str) -> str:
    return url if "@" not in url else url.partition("://")[0] + "://***@" + url.rpartition("@")[2]


def attach(hub: Any, url: str, secret_hex: str, port: int, selector: selectors.BaseSelector) -> RedisLink:
    """Make ``hub`` one machine of the cluster on ``url``: start its link (after the template's fork)."""
    import secrets

    hub.machine = f"{socket.gethostname()}:{port}:{secrets.token_hex(3)}"  # new each run: a lease never outlives it
    hub.redis = RedisLink(url, hub.machine, bytes.fromhex(secret_hex), selector, hub.on_redis)
    hub.redis.start()
    return hub.redis
