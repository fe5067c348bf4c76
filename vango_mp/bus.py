"""Worker side of the msgpack Unix-socket bus (the hub lives in the supervisor).

Each worker holds one stream connection to the hub, a Unix socket in the
supervisor's private runtime directory (mode 0700). Workers never talk to each
other directly: the hub routes requests, fans out broadcasts and sequences
global-signal writes.

Framing
-------
The stream is a sequence of msgpack objects, one per message: an array whose
first element is the message code, followed by the fields of the message
class in declaration order. A message whose packed size exceeds
``COMPRESS_THRESHOLD`` is sent as msgpack ``ExtType(LZ4_EXT, lz4 block)``
instead (the block stores its uncompressed size). Decoding uses a streaming
``msgpack.Unpacker`` whose buffer is bounded by ``max_frame``: a frame larger
than that, undecodable bytes, an unknown code or fields of the wrong type
raise :class:`BusProtocolError`, and the connection is dropped -- msgpack
documents that an ``Unpacker`` cannot be reused after any error other than
``OutOfData``.

Messages (W = worker, H = hub)
------------------------------
==== ============ ===== ====================================================
code name         dir   fields
==== ============ ===== ====================================================
1    Hello        W→H   slot, pid, generation -- first frame on a connection
2    Ready        W→H   (none) -- the worker serves; READY=1 waits for all
3    Heartbeat    W→H   stats: map (attached, detached, rss, pressure, ...)
4    Request      W↔H   rid, peer, kind, body -- W→H: peer is the target
                        (a slot, ``ANY`` or ``HUB``); H→W: the source slot
5    Response     W↔H   rid, ok, body -- ``ok=False``: body is an error text
6    Broadcast    W↔H   peer, kind, body -- to every other worker; H→W peer
                        is the source slot (``HUB`` for the hub itself)
7    GlobalWrite  W→H   wid, key, op, args, default
8    GlobalUpdate H→W   key, seq, value, origin (writer pid), wid
9    GlobalError  H→W   wid, key, error -- the op was rejected
10   Snapshot     H→W   values: {key: [seq, value]} -- right after Hello
11   Order        H→W   kind, body -- e.g. ``reopen_logs``
==== ============ ===== ====================================================

Request routing: to a slot, the hub forwards to the newest worker in that
slot (during a rolling reload two workers share one); to ``ANY`` it fans out
to every other worker and answers with the first ``ok`` response whose body
is not ``None`` (``None`` when all declined, left or there are none -- used
for session adoption: exactly one owner can say yes); to ``HUB`` the hub
answers itself (``stats``: every worker's last heartbeat stats; ``peers``).

Failure behaviour
-----------------
- *Timeout*: :meth:`BusClient.request` raises :class:`BusTimeout` after
  ``timeout`` seconds; a late response is dropped.
- *Slow peer*: the hub never blocks on a worker; output it cannot send is
  queued up to ``bus_max_backlog`` bytes, beyond which it drops that worker's
  connection (the worker then dies of EOF and is respawned).
- *EOF*: when the hub goes away (supervisor died or dropped us), pending
  requests fail with :class:`BusClosed` and ``on_lost`` runs once; its
  default stops the current Tornado IOLoop so the worker exits.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import dataclasses
import itertools
import logging
import os
import signal
import struct
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import lz4.block
import msgpack

log = logging.getLogger("vango_mp.bus")

LZ4_EXT = 1
COMPRESS_THRESHOLD = 64 * 1024
DEFAULT_MAX_FRAME = 16 * 1024 * 1024
READ_CHUNK = 64 * 1024
ANY = -1  # Request peer: the first worker that says yes
HUB = -2  # Request peer: the hub itself; Broadcast peer: sent by the hub


class BusError(Exception):
    """A request was answered with an error by its handler."""


class BusTimeout(BusError):
    """No response within the timeout."""


class BusClosed(BusError):
    """The connection to the hub is gone."""


class BusProtocolError(Exception):
    """Undecodable, oversized or ill-typed frame; the connection must be dropped."""


# ---------------------------------------------------------------- messages

_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,), "str": (str,), "bool": (bool,), "dict": (dict,), "list": (list,),
    "Any": (object,),
}


@dataclasses.dataclass(slots=True, frozen=True)
class Message:
    """Base of every bus message; ``CODE`` is its wire code."""

    CODE: ClassVar[int] = 0

    def pack(self) -> list[Any]:
        return [self.CODE, *(getattr(self, f.name) for f in dataclasses.fields(self))]


def _message(code: int) -> Callable[[type], type]:
    def register(cls: type) -> type:
        cls = dataclasses.dataclass(slots=True, frozen=True)(cls)
        cls.CODE = code
        cls._TYPES = tuple(_FIELD_TYPES[str(f.type)] for f in dataclasses.fields(cls))
        MESSAGES[code] = cls
        return cls
    return register


MESSAGES: dict[int, type] = {}


@_message(1)
class Hello(Message):
    slot: int
    pid: int
    generation: int


@_message(2)
class Ready(Message):
    pass


@_message(3)
class Heartbeat(Message):
    stats: dict


@_message(4)
class Request(Message):
    rid: int
    peer: int
    kind: str
    body: Any


@_message(5)
class Response(Message):
    rid: int
    ok: bool
    body: Any


@_message(6)
class Broadcast(Message):
    peer: int
    kind: str
    body: Any


@_message(7)
class GlobalWrite(Message):
    wid: int
    key: str
    op: str
    args: list
    default: Any


@_message(8)
class GlobalUpdate(Message):
    key: str
    seq: int
    value: Any
    origin: int
    wid: int


@_message(9)
class GlobalError(Message):
    wid: int
    key: str
    error: str


@_message(10)
class Snapshot(Message):
    values: dict


@_message(11)
class Order(Message):
    kind: str
    body: Any


# ---------------------------------------------------------------- framing

def encode(msg: Message) -> bytes:
    """One frame; large ones are lz4-compressed inside an ExtType."""
    packed = msgpack.packb(msg.pack(), use_bin_type=True)
    if len(packed) <= COMPRESS_THRESHOLD:
        return packed
    block = lz4.block.compress(packed, store_size=True)
    return msgpack.packb(msgpack.ExtType(LZ4_EXT, block), use_bin_type=True)


def decode_message(obj: Any) -> Message:
    """Validate one unpacked frame and build its message object."""
    if not isinstance(obj, list) or not obj or type(obj[0]) is not int:
        raise BusProtocolError(f"frame is not [code, ...]: {type(obj).__name__}")
    cls = MESSAGES.get(obj[0])
    if cls is None:
        raise BusProtocolError(f"unknown message code {obj[0]}")
    fields = obj[1:]
    if len(fields) != len(cls._TYPES):
        raise BusProtocolError(f"{cls.__name__}: expected {len(cls._TYPES)} fields, got {len(fields)}")
    for value, types in zip(fields, cls._TYPES):
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types and int in types):
            raise BusProtocolError(f"{cls.__name__}: bad field value {value!r}")
    return cls(*fields)


class FrameDecoder:
    """Streaming decoder with a bounded buffer; any error is final (drop the peer)."""

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self.unpacker = msgpack.Unpacker(
            raw=False, max_buffer_size=max_frame, ext_hook=self._ext_hook, strict_map_key=False
        )

    def _ext_hook(self, code: int, data: bytes) -> Any:
        if code != LZ4_EXT or len(data) < 4:
            raise BusProtocolError(f"unknown ext type {code}")
        (size,) = struct.unpack_from("<I", data)  # lz4 store_size header
        if size > self.max_frame:
            raise BusProtocolError(f"compressed frame of {size} bytes exceeds {self.max_frame}")
        return _Inflated(msgpack.unpackb(lz4.block.decompress(data), raw=False, strict_map_key=False))

    def feed(self, data: bytes) -> list[Message]:
        """Decode every complete frame in the buffered stream."""
        try:
            self.unpacker.feed(data)
            return [decode_message(_inflate(obj)) for obj in self.unpacker]
        except BusProtocolError:
            raise
        except Exception as exc:  # BufferFull, FormatError, StackError, ValueError, lz4 errors
            raise BusProtocolError(f"{type(exc).__name__}: {exc}") from None


class _Inflated:
    """Marks a decompressed frame, so an ExtType can only appear at the top level."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj


