"""Global signals: reactive values shared by every session on every worker.

``GlobalSignal(key, default)`` reads like a reactive signal (``get()`` inside
a render subscribes the component, so it re-renders when the value changes)
but is written only through named operations -- ``set``, ``incr``,
``append`` (bounded) and ``update`` (dict merge) -- which go through the
installed *backend*:

- :class:`LocalBackend` (the default, and the only one without a bus): the
  op is applied at once in this process.
- :class:`BusBackend` (installed by the worker after it connected): the op is
  sent to the hub, which is the sequencer -- it applies the op to its
  authoritative value, gives it the key's next sequence number and broadcasts
  the resulting value to every worker, the writer included. Each worker
  applies updates in sequence order, so writes are linearizable per key:
  concurrent ``incr`` from any number of sessions on any number of workers
  lose nothing. A (re)connecting worker first receives a snapshot of every
  key. A write is visible locally only once the hub's update comes back.
  With ``store_url`` (several machines) the hub passes writes to Redis,
  which is the sequencer for every machine (``supervisor/redislink.py``);
  workers see no difference, except that a write fails with
  :class:`GlobalWriteError` while Redis is down.

Every op returns an awaitable that resolves to the write's sequence number
(already resolved for the local backend); awaiting it is optional. A rejected
op (``incr`` on a string, ...) makes that awaitable raise
:class:`GlobalWriteError`; with the local backend the error is raised at once.

Values must be msgpack-serializable (None, bool, int, float, str, bytes,
lists and string-keyed maps). Two ``GlobalSignal`` objects with the same key
share one value; the first default registered in a process wins, and the hub
takes the default sent with the first write it sees for a key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Generic, Protocol, TypeVar

from . import reactive

log = logging.getLogger("vango_mp.globals")

T = TypeVar("T")


class GlobalWriteError(ValueError):
    """The op does not apply to the key's current value."""


# ---------------------------------------------------------------- ops (pure)

def _op_set(current: Any, value: Any) -> Any:
    return value


def _op_incr(current: Any, n: Any = 1) -> Any:
    for v in (current, n):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise GlobalWriteError(f"incr needs numbers, got {v!r}")
    return current + n


def _op_append(current: Any, item: Any, max_len: Any = None) -> list[Any]:
    if not isinstance(current, list):
        raise GlobalWriteError(f"append needs a list, got {type(current).__name__}")
    if max_len is not None and (not isinstance(max_len, int) or max_len < 0):
        raise GlobalWriteError(f"append max_len must be a non-negative int, got {max_len!r}")
    out = [*current, item]
    return out[max(0, len(out) - max_len):] if max_len is not None else out


def _op_update(current: Any, mapping: Any) -> dict[str, Any]:
    if not isinstance(current, dict) or not isinstance(mapping, dict):
        raise GlobalWriteError("update needs a dict value and a dict argument")
    return {**current, **mapping}


OPS: dict[str, Callable[..., Any]] = {
    "set": _op_set, "incr": _op_incr, "append": _op_append, "update": _op_update,
}


def apply_op(op: str, current: Any, args: list[Any]) -> Any:
    """The new value after ``op(*args)``; pure, never mutates ``current``.

    Used by the local backend and by the hub (the sequencer). Raises
    GlobalWriteError for an unknown op, bad arguments or a wrong value type.
    """
    fn = OPS.get(op)
    if fn is None:
        raise GlobalWriteError(f"unknown op {op!r}")
    try:
        return fn(current, *args)
    except TypeError as exc:  # wrong number of arguments
        raise GlobalWriteError(f"{op}: {exc}") from None


# ---------------------------------------------------------------- cells

class _Cell:
    """The process-local replica of one key."""

    __slots__ = ("key", "default", "seq", "signal")

    def __init__(self, key: str, default: Any) -> None:
        self.key = key
        self.default = default  # sent with writes so the hub can start the key
        self.seq = 0  # sequence number of the applied value; 0 = never written
        self.signal: reactive.Signal[Any] = reactive.SharedSignal(default)

    def apply(self, seq: int, value: Any) -> bool:
        """Apply the hub's value if it is newer; False for a stale duplicate."""
        if seq <= self.seq:
            return False
        if seq != self.seq + 1 and self.seq:
            log.debug("global %r: jumped from seq %d to %d", self.key, self.seq, seq)
        self.seq = seq
        self.signal.set(value)
        return True


_cells: dict[str, _Cell] = {}


def _cell(key: str, default: Any) -> _Cell:
    cell = _cells.get(key)
    if cell is None:
        cell = _cells[key] = _Cell(key, default)
    return cell


# ---------------------------------------------------------------- backends

class Backend(Protocol):
    def submit(self, cell: _Cell, op: str, args: list[Any]) -> Awaitable[int]:
        """Apply or forward one write; the awaitable resolves to its sequence number."""


