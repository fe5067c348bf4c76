"""The worker side of the bus: one connection to the hub (see the package docstring)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .frames import (
    ANY, HUB, READ_CHUNK, DEFAULT_MAX_FRAME, BusClosed, BusError, BusTimeout, FrameDecoder, GlobalError,
    GlobalUpdate, GlobalWrite, Heartbeat, Hello, Message, Order, Ready, Request, Response, Snapshot, Broadcast,
    encode,
)
from .process import reopen_log_files
from ..observability import prom

log = logging.getLogger("vango_mp.bus")

def default_stats() -> dict[str, Any]:
    """Heartbeat stats when the worker sets no provider: just our RSS."""
    import psutil

    return {"rss": psutil.Process().memory_info().rss}


def _stop_ioloop() -> None:
    from tornado.ioloop import IOLoop

    IOLoop.current().stop()


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
            started = time.perf_counter()
            answer = await asyncio.wait_for(fut, timeout or self.timeout)
            prom.record_bus(kind, time.perf_counter() - started)
            return answer
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