def _inflate(obj: Any) -> Any:
    return obj.obj if isinstance(obj, _Inflated) else obj


# ---------------------------------------------------------------- process helpers

PR_SET_PDEATHSIG = 1


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies.

    Call it in the forked child, then compare ``os.getppid()`` with the
    expected parent: if the parent died before the prctl, it will never fire.
    Caveat: the signal fires when the parent *thread* that forked us exits;
    the supervisor starts no threads. Returns False where prctl is missing.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):  # not Linux
        return False


def reopen_log_files() -> None:
    """Reopen every logging.FileHandler (after logrotate moved the file, on SIGUSR1)."""
    for handler in list(logging.getLogger().handlers):
        if isinstance(handler, logging.FileHandler):
            handler.acquire()
            try:
                handler.close()
                handler.stream = handler._open()
            finally:
                handler.release()


def default_stats() -> dict[str, Any]:
    """Heartbeat stats when the worker sets no provider: just our RSS."""
    import psutil

    return {"rss": psutil.Process().memory_info().rss}


def _stop_ioloop() -> None:
    from tornado.ioloop import IOLoop

    IOLoop.current().stop()


# ---------------------------------------------------------------- client

Handler = Callable[[Any, int], Any]


class BusClient:
    """One worker's connection to the hub (asyncio, so it runs on Tornado's IOLoop).

    Usage in the worker, after the fork and inside the IOLoop::

        client = BusClient(bus_path, slot=slot, pid=os.getpid(), heartbeat=settings.worker_heartbeat)
        client.stats_provider = lambda: {"attached": n, "detached": m, "rss": rss, "pressure": "ok"}
        client.on("session.adopt", adopt_handler)   # handler(body, src_slot) -> value | awaitable
        await client.connect()                      # returns once the globals snapshot arrived
        vango_mp.globals.install_backend(vango_mp.globals.BusBackend(client))
        ...start serving...
        client.ready()

    A handler's return value answers a Request (an exception answers
    ``ok=False``); for a Broadcast or Order the value is ignored.
    """

    def __init__(
        self,
        path: str,
        *,
        slot: int,
        pid: int,
        generation: int = 0,
        heartbeat: float = 1.0,
        timeout: float = 5.0,
        max_frame: int = DEFAULT_MAX_FRAME,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.path, self.slot, self.pid, self.generation = path, slot, pid, generation
        self.heartbeat, self.timeout = heartbeat, timeout
        self.decoder = FrameDecoder(max_frame)
        self.on_lost: Callable[[], None] = on_lost or _stop_ioloop
        self.stats_provider: Callable[[], dict[str, Any]] = default_stats
        self.handlers: dict[str, Handler] = {"reopen_logs": lambda body, peer: reopen_log_files()}
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.rids = itertools.count(1)
        self.wids = itertools.count(1)
        self.global_listener: Any = None
        self.global_backlog: list[Message] = []
        self.writer: asyncio.StreamWriter | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.snapshot_received: asyncio.Event | None = None
        self.closed = False

    # -- lifecycle

    async def connect(self, timeout: float | None = None) -> None:
        """Connect, say Hello, start reading and heartbeating; wait for the Snapshot."""
        reader, self.writer = await asyncio.open_unix_connection(self.path)
        self.snapshot_received = asyncio.Event()
        self.send(Hello(self.slot, self.pid, self.generation))
        self.tasks = [asyncio.ensure_future(self._read_loop(reader)),
                      asyncio.ensure_future(self._heartbeat_loop())]
        await asyncio.wait_for(self.snapshot_received.wait(), timeout or self.timeout)

    def ready(self) -> None:
        """Tell the supervisor this worker serves (it waits for all before READY=1)."""
        self.send(Ready())

    def close(self) -> None:
        """Close without calling ``on_lost``."""
        self._shutdown("closed")

    def _lose(self, reason: str) -> None:
        if self.closed:
            return
        log.warning("bus connection lost: %s", reason)
        self._shutdown(reason)
        self.on_lost()

    def _shutdown(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        for task in self.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        if self.writer is not None:
            self.writer.close()
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(BusClosed(reason))
        self.pending.clear()

    # -- sending

    def send(self, msg: Message) -> None:
        """Queue one message; raises BusClosed when the connection is gone."""
        if self.closed or self.writer is None:
            raise BusClosed("bus is closed")
        self.writer.write(encode(msg))

    def on(self, kind: str, handler: Handler) -> None:
        """Register ``handler(body, src_slot)`` for requests, broadcasts and orders of ``kind``."""
        self.handlers[kind] = handler

    async def request(self, peer: int, kind: str, body: Any = None, *, timeout: float | None = None) -> Any:
        """Ask a slot (or ``ANY`` / ``HUB``) and await the answer body.

        Raises BusTimeout, BusClosed, or BusError with the remote error text.
        """
        rid = next(self.rids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[rid] = fut
        try:
            self.send(Request(rid, peer, kind, body))
            return await asyncio.wait_for(fut, timeout or self.timeout)
        except asyncio.TimeoutError:
            raise BusTimeout(f"{kind} to {peer}: no answer in {timeout or self.timeout}s") from None
        finally:
            self.pending.pop(rid, None)

    async def request_any(self, kind: str, body: Any = None, *, timeout: float | None = None) -> Any:
        """First non-None answer from any other worker, else None."""
        return await self.request(ANY, kind, body, timeout=timeout)

    def broadcast(self, kind: str, body: Any = None) -> None:
        """Deliver to every other worker's ``kind`` handler; fire and forget."""
        self.send(Broadcast(HUB, kind, body))

    def write_global(self, key: str, op: str, args: list[Any], default: Any) -> int:
        """Submit a global-signal write; returns its wid (echoed in GlobalUpdate/GlobalError)."""
        wid = next(self.wids)
        self.send(GlobalWrite(wid, key, op, list(args), default))
        return wid

    def set_global_listener(self, listener: Any) -> None:
        """Route Snapshot/GlobalUpdate/GlobalError to ``listener.handle_bus(msg)``; flushes the backlog."""
        self.global_listener = listener
        backlog, self.global_backlog = self.global_backlog, []
        for msg in backlog:
            listener.handle_bus(msg)

    # -- receiving

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                data = await reader.read(READ_CHUNK)
                if not data:
                    return self._lose("EOF from hub")
                for msg in self.decoder.feed(data):
                    self._dispatch(msg)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # protocol error or socket error: the stream is unusable
            self._lose(f"{type(exc).__name__}: {exc}")

    def _dispatch(self, msg: Message) -> None:
        if isinstance(msg, Response):
            self._resolve(msg)
        elif isinstance(msg, (Snapshot, GlobalUpdate, GlobalError)):
            self._deliver_global(msg)
        elif isinstance(msg, Request):
            asyncio.ensure_future(self._answer(msg))
        elif isinstance(msg, (Broadcast, Order)):
            peer = msg.peer if isinstance(msg, Broadcast) else HUB
            asyncio.ensure_future(self._notify(msg.kind, msg.body, peer))

    def _resolve(self, msg: Response) -> None:
        fut = self.pending.get(msg.rid)
        if fut is None or fut.done():
            return  # timed out already: late answers are dropped
        if msg.ok:
            fut.set_result(msg.body)
        else:
            fut.set_exception(BusError(str(msg.body)))

    def _deliver_global(self, msg: Message) -> None:
        if isinstance(msg, Snapshot) and self.snapshot_received is not None:
            self.snapshot_received.set()
        if self.global_listener is None:
            self.global_backlog.append(msg)
        else:
            self.global_listener.handle_bus(msg)

    async def _call(self, kind: str, body: Any, peer: int) -> Any:
        handler = self.handlers.get(kind)
        if handler is None:
            raise KeyError(f"no bus handler for {kind!r}")
        result = handler(body, peer)
        if isinstance(result, Awaitable):
            result = await result
        return result

    async def _notify(self, kind: str, body: Any, peer: int) -> None:
        """Run a broadcast/order handler; failures are logged, nobody awaits them."""
        try:
            await self._call(kind, body, peer)
        except Exception:
            log.exception("bus handler %r failed", kind)

    async def _answer(self, msg: Request) -> None:
        try:
            reply = Response(msg.rid, True, await self._call(msg.kind, msg.body, msg.peer))
        except Exception as exc:
            log.exception("bus handler %r failed", msg.kind)
            reply = Response(msg.rid, False, f"{type(exc).__name__}: {exc}")
        if not self.closed:
            self.send(reply)

    async def _heartbeat_loop(self) -> None:
        """Every ``heartbeat`` seconds; a blocked IOLoop stops these, which is the point."""
        while not self.closed:
            try:
                stats = self.stats_provider()
            except Exception:
                log.exception("stats_provider failed")
                stats = {}
            self.send(Heartbeat(stats))
            await asyncio.sleep(self.heartbeat)
