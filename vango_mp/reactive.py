"""Fine-grained reactive core: signals, computeds, effects, batches, owners.

Modelled on Preact Signals (``packages/core/src/index.ts``):

* A dependency edge is one :class:`_Node` record sitting in two doubly
  linked lists at once: the *sources* list of the observer (computed,
  effect, reaction) and the *targets* list of the source (signal, computed).
  Edges store the source's version number, never its value.
* Every source carries a ``_version`` bumped on each change; a module-level
  ``_global_version`` lets an unobserved computed skip all checking when
  nothing at all changed since its last evaluation.
* Computeds are lazy: they subscribe to their sources on their first
  subscriber and release them on their last; errors are cached and re-raised
  on read; reading a computed from its own evaluation raises ``CycleError``.
* Writes notify synchronously (flags only); effects and reactions run at the
  end of the outermost batch.  A write outside any batch is its own batch.
  If several effects raise, all still run and the first error is re-raised.

The current observer lives in a ``contextvars.ContextVar``.  Use is
single-threaded per worker: there are no locks.  This module imports nothing
from session, Tornado or the bus.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any, Callable, Generic, TypeVar

__all__ = [
    "CycleError",
    "StormError",
    "SignalWriteInRender",
    "Signal",
    "Computed",
    "Reaction",
    "Owner",
    "signal",
    "computed",
    "memo",
    "effect",
    "batch",
    "untracked",
    "on_cleanup",
    "current_owner",
    "set_debug",
    "is_debug",
    "set_effect_budget",
    "rendering",
]

T = TypeVar("T")


class CycleError(RuntimeError):
    """A computed read itself, or effects kept re-triggering each other."""


class StormError(RuntimeError):
    """A storm budget was exceeded: effects per tick (here), task starts per second (vango_mp.tasks)."""


class SignalWriteInRender(RuntimeError):
    """Debug mode: a signal was written while a component was rendering."""


# region Flags and module state ----------------------------------------------

RUNNING = 1 << 0  # evaluating now; reading it again is a cycle
NOTIFIED = 1 << 1  # already told "something upstream changed" this batch
OUTDATED = 1 << 2  # computed: a source changed since the cached value
DISPOSED = 1 << 3  # dead: no more runs, no more subscriptions
HAS_ERROR = 1 << 4  # computed: ``_value`` holds (exception, traceback)
TRACKING = 1 << 5  # subscribed to its sources (effects/reactions always are)
INVALIDATED = 1 << 6  # reaction: on_invalidate already called since last track

# A batch whose effects keep writing signals their own batch depends on
# never settles; after this many flush rounds the next write raises.
MAX_BATCH_ITERATIONS = 100
# Storm budget (the reference's MaxEffectRunsPerTick): effect runs in one outermost batch -- one
# event or dispatch of a session -- beyond which the rest are dropped and StormError raised.
DEFAULT_EFFECT_RUNS_PER_TICK = 1000

# The observer whose reads are being recorded (Computed, _Effect, Reaction).
_eval_context: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "vango_reactive_eval_context", default=None
)
_ctx_get = _eval_context.get  # bound once: reads are the hot path
_ctx_set = _eval_context.set
_ctx_reset = _eval_context.reset

_owner_var: contextvars.ContextVar[Owner | None] = contextvars.ContextVar(
    "vango_reactive_owner", default=None
)
_rendering_var: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "vango_reactive_rendering", default=False
)

_debug = False
_writes_dropped = 0  # > 0 inside dropping_writes()
_batch_depth = 0
_batch_iteration = 0
_effect_budget = DEFAULT_EFFECT_RUNS_PER_TICK  # 0 = no limit (set_effect_budget)
_tick_runs = 0  # effect runs in the current outermost batch
_global_version = 0
# Effects and reactions notified in the current batch (run reversed).
_pending: list[Any] = []

# endregion
# region Edges -----------------------------------------------------------------


class _Node:
    """One dependency edge: ``source`` is read by ``target``."""

    __slots__ = (
        "source",
        "prev_source",
        "next_source",
        "target",
        "prev_target",
        "next_target",
        "version",
        "rollback",
    )

    def __init__(self, source: Any, prev_source: _Node | None, target: Any, rollback: _Node | None):
        # The signal/computed being depended on.
        self.source = source
        # Neighbours in target's sources list (in order of first read).
        self.prev_source = prev_source
        self.next_source: _Node | None = None
        # The computed/effect/reaction that depends on ``source``.
        self.target = target
        # Neighbours in source's targets list; only linked while target is
        # TRACKING, so an unobserved computed is garbage once dropped.
        self.prev_target: _Node | None = None
        self.next_target: _Node | None = None
        # source._version seen at the last read: a number, not the value, so
        # edges keep no old values alive.  -1 = "not read yet in this run";
        # still -1 after the run means the edge is stale and is removed.
        self.version = 0
        # The source's previous ``_node`` (an enclosing evaluation's edge),
        # restored when this evaluation finishes.
        self.rollback = rollback


def _add_dependency(source: Any, ctx: Any) -> _Node | None:
    """Record that ``ctx`` read ``source``; return the edge if it is new to this run.

    ``source._node`` is the edge of the innermost evaluation that read (or
    prepared) the source, so checking "is it already a dependency" is one
    attribute compare, without a set or a search.
    """
    node = source._node
    if node is None or node.target is not ctx:
        # First read by this evaluation: append a new edge at the tail.
        tail = ctx._sources
        node = _Node(source, tail, ctx, node)
        if tail is not None:
            tail.next_source = node
        ctx._sources = node
        source._node = node
        if ctx._flags & TRACKING:
            source._subscribe(node)
        return node
    if node.version == -1:
        # Edge kept from the previous run, read again: revive it and move it
        # to the tail so the list ends up in this run's read order.
        node.version = 0
        nxt = node.next_source
        if nxt is not None:
            nxt.prev_source = node.prev_source
            if node.prev_source is not None:
                node.prev_source.next_source = nxt
            node.prev_source = ctx._sources
            node.next_source = None
            ctx._sources.next_source = node
            ctx._sources = node
        return node
    return None  # already read during this run


def _prepare_sources(target: Any) -> None:
    """Mark every edge of ``target`` as "not read yet" before a re-run.

        before:  head -> [A v3] -> [B v7] -> [C v1]         (target._sources = head)
        after:   head -> [A -1] -> [B -1] -> [C -1]         (target._sources = tail C)

    Each source's ``_node`` now points at our edge (the old one is saved in
    ``rollback``), so ``_add_dependency`` finds and revives it in O(1).
    ``_sources`` points at the tail during the run so reads append cheaply.
    """
    node = target._sources
    while node is not None:
        rollback = node.source._node
        if rollback is not None:
            node.rollback = rollback
        node.source._node = node
        node.version = -1
        if node.next_source is None:
            target._sources = node
            break
        node = node.next_source


def _cleanup_sources(target: Any) -> None:
    """After a run, drop edges still at -1 and restore each source's ``_node``.

        during:  [A 3] -> [B -1] -> [C 1] -> [D 2]          (B not read this time)
        after:   [A 3] -> [C 1] -> [D 2]                    (B unsubscribed; _sources = head)
    """
    node = target._sources
    head = None
    while node is not None:
        prev = node.prev_source
        if node.version == -1:
            node.source._unsubscribe(node)
            if prev is not None:
                prev.next_source = node.next_source
            if node.next_source is not None:
                node.next_source.prev_source = prev
        else:
            head = node
        node.source._node = node.rollback
        node.rollback = None
        node = prev
    target._sources = head


def _needs_to_recompute(target: Any) -> bool:
    """True if any source changed since ``target`` last read it.

    The version is checked before and after refreshing: a computed source
    only recomputes (and bumps its version) when one of its own sources did.
    """
    node = target._sources
    while node is not None:
        source = node.source
        if (
            source._version != node.version
            or not source._refresh()
            or source._version != node.version
        ):
            return True
        node = node.next_source
    return False


def _release_sources(target: Any) -> None:
    """Unsubscribe ``target`` from everything it depends on."""
    node = target._sources
    while node is not None:
        node.source._unsubscribe(node)
        node = node.next_source
    target._sources = None


# endregion
# region Batching --------------------------------------------------------------


def _start_batch() -> None:
    global _batch_depth
    _batch_depth += 1


def _end_batch() -> None:
    """Leave a batch; the outermost one runs every pending effect/reaction.

    Effects may write signals, which queues more work; rounds repeat until
    quiet.  Every observer runs even if one raises; the first error is
    re-raised once the queue is empty.  A round runs in reverse notification
    order, as Preact's stack does: targets lists are newest-first, so the
    observers of one signal run in the order they subscribed.
    """
    global _batch_depth, _batch_iteration, _pending, _tick_runs
    if _batch_depth > 1:
        _batch_depth -= 1
        return
    error: BaseException | None = None
    while _pending:
        queue, _pending = _pending, []
        _batch_iteration += 1
        for target in reversed(queue):
            target._flags &= ~NOTIFIED
            if not target._flags & DISPOSED and _needs_to_recompute(target):
                if type(target) is _Effect and _over_budget():
                    if not isinstance(error, StormError):
                        error = StormError(
                            f"effect storm: more than {_effect_budget} effect runs in one tick; the rest were "
                            "dropped (an effect writing what other effects read, in a loop?)")
                    continue
                try:
                    target._run()
                except BaseException as exc:  # noqa: BLE001 - re-raised below
                    if error is None:
                        error = exc
    _batch_iteration = 0
    _tick_runs = 0
    _batch_depth -= 1
    if error is not None:
        raise error


def _over_budget() -> bool:
    """Count one effect run against this tick's budget; True when it is spent."""
    global _tick_runs
    _tick_runs += 1
    return 0 < _effect_budget < _tick_runs


