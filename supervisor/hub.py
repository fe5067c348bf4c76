"""The bus hub: the supervisor's end of every worker's Unix stream socket.

It runs inside the supervisor's synchronous selector loop and never blocks:
every socket is non-blocking, reads are decoded with the bounded streaming
decoder of :mod:`vango_mp.bus`, and writes are queued per peer and flushed
when the socket is writable. A peer whose queue passes ``max_backlog`` bytes
(too slow, or stopped reading), that sends garbage or an oversized frame, or
whose pid is not one of our workers (checked with SO_PEERCRED, not taken from
Hello) is dropped; nobody else notices. The message table and routing rules
are in the :mod:`vango_mp.bus` docstring.

The hub keeps no relayed payload once it is passed on: a peer's output queue
holds the encoded frames themselves (no growing bytearray keeping its peak
capacity) and drops each once sent; a peer's decoder gives its buffer back
once a big frame is through (:class:`vango_mp.bus.FrameDecoder`).

The hub is also the global-signal sequencer: it holds the authoritative value
and sequence number of every key (in memory; a supervisor restart resets
them) and broadcasts each applied write to every worker. With ``store_url``
(several machines) Redis is the sequencer instead and the hub relays through
its :class:`supervisor.redislink.RedisLink` (:meth:`Hub.on_redis`).
"""

from __future__ import annotations

import collections
import logging
import os
import selectors
import socket
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vango_mp import bus
from vango_mp.globals import GlobalWriteError, apply_op
from vango_mp.stores.wire import is_cluster_kind

from .census import Census
from vango_mp.memory import PressureLevel

log = logging.getLogger("vango_mp.supervisor.hub")

READ_CHUNK = 256 * 1024
REQUEST_TTL = 120.0  # forget routed requests nobody answered after this long


class Peer:
    """One worker connection as the hub sees it."""

    def __init__(self, sock: socket.socket, pid: int, max_frame: int) -> None:
        self.sock = sock
        self.pid = pid  # from SO_PEERCRED
        self.slot = -1
        self.generation = -1
        self.decoder = bus.FrameDecoder(max_frame)
        self.outq: collections.deque[memoryview] = collections.deque()  # encoded frames not yet sent
        self.queued = 0  # bytes in outq
        self.hello = False
        self.ready = False
        self.last_seen = time.monotonic()
        self.stats: dict[str, Any] = {}
        self.closed = False

    def __repr__(self) -> str:
        return f"<Peer pid={self.pid} slot={self.slot}>"


@dataclass
class Routed:
    """A request the hub forwarded and still waits on."""

    origin: Peer | Callable[[bool, Any], None]  # a worker, or the hub's own callback (requests from Redis)
    rid: int  # the origin's correlation id
    waiting: set[Peer]
    fan_out: bool  # ANY: first non-None ok answer wins (a hint only once nobody else can win)
    created: float = field(default_factory=time.monotonic)
    hint: Any = None  # ANY: the first hint answer, held until every target has answered