class Applied:
    """An already-completed write: ``await`` gives its sequence number at once."""

    __slots__ = ("seq",)

    def __init__(self, seq: int) -> None:
        self.seq = seq

    def __await__(self) -> Generator[Any, None, int]:
        return self.seq
        yield  # pragma: no cover - makes this a generator


class LocalBackend:
    """No bus: apply every write immediately in this process."""

    def submit(self, cell: _Cell, op: str, args: list[Any]) -> Awaitable[int]:
        value = apply_op(op, cell.signal.peek(), args)
        cell.apply(cell.seq + 1, value)
        return Applied(cell.seq)


class BusBackend:
    """Writes go to the hub; updates from it are applied in sequence order.

    ``client`` is a :class:`vango_mp.bus.BusClient` (connected). Building the
    backend replays the snapshot the client already received, so install it
    right after ``await client.connect()``::

        install_backend(BusBackend(client))
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.waiting: dict[int, asyncio.Future[int]] = {}
        client.set_global_listener(self)

    def submit(self, cell: _Cell, op: str, args: list[Any]) -> Awaitable[int]:
        wid = self.client.write_global(cell.key, op, args, cell.default)
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.waiting[wid] = fut
        return fut

    def handle_bus(self, msg: Any) -> None:
        """Called by the BusClient with Snapshot, GlobalUpdate or GlobalError."""
        from .bus import GlobalError, GlobalUpdate, Snapshot

        if isinstance(msg, Snapshot):
            self.apply_snapshot(msg.values)
        elif isinstance(msg, GlobalUpdate):
            self.apply_update(msg.key, msg.seq, msg.value, msg.origin, msg.wid)
        elif isinstance(msg, GlobalError):
            self._settle(msg.wid, error=GlobalWriteError(f"{msg.key}: {msg.error}"))

    def apply_snapshot(self, values: dict[str, Any]) -> None:
        with reactive.batch():
            for key, (seq, value) in values.items():
                if seq == 0:  # the key is gone (Redis came back without its data): back to the default
                    lost = _cells.get(key)
                    if lost is not None:
                        lost.seq = 0
                        lost.signal.set(lost.default)
                    continue
                cell = _cell(key, None)
                if seq < cell.seq:
                    cell.seq = 0  # the hub restarted: its numbering wins
                cell.apply(seq, value)

    def apply_update(self, key: str, seq: int, value: Any, origin: int, wid: int) -> None:
        _cell(key, None).apply(seq, value)
        if origin == self.client.pid:
            self._settle(wid, seq=seq)

    def _settle(self, wid: int, *, seq: int = 0, error: Exception | None = None) -> None:
        fut = self.waiting.pop(wid, None)
        if fut is None or fut.done():
            return
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(seq)


_backend: Backend = LocalBackend()


def install_backend(backend: Backend | None) -> None:
    """Route every GlobalSignal write through ``backend`` (None: back to local)."""
    global _backend
    _backend = backend if backend is not None else LocalBackend()


# ---------------------------------------------------------------- public API

class GlobalSignal(Generic[T]):
    """A reactive value replicated to every worker (see the module docstring)."""

    __slots__ = ("key", "_cell")

    def __init__(self, key: str, default: T) -> None:
        if not isinstance(key, str) or not key:
            raise ValueError("GlobalSignal key must be a non-empty string")
        self.key = key
        self._cell = _cell(key, default)

    def get(self) -> T:
        """The current value; tracked, so a reading component re-renders on change."""
        return self._cell.signal.get()

    def peek(self) -> T:
        """The current value without subscribing."""
        return self._cell.signal.peek()

    @property
    def value(self) -> T:
        return self.get()

    @property
    def seq(self) -> int:
        """Sequence number of the applied value (0 before the first write)."""
        return self._cell.seq

    def set(self, value: T) -> Awaitable[int]:
        return self._submit("set", [value])

    def incr(self, n: int | float = 1) -> Awaitable[int]:
        """Atomically add ``n`` (negative to decrement)."""
        return self._submit("incr", [n])

    def append(self, item: Any, max_len: int | None = None) -> Awaitable[int]:
        """Atomically append to a list value, keeping at most the last ``max_len`` items."""
        return self._submit("append", [item, max_len])

    def update(self, mapping: dict[str, Any]) -> Awaitable[int]:
        """Atomically merge ``mapping`` into a dict value."""
        return self._submit("update", [mapping])

    def _submit(self, op: str, args: list[Any]) -> Awaitable[int]:
        if reactive.writes_dropped():  # a page rendered ahead (prefetch) writes nothing
            return Applied(self._cell.seq)
        return _backend.submit(self._cell, op, args)

    def __repr__(self) -> str:
        return f"GlobalSignal({self.key!r}, {self.peek()!r}, seq={self._cell.seq})"