def set_effect_budget(runs_per_tick: int) -> None:
    """Set the storm budget: effect runs per outermost batch (0: no limit). Per process."""
    global _effect_budget
    _effect_budget = max(0, int(runs_per_tick))


class _Batch:
    """``with batch():`` — stateless, so one shared instance serves all uses."""

    __slots__ = ()

    def __enter__(self) -> None:
        _start_batch()

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            _end_batch()
            return
        # The body's error is the first one: keep it, note any later ones.
        try:
            _end_batch()
        except BaseException as later:  # noqa: BLE001
            exc.add_note(f"also raised while flushing the batch: {later!r}")


_BATCH = _Batch()


def batch() -> _Batch:
    """Context manager deferring effects/reactions to the end of the outermost batch."""
    return _BATCH


def untracked(fn: Callable[[], T]) -> T:
    """Run ``fn`` without recording its reads as dependencies; return its result."""
    token = _ctx_set(None)
    try:
        return fn()
    finally:
        _ctx_reset(token)


# endregion
# region Signal ----------------------------------------------------------------


class _Source:
    """Something that can be depended on: a version and a list of targets."""

    __slots__ = ("_value", "_version", "_node", "_targets")

    def __init__(self, value: Any) -> None:
        self._value = value
        self._version = 0  # bumped on every change; edges compare against it
        self._node: _Node | None = None  # edge of the innermost evaluation reading us
        self._targets: _Node | None = None  # head of the subscribed-edges list

    def _refresh(self) -> bool:
        return True  # a plain signal is always up to date

    def _subscribe(self, node: _Node) -> None:
        if self._targets is not node and node.prev_target is None:
            node.next_target = self._targets
            if self._targets is not None:
                self._targets.prev_target = node
            self._targets = node

    def _unsubscribe(self, node: _Node) -> None:
        if self._targets is None:
            return
        prev, nxt = node.prev_target, node.next_target
        if prev is not None:
            prev.next_target = nxt
            node.prev_target = None
        if nxt is not None:
            nxt.prev_target = prev
            node.next_target = None
        if node is self._targets:
            self._targets = nxt


