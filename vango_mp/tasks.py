"""Async work owned by a session: ``async def`` handlers and effects, resources, intervals.

Each coroutine runs as an asyncio Task on the worker's loop, owned by one
session: closing, evicting or handing over the session cancels every task it
still has, so none outlives it. The task *steps* the coroutine itself
(:class:`_Stepped`): each stretch of code between two ``await``\\ s runs
inside a reactive batch and with the session acting (``navigate()`` works),
exactly like a synchronous handler, so its signal writes become one PATCHES
frame through the session's usual flush. An exception ends the task and is
reported like a handler's (log, ``App(on_error=...)``, the client's notice or
``--dev`` overlay); cancellation is silent.

Storm budget (the reference's MaxActionStartsPerSecond, default 100): task
starts per session per second; past it :func:`TaskGroup.spawn` raises
:class:`~vango_mp.reactive.StormError` and the coroutine never runs, so a
loop that keeps starting tasks stops with a clear error instead of pinning
a core.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Generator
from typing import Any

from .ratelimit import TokenBucket
from .reactive import StormError, batch, untracked

__all__ = ["TaskGroup", "StormError", "DEFAULT_TASK_STARTS_PER_SECOND"]

DEFAULT_TASK_STARTS_PER_SECOND = 100


class _Stepped:
    """Awaitable that drives ``coro`` one step at a time, each step inside ``enter()``/``leave()``
    and a batch; what the coroutine awaits (futures, bare yields) passes through to the Task."""

    __slots__ = ("coro", "enter", "leave")

    def __init__(self, coro: Coroutine[Any, Any, Any], enter: Callable[[], Any], leave: Callable[[Any], None]):
        self.coro = coro
        self.enter = enter
        self.leave = leave

    def __await__(self) -> Generator[Any, Any, Any]:
        coro = self.coro
        value: Any = None
        error: BaseException | None = None
        while True:
            token = self.enter()
            try:
                with batch():  # untracked: the task's context was copied inside an effect or render
                    out = untracked(lambda: coro.send(value) if error is None else coro.throw(error))
            except StopIteration as stop:
                return stop.value
            except BaseException:
                coro.close()  # an effect failing at the end of the step: the coroutine is still suspended
                raise
            finally:
                self.leave(token)
            try:
                value, error = (yield out), None
            except BaseException as exc:  # Task.cancel() (CancelledError) and the like: into the coroutine
                value, error = None, exc


class TaskGroup:
    """The tasks of one session; ``cancel_all`` when it goes away.

    ``enter``/``leave`` wrap every step (the session makes itself the one
    ``navigate()`` acts on); ``on_error(exc, label)`` hears a task's exception.
    """

    __slots__ = ("_loop", "_tasks", "_enter", "_leave", "_on_error", "_starts", "closed")

    def __init__(self, loop: asyncio.AbstractEventLoop | None, *, enter: Callable[[], Any],
                 leave: Callable[[Any], None], on_error: Callable[[BaseException, str], None],
                 starts_per_second: float = DEFAULT_TASK_STARTS_PER_SECOND) -> None:
        self._loop = loop
        self._tasks: set[asyncio.Task[Any]] = set()
        self._enter, self._leave, self._on_error = enter, leave, on_error
        self._starts = TokenBucket(starts_per_second, max(1, int(starts_per_second)))
        self.closed = False

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, Any], label: str = "task",
              done: Callable[[asyncio.Task[Any]], None] | None = None) -> asyncio.Task[Any]:
        """Run ``coro`` as a task of this session; ``done(task)`` when it ends (any way).

        Raises RuntimeError when the session is closed or has no loop, and
        StormError past the task-start budget; the coroutine is closed unrun then.
        """
        if self._loop is None:  # made before the session was started: the loop it runs on now
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                pass
        if self.closed or self._loop is None:
            coro.close()
            raise RuntimeError(f"cannot start {label}: the session is {'closed' if self.closed else 'not running'}")
        if not self._starts.allow():
            coro.close()
            raise StormError(f"task storm: more than {self._starts.rate:g} task starts per second in one session "
                             f"({label} refused); a loop that keeps starting tasks?")
        task = self._loop.create_task(self._run(coro, label))
        # Cancelled before its first step (its cancel came in the same loop turn): the
        # coroutine never started; close it, or Python warns it was never awaited.
        task.add_done_callback(lambda _: coro.close())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if done is not None:
            task.add_done_callback(done)
        return task

    async def _run(self, coro: Coroutine[Any, Any, Any], label: str) -> Any:
        try:
            return await _Stepped(coro, self._enter, self._leave)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # reported like a handler's; the task then ends quietly
            self._on_error(exc, label)
            return None

    def cancel_all(self) -> int:
        """Cancel every task still running (the session closes); no new ones start. How many were cancelled."""
        self.closed = True
        tasks, self._tasks = self._tasks, set()
        for task in tasks:
            task.cancel()
        return len(tasks)
