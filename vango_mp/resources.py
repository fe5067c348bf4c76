"""Async state in components: ``use_resource`` (fetch on deps, with loading/error/value) and ``use_interval``.

Both run as tasks of the session (:mod:`vango_mp.tasks`): cancelled on
unmount and when the session closes, their writes patched like a handler's.
A server render (the first page load, no session yet) starts nothing: a
resource renders as loading there, then fetches once the session is live.

::

    @component
    def Search():
        q = use_signal("")
        hits = use_resource(lambda text: find(text), deps=q.get)   # find: async def
        if hits.loading: ...
        elif hits.error is not None: ...
        else: ... hits.value ...

When ``deps()`` changes, the fetch in flight is cancelled (its result, if it
still arrives, is dropped) and a new one starts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from .reactive import Signal
from .security import redact
from .vdom.component import current_instance, use_effect, use_held

__all__ = ["Resource", "use_resource", "use_interval", "MIN_INTERVAL"]

log = logging.getLogger("vango_mp.resources")

T = TypeVar("T")
MIN_INTERVAL = 0.01  # seconds: a shorter period would be a busy loop


class Resource(Generic[T]):
    """The state of an async fetch; reading ``loading``/``error``/``value`` in a render tracks it."""

    __slots__ = ("_state", "_task", "_generation", "_again")

    def __init__(self) -> None:
        # (loading, error, value): one signal, so a finished fetch is one change
        self._state: Signal[tuple[bool, BaseException | None, Any]] = Signal((True, None, None))
        self._task: asyncio.Task[Any] | None = None
        self._generation = 0  # a result from an older fetch is dropped
        self._again: Signal[int] = Signal(0)  # refetch() bumps it; the effect reads it

    @property
    def loading(self) -> bool:
        """A fetch is in flight (or none started yet: the server render)."""
        return self._state.get()[0]

    @property
    def error(self) -> BaseException | None:
        """What the last fetch raised (None after a success)."""
        return self._state.get()[1]

    @property
    def value(self) -> T | None:
        """The last successful fetch's result; kept while a newer one loads (None before the first)."""
        return self._state.get()[2]

    def refetch(self) -> None:
        """Fetch again with the same deps (from a handler)."""
        self._again.set(self._again.peek() + 1)

    def _start(self, session: Any, fetch: Callable[..., Awaitable[T]], deps: Callable[[], Any] | None,
               label: str) -> Callable[[], None]:
        """The effect body: read deps (tracked), start the fetch, return its canceller."""
        self._again.get()
        args = () if deps is None else (deps(),)
        if session is None:
            return _nothing
        self._generation += 1
        generation = self._generation
        _, _, last = self._state.peek()
        self._state.set((True, None, last))

        async def run() -> None:
            try:
                value = await fetch(*args)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if generation == self._generation:
                    log.warning("session %s: %s raised: %r", redact(session.id), label, exc, exc_info=exc)
                    self._state.set((False, exc, self._state.peek()[2]))
                return
            if generation == self._generation:
                self._state.set((False, None, value))

        task = self._task = session.spawn(run(), label)
        return task.cancel


def _nothing() -> None:
    return None


def use_resource(fetch: Callable[..., Awaitable[T]], deps: Callable[[], Any] | None = None) -> Resource[T]:
    """Run ``fetch(deps())`` (``fetch()`` without deps) as a task; again when ``deps()`` changes.

    The stale fetch is cancelled. ``fetch`` is an ``async def`` (or returns an awaitable).
    """
    inst = current_instance()
    res: Resource[T] = use_held(Resource)
    session = inst.root.context.get("session")
    label = f"use_resource in {inst.path}"
    use_effect(lambda: res._start(session, fetch, deps, label))
    return res


def use_interval(fn: Callable[[], Any], seconds: float) -> None:
    """Call ``fn()`` every ``seconds`` while the component is mounted (an ``async def`` fn is awaited).

    An error in ``fn`` is reported like a handler's and the interval goes on.
    """
    if not seconds >= MIN_INTERVAL:
        raise ValueError(f"use_interval: period must be at least {MIN_INTERVAL} s, got {seconds!r}")
    inst = current_instance()
    session = inst.root.context.get("session")
    label = f"use_interval in {inst.path}"

    async def tick() -> None:
        from .errors import report

        while True:
            await asyncio.sleep(seconds)
            try:
                result = fn()
                if asyncio.iscoroutine(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                report(session, "task", exc, event=label)

    def start() -> Callable[[], Any] | None:
        if session is None:
            return None
        return session.spawn(tick(), label).cancel

    use_effect(start)