class Signal(_Source, Generic[T]):
    """A mutable value; reads inside a computed/effect/reaction are tracked."""

    __slots__ = ()

    def get(self) -> T:
        ctx = _ctx_get()
        if ctx is not None:
            node = _add_dependency(self, ctx)
            if node is not None:
                node.version = self._version
        return self._value

    def peek(self) -> T:
        return self._value

    def set(self, value: T) -> None:
        """Store ``value`` and notify dependents; a no-op if it is the same or equal."""
        global _global_version
        if _debug and _rendering_var.get():
            raise SignalWriteInRender(
                f"Signal.set({value!r}) during a component render: renders must be pure; "
                "write signals in event handlers or effects instead"
            )
        if _writes_dropped:
            return  # a page rendered ahead (prefetch): nothing it does may be observable
        old = self._value
        if value is old or value == old:
            return
        if isinstance(_ctx_get(), Computed):
            raise RuntimeError("Signal.set() inside a Computed: computeds must not have side effects")
        if _batch_iteration > MAX_BATCH_ITERATIONS:
            raise CycleError(f"effects did not settle after {MAX_BATCH_ITERATIONS} rounds")
        self._value = value
        self._version += 1
        _global_version += 1
        node = self._targets
        if node is None:
            return  # nobody subscribed: nothing to schedule
        _start_batch()
        try:
            while node is not None:
                node.target._notify()
                node = node.next_target
        finally:
            _end_batch()

    def update(self, fn: Callable[[T], T]) -> None:
        self.set(fn(self._value))

    @property
    def value(self) -> T:
        return self.get()

    @value.setter
    def value(self, value: T) -> None:
        self.set(value)

    def __repr__(self) -> str:
        return f"Signal({self._value!r})"