class Hub:
    """Accept worker connections, route messages, sequence global writes."""

    def __init__(
        self,
        path: str,
        selector: selectors.BaseSelector,
        *,
        lookup_worker: Callable[[int], tuple[int, int] | None],
        max_frame: int = bus.DEFAULT_MAX_FRAME,
        max_backlog: int = 64 * 1024 * 1024,
    ) -> None:
        self.path = path
        self.selector = selector
        self.lookup_worker = lookup_worker  # pid -> (slot, generation), from the arbiter
        self.max_frame, self.max_backlog = max_frame, max_backlog
        self.peers: dict[int, Peer] = {}  # by socket fd (a pid may reconnect)
        self.routed: dict[int, Routed] = {}
        self.next_rid = 1
        self.globals: dict[str, list[Any]] = {}  # key -> [seq, value]
        self.handlers: dict[str, Callable[[Any, Peer], Any]] = {
            "stats": lambda body, peer: self.worker_stats(),
            "peers": lambda body, peer: [[p.slot, p.pid, p.generation, p.ready] for p in self.live_peers()],
            "census.enter": lambda body, peer: self.census.enter(peer.pid, body),
            "cluster.machine": lambda body, peer: {"id": self.machine,
                                                   "redis": self.redis.status if self.redis else None},
        }
        self.machine = ""  # this machine's id in a cluster (set with the Redis link)
        self.redis: Any = None  # supervisor.redislink.RedisLink with store_url
        self.census = Census()
        # Broadcasts addressed to the hub itself: handled here, never forwarded.
        self.sinks: dict[str, Callable[[Any, Peer], None]] = {
            "census.change": self._census_change,
        }
        self.listener = self._listen(path)

    # -- sockets

    def _listen(self, path: str) -> socket.socket:
        if os.path.exists(path):
            os.unlink(path)  # a stale socket from a killed supervisor
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        sock.bind(path)
        os.chmod(path, 0o600)  # the directory is 0700 already; belt and braces
        sock.listen(128)
        sock.setblocking(False)
        self.selector.register(sock, selectors.EVENT_READ, self._accept)
        return sock

    def _accept(self, mask: int) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # ECONNABORTED and friends: the client is gone, keep going
                log.warning("bus accept failed: %s", exc)
                return
            self._add_peer(conn)

    def _add_peer(self, conn: socket.socket) -> None:
        pid, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        identity = self.lookup_worker(pid) if uid == os.getuid() else None
        if identity is None:
            log.warning("bus: refusing connection from pid %d uid %d", pid, uid)
            conn.close()
            return
        conn.setblocking(False)
        peer = Peer(conn, pid, self.max_frame)
        # Slot and generation come from our fork records, not from Hello.
        peer.slot, peer.generation = identity
        self.peers[conn.fileno()] = peer
        self.selector.register(conn, selectors.EVENT_READ, lambda mask: self._on_io(peer, mask))

    def _on_io(self, peer: Peer, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self._flush(peer)
        if mask & selectors.EVENT_READ and not peer.closed:
            self._read(peer)

    def _read(self, peer: Peer) -> None:
        try:
            data = peer.sock.recv(READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            return self.drop(peer, f"recv failed: {exc}")
        if not data:
            return self.drop(peer, "EOF")
        peer.last_seen = time.monotonic()
        try:
            messages = peer.decoder.feed(data)
        except bus.BusProtocolError as exc:
            return self.drop(peer, f"protocol error: {exc}")
        for msg in messages:
            if peer.closed:
                return
            self.handle(peer, msg)

    def send(self, peer: Peer, msg: bus.Message) -> None:
        """Queue ``msg`` for ``peer``; a peer past ``max_backlog`` is dropped, never waited for."""
        if peer.closed:
            return
        frame = memoryview(bus.encode(msg))
        peer.outq.append(frame)
        peer.queued += len(frame)
        if peer.queued > self.max_backlog:
            return self.drop(peer, f"slow peer: {peer.queued} bytes queued")
        self._flush(peer)

    def _flush(self, peer: Peer) -> None:
        """Send queued frames until the socket would block; a sent frame is dropped at once."""
        while peer.outq:
            try:
                sent = peer.sock.send(peer.outq[0])
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                return self.drop(peer, f"send failed: {exc}")
            peer.queued -= sent
            if sent == len(peer.outq[0]):
                peer.outq.popleft()
            else:
                peer.outq[0] = peer.outq[0][sent:]  # a view: the rest is not copied
                break
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if peer.outq else 0)
        if self.selector.get_key(peer.sock).events != events:
            self.selector.modify(peer.sock, events, self.selector.get_key(peer.sock).data)

    def drop(self, peer: Peer, reason: str) -> None:
        """Close one peer; requests waiting on it are answered as declined."""
        if peer.closed:
            return
        log.info("bus: dropping worker pid %d (slot %d): %s", peer.pid, peer.slot, reason)
        peer.closed = True
        self.census.forget(peer.pid)
        self._mirror_census(None)
        peer.outq.clear()
        peer.queued = 0
        self.peers.pop(peer.sock.fileno(), None)
        self.selector.unregister(peer.sock)
        peer.sock.close()
        for rid, routed in list(self.routed.items()):
            if routed.origin is peer:
                del self.routed[rid]
            elif peer in routed.waiting:
                self._answer(rid, peer, bus.Response(rid, False, f"worker {peer.pid} went away"))

    def close(self) -> None:
        """Drop every peer, stop listening and remove the socket file (idempotent)."""
        if self.listener.fileno() == -1:
            return
        for peer in list(self.peers.values()):
            self.drop(peer, "hub closing")
        self.selector.unregister(self.listener)
        self.listener.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def close_in_child(self) -> None:
        """In a forked worker: close our copies of the hub's fds, touch nothing else."""
        self.listener.close()
        for peer in self.peers.values():
            peer.sock.close()
        if self.redis is not None:
            self.redis.close_in_child()

    # -- messages

    def handle(self, peer: Peer, msg: bus.Message) -> None:
        """Dispatch one decoded message from ``peer``."""
        if not peer.hello and not isinstance(msg, bus.Hello):
            return self.drop(peer, f"expected Hello, got {type(msg).__name__}")
        handler = getattr(self, f"handle_{type(msg).__name__.lower()}", None)
        if handler is None:
            return self.drop(peer, f"unexpected {type(msg).__name__} from a worker")
        try:
            handler(peer, msg)
        except Exception:  # a hub bug costs that worker its connection, never the supervisor
            log.exception("bus: handling %s from pid %d failed", type(msg).__name__, peer.pid)
            self.drop(peer, "hub error")

    def handle_hello(self, peer: Peer, msg: bus.Hello) -> None:
        if msg.slot != peer.slot:
            log.warning("bus: pid %d claims slot %d, forked for slot %d", peer.pid, msg.slot, peer.slot)
        peer.hello = True
        self.send(peer, bus.Snapshot({k: list(v) for k, v in self.globals.items()}))

    def handle_ready(self, peer: Peer, msg: bus.Ready) -> None:
        peer.ready = True

    def handle_heartbeat(self, peer: Peer, msg: bus.Heartbeat) -> None:
        peer.stats = msg.stats

    def handle_broadcast(self, peer: Peer, msg: bus.Broadcast) -> None:
        sink = self.sinks.get(msg.kind)
        if sink is None:
            if self.redis is not None and is_cluster_kind(msg.kind):
                self.redis.broadcast(msg.kind, msg.body)  # and to every other machine's workers
            return self.broadcast(msg.kind, msg.body, source=peer)
        try:
            sink(msg.body, peer)
        except (TypeError, ValueError) as exc:
            log.warning("bus: worker pid %d sent a bad %s: %s", peer.pid, msg.kind, exc)

    def broadcast(self, kind: str, body: Any, *, source: Peer | None = None) -> None:
        """Send to every worker but ``source``."""
        out = bus.Broadcast(source.slot if source else bus.HUB, kind, body)
        for other in self.live_peers():
            if other is not source:
                self.send(other, out)

    def tell(self, peer: Peer, kind: str, body: Any) -> None:
        """A Broadcast from the hub to one worker (e.g. ``memory.pressure`` to a newcomer)."""
        self.send(peer, bus.Broadcast(bus.HUB, kind, body))

    def order(self, kind: str, body: Any = None) -> None:
        """An Order from the supervisor to every worker (e.g. ``reopen_logs``)."""
        for peer in self.live_peers():
            self.send(peer, bus.Order(kind, body))

    def handle_globalwrite(self, peer: Peer, msg: bus.GlobalWrite) -> None:
        if self.redis is not None:  # several machines: Redis sequences, on_redis fans out
            return self.redis.write(peer.pid, msg.wid, msg.key, msg.op, msg.args, msg.default)
        seq, value = self.globals.get(msg.key, (0, msg.default))
        try:
            value = apply_op(msg.op, value, msg.args)
        except GlobalWriteError as exc:
            return self.send(peer, bus.GlobalError(msg.wid, msg.key, str(exc)))
        self.globals[msg.key] = [seq + 1, value]
        update = bus.GlobalUpdate(msg.key, seq + 1, value, peer.pid, msg.wid)
        for other in self.live_peers():
            self.send(other, update)

    def on_redis(self, event: tuple[Any, ...]) -> None:
        """An event from the Redis link (see :mod:`supervisor.redislink`), in the hub's thread."""
        kind = event[0]
        if kind == "update":
            _, key, seq, value, pid, wid = event
            if seq > self.globals.get(key, (0, None))[0]:
                self.globals[key] = [seq, value]
            update = bus.GlobalUpdate(key, seq, value, pid, wid)
            for other in self.live_peers():
                self.send(other, update)
        elif kind == "error":
            _, pid, wid, key, error = event
            peer = self.peer_for(pid)
            if peer is not None:
                self.send(peer, bus.GlobalError(wid, key, error))
        elif kind == "snapshot":
            lost = {key: [0, None] for key in self.globals if key not in event[1]}  # Redis lost them: reset
            self.globals = dict(event[1])
            snapshot = bus.Snapshot({**lost, **{k: list(v) for k, v in self.globals.items()}})
            for other in self.live_peers():
                self.send(other, snapshot)
        elif kind == "broadcast":
            self.broadcast(event[1], event[2])
        elif kind == "adopt":
            _, rid, reply, body = event
            self.ask_any("session.adopt", body, lambda ok, answer: self.redis.answer(reply, rid, answer if ok else None))
        elif kind == "status":
            log.info("redis link %s", event[1])
            if event[1] == "up":
                self._mirror_census(None)  # our session counts, for the other machines' limits

    def _census_change(self, body: Any, peer: Peer) -> None:
        self.census.change(peer.pid, body)
        if self.redis is not None and isinstance(body, dict) and body.get("kind") == "sessions":
            self._mirror_census(str(body.get("ip", "")))

    def _census_enter_cluster(self, peer: Peer, msg: bus.Request) -> None:
        """Session limits over every machine: counted here, then checked against the others' in Redis."""
        try:
            reason = self.census.enter(peer.pid, msg.body)
        except (TypeError, ValueError) as exc:
            return self.send(peer, bus.Response(msg.rid, False, f"{type(exc).__name__}: {exc}"))
        body = msg.body
        if reason is not None or body.get("kind") != "sessions" or not (body.get("total") or body.get("per_ip")):
            return self.send(peer, bus.Response(msg.rid, True, reason))
        ip = str(body.get("ip", ""))

        def done(refusal: str | None) -> None:
            if refusal is not None:  # another machine holds the rest: undo our count
                self.census.change(peer.pid, {"kind": "sessions", "ip": ip, "delta": -1})
                self._mirror_census(ip)
            if not peer.closed:
                self.send(peer, bus.Response(msg.rid, True, refusal))

        self.redis.census_enter(ip, int(body.get("total") or 0), int(body.get("per_ip") or 0),
                                self.census.count("sessions"), self.census.count("sessions", ip), done)

    def _mirror_census(self, ip: str | None) -> None:
        """Tell Redis this machine's session counts (one IP's, or every IP's when ``ip`` is None)."""
        if self.redis is None:
            return
        ips = [ip] if ip is not None else None
        self.redis.census_mirror(self.census.count("sessions"),
                                 {a: self.census.count("sessions", a) for a in (ips or self.census.ips("sessions"))},
                                 full=ip is None)

    def ask_any(self, kind: str, body: Any, done: Callable[[bool, Any], None]) -> None:
        """The hub's own request to ANY worker (routing rules as for a worker's); ``done(ok, body)``."""
        targets = set(self.live_peers())
        if not targets:
            return done(True, None)
        rid, self.next_rid = self.next_rid, self.next_rid + 1
        self.routed[rid] = Routed(done, 0, set(targets), fan_out=True)
        for target in targets:
            self.send(target, bus.Request(rid, bus.HUB, kind, body))

    # -- request routing

    def handle_request(self, peer: Peer, msg: bus.Request) -> None:
        if msg.peer == bus.HUB:
            return self._answer_locally(peer, msg)
        if msg.peer == bus.ANY:
            targets = {p for p in self.live_peers() if p is not peer}
            if not targets:
                return self.send(peer, bus.Response(msg.rid, True, None))
        else:
            target = self.newest_in_slot(msg.peer)
            if target is None:
                return self.send(peer, bus.Response(msg.rid, False, f"no worker in slot {msg.peer}"))
            targets = {target}
        rid, self.next_rid = self.next_rid, self.next_rid + 1
        # A failed send drops that target, which edits ``waiting``: hand Routed its own copy.
        self.routed[rid] = Routed(peer, msg.rid, set(targets), fan_out=msg.peer == bus.ANY)
        for target in targets:
            self.send(target, bus.Request(rid, peer.slot, msg.kind, msg.body))

    def _answer_locally(self, peer: Peer, msg: bus.Request) -> None:
        if msg.kind == "census.enter" and self.redis is not None and self.redis.status == "up":
            return self._census_enter_cluster(peer, msg)
        handler = self.handlers.get(msg.kind)
        if handler is None:
            return self.send(peer, bus.Response(msg.rid, False, f"hub has no handler for {msg.kind!r}"))
        try:
            self.send(peer, bus.Response(msg.rid, True, handler(msg.body, peer)))
        except Exception as exc:
            log.exception("hub handler %r failed", msg.kind)
            self.send(peer, bus.Response(msg.rid, False, f"{type(exc).__name__}: {exc}"))

    def handle_response(self, peer: Peer, msg: bus.Response) -> None:
        routed = self.routed.get(msg.rid)
        if routed is not None and peer in routed.waiting:
            self._answer(msg.rid, peer, msg)

    def _answer(self, rid: int, peer: Peer, msg: bus.Response) -> None:
        """Record ``peer``'s answer; forward the final one to the origin."""
        routed = self.routed[rid]
        routed.waiting.discard(peer)
        if routed.fan_out and not (msg.ok and msg.body is not None and not bus.is_hint(msg.body)):
            if msg.ok and routed.hint is None and bus.is_hint(msg.body):
                routed.hint = msg.body
            if routed.waiting:
                return  # others may still say yes
            msg = bus.Response(rid, True, routed.hint)
        del self.routed[rid]
        if callable(routed.origin):
            return routed.origin(msg.ok, msg.body)
        self.send(routed.origin, bus.Response(routed.rid, msg.ok, msg.body))

    def expire_requests(self, now: float) -> None:
        """Forget routed requests older than REQUEST_TTL (their origin timed out long ago)."""
        for rid, routed in list(self.routed.items()):
            if now - routed.created > REQUEST_TTL:
                del self.routed[rid]

    # -- queries for the arbiter

    def peer_for(self, pid: int | None) -> Peer | None:
        """The newest live connection of worker ``pid``."""
        found = [p for p in self.peers.values() if p.pid == pid and not p.closed]
        return found[-1] if found else None

    def live_peers(self) -> list[Peer]:
        return [p for p in self.peers.values() if p.hello and not p.closed]

    def newest_in_slot(self, slot: int) -> Peer | None:
        candidates = [p for p in self.live_peers() if p.slot == slot]
        return max(candidates, key=lambda p: (p.ready, p.generation), default=None)

    def summary(self) -> tuple[int, int, PressureLevel]:
        """Attached and detached sessions over every worker, and the highest pressure level, per heartbeats."""
        peers = self.live_peers()
        attached = sum(int(p.stats.get("attached", 0) or 0) for p in peers)
        detached = sum(int(p.stats.get("detached", 0) or 0) for p in peers)
        worst = max((PressureLevel.parse(p.stats.get("pressure")) for p in peers), default=PressureLevel.NONE)
        return attached, detached, worst

    def worker_stats(self) -> list[dict[str, Any]]:
        return [{"slot": p.slot, "pid": p.pid, "generation": p.generation, "ready": p.ready,
                 "stats": p.stats} for p in self.live_peers()]


def make_runtime_dir(base: str | None) -> str:
    """A fresh private (0700) directory for the bus socket.

    ``base``: the ``runtime_dir`` setting, else systemd's ``$RUNTIME_DIRECTORY``
    (first entry), else the system temp dir.
    """
    base = base or os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0] or None
    return tempfile.mkdtemp(prefix="vango-mp-", dir=base)