def signal(value: T) -> Signal[T]:
    return Signal(value)


class SharedSignal(Signal[T]):
    """A Signal whose value is the same for every session of the process: a GlobalSignal's replica
    (vango_mp.globals makes them; apps use GlobalSignal). Only these may be read by a shared component
    (``@component(shared=True)``): its render is then the same for every session that renders it."""

    __slots__ = ()


# endregion
# region Computed --------------------------------------------------------------


class Computed(_Source, Generic[T]):
    """A lazily evaluated, cached derivation of other signals/computeds."""

    __slots__ = ("_fn", "_sources", "_flags", "_global_version", "_owner")

    def __init__(self, fn: Callable[[], T]) -> None:
        super().__init__(None)
        self._fn = fn
        self._sources: _Node | None = None  # head (tail while running) of our edges
        self._flags = OUTDATED
        self._global_version = _global_version - 1  # "never evaluated"
        self._owner: Owner | None = None
        _adopt(self)

    # -- reading --

    def get(self) -> T:
        if self._flags & RUNNING:
            raise CycleError("Computed read itself while evaluating")
        node = None
        if not self._flags & DISPOSED:
            ctx = _ctx_get()
            if ctx is not None:
                node = _add_dependency(self, ctx)
        self._refresh()
        if node is not None:
            node.version = self._version
        return self._result()

    def peek(self) -> T:
        if not self._refresh():
            raise CycleError("Computed read itself while evaluating")
        return self._result()

    @property
    def value(self) -> T:
        return self.get()

    def _result(self) -> T:
        if self._flags & HAS_ERROR:
            # Reuse the original traceback so repeated reads do not grow it.
            err, tb = self._value
            raise err.with_traceback(tb)
        return self._value

    # -- evaluation --

    def _refresh(self) -> bool:
        """Bring the cached value up to date; False means "already running" (cycle)."""
        flags = self._flags & ~NOTIFIED
        self._flags = flags
        if flags & RUNNING:
            return False
        if flags & DISPOSED and self._version:
            return True  # frozen at its last value
        if flags & (OUTDATED | TRACKING) == TRACKING:
            return True  # subscribed and nothing upstream changed
        self._flags = flags = flags & ~OUTDATED
        if self._global_version == _global_version:
            return True  # no signal anywhere changed since the last check
        self._global_version = _global_version
        self._flags = flags | RUNNING
        if self._version > 0 and not _needs_to_recompute(self):
            self._flags &= ~RUNNING
            return True
        _prepare_sources(self)
        token = _ctx_set(self)
        try:
            value = self._fn()
            old = self._value
            if self._flags & HAS_ERROR or self._version == 0 or not (value is old or value == old):
                self._value = value
                self._flags &= ~HAS_ERROR
                self._version += 1
        except Exception as err:  # noqa: BLE001 - cached, re-raised on read
            self._value = (err, err.__traceback__)
            self._flags |= HAS_ERROR
            self._version += 1
        finally:
            _ctx_reset(token)
            _cleanup_sources(self)
            self._flags &= ~RUNNING
            if self._flags & DISPOSED:
                self._release()
        return True

    # -- subscription: lazy, held only while someone subscribes to us --

    def _subscribe(self, node: _Node) -> None:
        if self._targets is None:
            self._flags |= OUTDATED | TRACKING
            src = self._sources
            while src is not None:
                src.source._subscribe(src)
                src = src.next_source
        super()._subscribe(node)

    def _unsubscribe(self, node: _Node) -> None:
        if self._targets is None:
            return
        super()._unsubscribe(node)
        if self._targets is None:
            self._flags &= ~TRACKING
            src = self._sources
            while src is not None:
                src.source._unsubscribe(src)
                src = src.next_source

    def _notify(self) -> None:
        if not self._flags & NOTIFIED:
            self._flags |= OUTDATED | NOTIFIED
            node = self._targets
            while node is not None:
                node.target._notify()
                node = node.next_target

    # -- disposal --

    def dispose(self) -> None:
        """Detach from sources; later reads return the last value, untracked."""
        if self._flags & DISPOSED:
            return
        self._flags |= DISPOSED
        _disown(self)
        if not self._flags & RUNNING:
            self._release()

    def _release(self) -> None:
        if self._flags & TRACKING:
            self._flags &= ~TRACKING
            _release_sources(self)
        self._sources = None

    def __repr__(self) -> str:
        return f"Computed({self._fn!r})"


def computed(fn: Callable[[], T]) -> Computed[T]:
    return Computed(fn)


memo = computed


# endregion
# region Effect and Reaction ---------------------------------------------------


class _Observer:
    """Shared shape of effects and reactions: always subscribed, run at batch end."""

    __slots__ = ("_sources", "_flags", "_owner")

    def __init__(self) -> None:
        self._sources: _Node | None = None
        self._flags = TRACKING
        self._owner: Owner | None = None

    def _notify(self) -> None:
        if not self._flags & (NOTIFIED | INVALIDATED):
            self._flags |= NOTIFIED
            _pending.append(self)

    def _run(self) -> None:
        raise NotImplementedError

    def dispose(self) -> None:
        if self._flags & DISPOSED:
            return
        self._flags |= DISPOSED
        _disown(self)
        if not self._flags & RUNNING:  # else the running code finishes disposal
            self._finish_dispose()

    def _finish_dispose(self) -> None:
        _release_sources(self)


class _Effect(_Observer):
    __slots__ = ("_fn", "_cleanup")

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__()
        self._fn = fn
        self._cleanup: Callable[[], Any] | None = None  # returned by the last run

    def _run(self) -> None:
        if self._flags & RUNNING:
            raise CycleError("effect re-entered itself")
        self._flags |= RUNNING
        _start_batch()  # writes inside the effect flush after it, not during it
        try:
            self._run_cleanup()
            _prepare_sources(self)
            token = _ctx_set(self)
            # An effect body is not a render, even when created during one.
            rtoken = _rendering_var.set(False) if _debug else None
            try:
                cleanup = self._fn()
            finally:
                if rtoken is not None:
                    _rendering_var.reset(rtoken)
                _ctx_reset(token)
                _cleanup_sources(self)
            if callable(cleanup):
                self._cleanup = cleanup
        finally:
            self._flags &= ~RUNNING
            try:
                if self._flags & DISPOSED:
                    self._finish_dispose()
            finally:
                _end_batch()

    def _run_cleanup(self) -> None:
        cleanup, self._cleanup = self._cleanup, None
        if cleanup is None:
            return
        try:
            untracked(cleanup)
        except BaseException:
            self._flags |= DISPOSED  # a failing cleanup kills its effect
            _disown(self)
            raise

    def _finish_dispose(self) -> None:
        _release_sources(self)
        _start_batch()
        try:
            self._run_cleanup()
        finally:
            _end_batch()


def effect(fn: Callable[[], Callable[[], Any] | None]) -> Callable[[], None]:
    """Run ``fn`` now and again whenever what it read changes; return a disposer.

    ``fn`` may return a cleanup callable, run before the next run and on
    dispose.  If the first run raises, the effect is disposed and the error
    propagates.
    """
    eff = _Effect(fn)
    _adopt(eff)
    try:
        eff._run()
    except BaseException:
        eff.dispose()
        raise
    return eff.dispose


class Reaction(_Observer):
    """Low-level observer: records reads in ``track`` and reports the first change.

    After any dependency changes, ``on_invalidate()`` is called once at the end
    of the batch; it is not called again until the next ``track``.  Components
    use it to mark themselves dirty.
    """

    __slots__ = ("_on_invalidate",)

    def __init__(self, on_invalidate: Callable[[], None]) -> None:
        super().__init__()
        self._on_invalidate = on_invalidate
        _adopt(self)

    def track(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` recording its reads as this reaction's dependencies."""
        if self._flags & DISPOSED:
            return untracked(fn)
        if self._flags & RUNNING:
            raise CycleError("Reaction.track() re-entered")
        self._flags = (self._flags | RUNNING) & ~INVALIDATED
        _prepare_sources(self)
        _start_batch()
        token = _ctx_set(self)
        try:
            return fn()
        finally:
            _ctx_reset(token)
            _cleanup_sources(self)
            self._flags &= ~RUNNING
            if self._flags & DISPOSED:
                self._finish_dispose()
            _end_batch()

    @property
    def invalidated(self) -> bool:
        return bool(self._flags & INVALIDATED)

    def rearm(self, sources: list[Any]) -> bool:
        """Take ``sources`` as read again without running anything: True if they are exactly the ones the
        last ``track`` read (in order); the reaction then reports the next change. False: call ``track``."""
        node = self._sources
        for source in sources:
            if node is None or node.source is not source:
                return False
            node = node.next_source
        if node is not None or self._flags & (DISPOSED | RUNNING):
            return False
        node = self._sources
        while node is not None:
            node.version = node.source._version
            node = node.next_source
        self._flags &= ~INVALIDATED
        return True

    def sources(self) -> list[Any]:
        """What the last ``track`` read (signals and computeds), in read order."""
        out = []
        node = self._sources
        while node is not None:
            out.append(node.source)
            node = node.next_source
        return out

    def _run(self) -> None:
        self._flags |= INVALIDATED
        self._on_invalidate()


# endregion
# region Owner -----------------------------------------------------------------


SMALL_OWNER = 8  # owned disposables an Owner keeps in a list; past it, a dict


class Owner:
    """A disposal scope for effects, reactions, computeds and child owners.

    ``Owner()`` created inside another owner's ``run`` becomes its child
    (``parent=None`` means "the current owner, if any").
    """

    __slots__ = ("_parent", "_children", "_cleanups", "_disposed")

    def __init__(self, parent: Owner | None = None) -> None:
        if parent is None:
            parent = _owner_var.get()
        self._parent = parent
        # Owned disposables in creation order: None, the only one (a component's
        # owner mostly holds just its Reaction: no container), a list of a few
        # (a component's signals and reactions: 88 B where a dict takes 224), or
        # past SMALL_OWNER a dict, for O(1) removal when one is disposed early
        # (long-lived owners must not accumulate them).
        self._children: Any = None
        # Created by the first on_cleanup: most owners (one per component) never get one.
        self._cleanups: list[Callable[[], Any]] | None = None
        self._disposed = False
        if parent is not None:
            parent._adopt(self)

    def run(self, fn: Callable[[], T]) -> T:
        if self._disposed:
            raise RuntimeError("Owner.run() on a disposed Owner")
        token = _owner_var.set(self)
        try:
            return fn()
        finally:
            _owner_var.reset(token)

    def on_cleanup(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on dispose (immediately if already disposed)."""
        if self._disposed:
            fn()
        elif self._cleanups is None:
            self._cleanups = [fn]
        else:
            self._cleanups.append(fn)

    @property
    def disposed(self) -> bool:
        return self._disposed

    def dispose(self) -> None:
        """Dispose owned things in reverse creation order, then run cleanups (reversed).

        Everything is disposed even if some raise; the first error is re-raised.
        """
        if self._disposed:
            return
        self._disposed = True
        if self._parent is not None:
            self._parent._drop(self)
            self._parent = None
        children, self._children = self._children, None
        if children is None:
            children = ()
        elif type(children) is not dict and type(children) is not list:
            children = (children,)
        cleanups, self._cleanups = self._cleanups or (), None
        error: BaseException | None = None
        token = _ctx_set(None)  # cleanups must not subscribe whoever disposes us
        _start_batch()
        try:
            for step in [*(c.dispose for c in reversed(children)), *reversed(cleanups)]:
                try:
                    step()
                except BaseException as exc:  # noqa: BLE001 - re-raised below
                    if error is None:
                        error = exc
        finally:
            _ctx_reset(token)
            try:
                _end_batch()
            except BaseException as exc:  # noqa: BLE001
                if error is None:
                    error = exc
        if error is not None:
            raise error

    def _adopt(self, child: Any) -> None:
        if self._disposed:
            raise RuntimeError(f"cannot create {type(child).__name__} inside a disposed Owner")
        children = self._children
        if children is None:
            self._children = child
        elif type(children) is list:
            if len(children) < SMALL_OWNER:
                children.append(child)
            else:
                self._children = dict.fromkeys(children)
                self._children[child] = None
        elif type(children) is dict:
            children[child] = None
        else:
            self._children = [children, child]
        if isinstance(child, Owner):
            child._parent = self
        else:
            child._owner = self

    def _drop(self, child: Any) -> None:
        """Forget ``child`` (disposed before us)."""
        children = self._children
        if children is child:
            self._children = None
        elif type(children) is list:
            if child in children:
                children.remove(child)
        elif type(children) is dict:
            children.pop(child, None)


def _adopt(obj: Any) -> None:
    owner = _owner_var.get()
    if owner is not None:
        owner._adopt(obj)


def _disown(obj: Any) -> None:
    owner = obj._owner
    if owner is not None:
        owner._drop(obj)
        obj._owner = None


def current_owner() -> Owner | None:
    return _owner_var.get()


def on_cleanup(fn: Callable[[], Any]) -> None:
    """Register ``fn`` to run when the current Owner is disposed."""
    owner = _owner_var.get()
    if owner is None:
        raise RuntimeError("on_cleanup() called with no current Owner (use Owner.run)")
    owner.on_cleanup(fn)


# endregion
# region Debug -----------------------------------------------------------------


def set_debug(flag: bool) -> None:
    """In debug mode, ``Signal.set`` inside ``rendering()`` raises SignalWriteInRender."""
    global _debug
    _debug = bool(flag)


def is_debug() -> bool:
    return _debug


class _RenderScope:
    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _rendering_var.set(True)

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        _rendering_var.reset(self._token)


@contextlib.contextmanager
def dropping_writes() -> Iterator[None]:
    """Signal writes inside are dropped (counted): a page rendered ahead must not change anything."""
    global _writes_dropped
    _writes_dropped += 1
    try:
        yield
    finally:
        _writes_dropped -= 1


def writes_dropped() -> bool:
    """Whether writes are being dropped now (GlobalSignal honours it too)."""
    return _writes_dropped > 0


def rendering() -> _RenderScope:
    """Context manager marking "inside a component render"."""
    return _RenderScope()


# endregion
