"""One user session: its component tree, event loop task and patch history.

A session lives on the worker's IOLoop. Client events and dispatched
callbacks are applied strictly in order by one task; after each, the dirty
components re-render and the diff leaves as one PATCHES frame with the next
sequence number. Frames are kept in a bounded history so a client that
reconnects can be caught up by replay; past the history it gets a FULL.

Its lifecycle state (attached, detached, cold, handed over, closed) belongs
to :class:`vango_mp.sessions.SessionOwner`, which alone changes it; a
session only does the mechanics the owner asks for (bind a connection,
release its tree) and asks the owner when it must end itself.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from . import metrics, navigation, protocol
from .dirtybatch import DirtyBatch
from .errors import report
from .events import Event, call_handler
from .identity import identity
from .observability import logs, prom
from .patchhistory import PatchHistory
from .protocol import Close
from .ratelimit import TokenBucket
from .reactive import Signal, batch
from .security import redact
from .settings import Settings
from .tasks import TaskGroup
from .vdom import shared
from .vdom.listeners import Listener
from .vdom.mount import Root

log = logging.getLogger("vango_mp.session")

YIELD_EVERY = 16  # items a session applies before letting other sessions run
# Renders in a row that raised outside any ErrorBoundary after which the page counts as unusable:
# the session ends (4001) and the browser reloads into a fresh one (vango_mp.errors).
MAX_RENDER_FAILURES = 3
_inline: list[Session | None] = [None]  # the session applying an event inline (Session._step_inline), if any
_DIRTY = DirtyBatch()  # the worker's idle sessions dirtied outside an event (notify_dirty)


def _typed(frame: protocol.ClientEvent) -> Event:
    """The typed event a handler gets (MouseEvent, FormEvent ...) for a queued EVENT frame."""
    return Event.from_payload(frame.name, frame.hid, frame.payload, frame.cseq)


class State(enum.Enum):
    """Where a session is in its lifecycle (transitions: :mod:`vango_mp.sessions.states`)."""

    ATTACHED = "attached"  # live here, a socket bound
    DETACHED = "detached"  # live here, resumable for ResumeWindow
    COLD = "cold"  # here only as its sealed blob (the cold tier)
    HANDED_OVER = "handed_over"  # another worker (or the store) owns it now
    CLOSED = "closed"  # gone for good; ``end_reason`` says why


_LIVE = frozenset((State.ATTACHED, State.DETACHED))  # the states in which a session is ``alive``


class Connection(Protocol):
    """What a session needs of its socket."""

    def send(self, data: bytes) -> None: ...

    def close(self, code: int, reason: str) -> None: ...

    def pending_output(self) -> int: ...


class SessionError(RuntimeError):
    """A session used before it was started."""


class Ender(Protocol):
    """The owner, as far as a session needs it: to end itself (dispatch overflow)."""

    def end(self, session: Session, code: int, reason: str, metric: str) -> None: ...


class Session:
    """State, ordered event processing and patch history of one user."""

    __slots__ = (
        "id", "ip", "path", "root", "blob", "_state", "alive", "end_reason", "seq", "created", "last_active", "conn",
        "history", "_events", "_dispatches", "_task", "_loop", "_settings",
        "_event_limit", "_resync_limit", "data", "owner", "_user", "authenticated", "__weakref__",
        "browser", "user_key", "csrf_token",
        "cost", "cost_stale", "saved_seq", "tasks", "render_failures",
    )

    def __init__(self, session_id: str, root: Root | None, *, settings: Settings, ip: str, path: str) -> None:
        self.id = session_id
        self.ip = ip
        self.path = path
        self.root: Root = root  # type: ignore[assignment]  # None only while COLD: ``blob`` holds it then
        self.blob: bytes | None = None
        self.state = State.DETACHED  # changed by the owner only (vango_mp.sessions)
        self.end_reason = ""  # why it is CLOSED or HANDED_OVER (a metric label)
        self.seq = 0
        self.created = self.last_active = time.monotonic()
        self.conn: Connection | None = None
        # Created on first use: an idle session should cost as little as possible.
        self.history: PatchHistory | None = None  # frames sent, not yet acknowledged
        self._events: deque[protocol.ClientEvent | protocol.Navigate] | None = None
        self._dispatches: deque[Callable[[], Any]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._settings = settings
        self._event_limit = TokenBucket(settings.dom_event_rate, settings.dom_event_burst)
        self._resync_limit = TokenBucket(settings.resync_rate, settings.resync_burst)
        self.data: dict[str, Any] = {}  # session KV (persisted with the session)
        self.owner: Ender | None = None
        self._user: Signal[Any] = Signal(None)  # auth projection (``user``): runtime only, never persisted
        self.authenticated = False  # whether a user was ever set: resume must revalidate
        self.user_key: str | None = None  # identity(user) of the last user set (sealed; resumes must match)
        self.browser = ""  # browser_key of the browser that opened it (sealed; resumes must match)
        self.csrf_token = ""  # that browser's CSRF token, for forms the page renders (never sealed)
        # Memory estimate (vango_mp.cost), redone lazily by the memory check,
        # only for sessions that rendered since (cost_stale).
        self.cost = 0
        self.cost_stale = True
        # The seq of its last checkpoint (vango_mp.checkpoint); an untouched new
        # session has nothing worth saving.
        self.saved_seq = 0
        self.tasks: TaskGroup | None = None  # its async handlers, effects, resources, intervals (vango_mp.tasks)
        self.render_failures = 0  # renders in a row that raised (MAX_RENDER_FAILURES)

    @property
    def user(self) -> Any:
        """The authenticated user, None for a guest; reactive: a render that reads it re-renders on a change."""
        return self._user.get()

    @user.setter
    def user(self, value: Any) -> None:
        self._user.set(value)

    def set_user(self, user: Any) -> None:
        """Record the authenticated user (hooks call this); a resume must then present the same user."""
        self.user = user
        if user is not None:
            self.authenticated = True
            self.user_key = identity(user)

    # -- mechanics the owner drives -------------------------------------------

    def start(self) -> None:
        """Bind the session to the running loop, if any; its task runs whenever it has work.

        Without a loop (unit tests of the owner) nothing runs until ``flush``.
        """
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        if self.root is not None and self.root.dirty:
            self._wake()  # an effect of the first render wrote a signal: its patches go out after WELCOME

    def bind(self, conn: Connection) -> None:
        """Frames now go to ``conn``."""
        self.conn = conn
        self.touch()

    def unbind(self) -> Connection | None:
        """Stop sending (the socket closed or is being replaced); the old connection."""
        conn, self.conn = self.conn, None
        self.touch()
        return conn

    def release(self, code: int = Close.NORMAL, reason: str = "") -> None:
        """Close the socket (if any) with ``code``, stop the queues, dispose the tree."""
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close(code, reason)
        self._events = self._dispatches = self.history = None
        if self.tasks is not None:
            self.tasks.cancel_all()  # none outlives the session
        if self.root is not None:
            self.root.dispose()

    @property
    def state(self) -> State:
        """Its lifecycle state (changed by the owner only: vango_mp.sessions)."""
        return self._state

    @state.setter
    def state(self, state: State) -> None:
        self._state = state
        # Live here: its tree is mounted and its loop may run. Read on every flush and frame of a
        # fan-out, so kept as a plain attribute, set with the state (a property read costs a call).
        self.alive = state in _LIVE

    @property
    def history_bytes(self) -> int:
        """Bytes held by the patch history (exact on every frame: the memory estimate reads it)."""
        history = self.history
        return history.size if history is not None else 0

    @property
    def queued(self) -> int:
        """Events and dispatched callbacks waiting to run."""
        return len(self._events or ()) + len(self._dispatches or ())

    def touch(self) -> None:
        self.last_active = time.monotonic()

    # -- input -------------------------------------------------------------

    def queue_event(self, frame: protocol.ClientEvent) -> bool:
        """Queue a client event; False (and counted) when dropped.

        A flood is not answered (no EVENT_DONE for a rate-limited or
        queue-full drop): the client's loading states end on its next WELCOME.
        """
        if not self._event_limit.allow():
            metrics.inc("vango_events_dropped_total", reason="rate_limited")
            return False
        return self._enqueue(frame)  # typed (events.Event) only for a handler that takes it

    def _enqueue(self, item: protocol.ClientEvent | protocol.Navigate) -> bool:
        """Append to the event queue (bounded: MaxEventQueue) and make sure the loop runs."""
        events = self._events
        if events is None:
            events = self._events = deque()
        elif len(events) >= self._settings.max_event_queue:
            metrics.inc("vango_events_dropped_total", reason="queue_full")
            return False
        events.append(item)  # type: ignore[arg-type]
        self.last_active = time.monotonic()
        if (self._task is None and _inline[0] is None and len(events) == 1 and not self._dispatches
                and self.alive and self._loop is not None and asyncio._get_running_loop() is self._loop):
            self._step_inline()
        else:
            self._wake()
        return True

    def _step_inline(self, step: Callable[[], Any] | None = None) -> None:
        """The session is idle: apply the one queued item now, in the socket's read callback
        (or ``step``: the batch's flush of a session dirtied outside an event).

        The step the task would take, without a Task and a loop turn per click
        (bench/baseline.py: issue 15). What the step leaves behind (a dispatch
        it queued, a component dirtied again) goes to the task as before, so
        the order holds; one inline step at a time (no nesting). A wake asked
        for during the step (a component dirtied again, a dispatch) is left to
        the check after it, as the task's loop re-checks after each step.
        """
        _inline[0] = self
        token = logs.session_id.set(self.id)
        try:
            (step or self._step)()
        except Exception:  # a fault of ours, not the app's (those are reported in _apply/flush): keep the socket
            log.exception("session %s: applying an event failed", redact(self.id))
        finally:
            logs.session_id.reset(token)
            _inline[0] = None
        if self.alive and (self._dispatches or self._events or self.root.dirty):
            self._wake()

    def dispatch(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the session loop; safe from any thread."""
        loop = self._loop
        if loop is None:
            raise SessionError("session not started")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._enqueue_dispatch(fn)
        else:
            loop.call_soon_threadsafe(self._enqueue_dispatch, fn)

    def _enqueue_dispatch(self, fn: Callable[[], Any]) -> None:
        if not self.alive:
            return
        dispatches = self._dispatches
        if dispatches is None:
            dispatches = self._dispatches = deque()
        elif len(dispatches) >= self._settings.max_dispatch_queue:
            # Dispatches must never be dropped silently: end the session so the client reloads.
            log.error("session %s: dispatch queue overflow", redact(self.id))
            if self.owner is not None:
                self.owner.end(self, Close.SESSION_EXPIRED, "dispatch queue overflow", "dispatch_overflow")
            return
        dispatches.append(fn)
        self._wake()

    def notify_dirty(self) -> None:
        """Called by the tree when a component went dirty outside an event (globals, timers).

        An idle session joins the worker's batch of dirty sessions: a global
        write that dirties 10,000 of them flushes them in a few loop callbacks
        rather than 10,000 Tasks (issue 13: fan-out).
        """
        if self._task is None and self._loop is not None and self.alive and _inline[0] is not self:
            _DIRTY.add(self, self._loop)
        else:
            self._wake()

    def flush_idle(self) -> None:
        """The batch's turn: flush inline if still idle (nothing queued, no task), else let the task do it."""
        if not self.alive:
            return
        if self._task is None and not self._dispatches and not self._events and _inline[0] is None:
            self._step_inline(self.flush)  # nothing queued: the step is the flush
        else:
            self._wake()

    def _wake(self) -> None:
        """Make sure the session's task is running (it exits when the work is done)."""
        # While it applies an event inline, the check after the step takes the place of a wake.
        if self._task is None and self._loop is not None and self.alive and _inline[0] is not self:
            self._task = self._loop.create_task(self._run())

    # -- the loop ------------------------------------------------------------

    async def _run(self) -> None:
        """Apply dispatches and events in order, one PATCHES frame after each.

        One task per session at a time; it yields to the loop every few items
        so a busy session cannot starve the others, and ends when idle.
        """
        logs.bind_session(self.id)  # this task's log lines name the session (short id)
        try:
            done = 0
            while self.alive and (self._dispatches or self._events or self.root.dirty):
                self._step()
                done += 1
                if done % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
        finally:
            self._task = None
        if self.alive and (self._dispatches or self._events):
            self._wake()  # work arrived after the loop's last check

    def _step(self) -> None:
        if self._dispatches:
            self._apply(self._dispatches.popleft(), None)
        elif self._events:
            event = self._events.popleft()
            started = time.perf_counter()
            if type(event) is protocol.Navigate:
                self._apply(lambda: self._location().go(event.url, event.mode), None)
                self.flush()
                prom.record_navigation(self.route, time.perf_counter() - started)
                return
            handler = self.root.handler(event.hid, event.name)
            if handler is None:
                metrics.inc("vango_events_dropped_total", reason="no_handler")
                self._send_done(event.cseq)  # its element stopped listening: end a loading state
                return
            task = self._apply(handler, event)
            sent = self.flush()
            prom.record_event(self.route, time.perf_counter() - started, sent)
            if type(handler) is Listener and handler.loading:
                self._done_when(task, event.cseq)
            return
        self.flush()

    @property
    def route(self) -> str:
        """The pattern of the page shown (``/items/{id:int}``): the ``route`` label of its metrics."""
        location = self._location()
        return location.resolved.pattern if location is not None else ""

    def _apply(self, fn: Callable[..., Any], event: protocol.ClientEvent | None) -> asyncio.Task[Any] | None:
        """Run a handler or dispatched callback in a batch; an ``async def`` one goes on as a task (returned)."""
        token = navigation.acting(self._location())  # navigate() in the handler moves this session
        name = event.name if event is not None else "dispatch"
        try:
            with batch():
                if event is None:
                    result = fn()
                else:
                    result = call_handler(fn.fn if type(fn) is Listener else fn, event, _typed)
                    metrics.inc("vango_events_total")
                if result is not None and asyncio.iscoroutine(result):  # most handlers return None: skip the ABC check (~1 µs)
                    return self.spawn(result, f"async handler of {name}")
        except Exception as exc:
            metrics.inc("vango_handler_errors_total")
            report(self, "handler", exc, event=name, hid=event.hid if event is not None else 0)
        finally:
            navigation.done_acting(token)
        return None

    def spawn(self, coro: Any, label: str = "task",
              done: Callable[[asyncio.Task[Any]], None] | None = None) -> asyncio.Task[Any]:
        """Run ``coro`` as a task this session owns (vango_mp.tasks): cancelled when it closes;
        every step's writes are patched like a handler's; its error is reported like one."""
        if self.tasks is None:
            location = self._location
            self.tasks = TaskGroup(
                self._loop, enter=lambda: navigation.acting(location()), leave=navigation.done_acting,
                on_error=lambda exc, what: report(self, "task", exc, event=what),
                starts_per_second=self._settings.max_task_starts_per_second)
        return self.tasks.spawn(coro, label, done)

    def _done_when(self, task: asyncio.Task[Any] | None, cseq: int) -> None:
        """Tell the client its event ``cseq`` is done (its loading state ends): now, or when ``task`` ends."""
        def done(_: Any = None) -> None:
            self.flush()  # the task's last writes go before the EVENT_DONE
            self._send_done(cseq)

        if task is None:
            done()
        else:
            task.add_done_callback(done)

    def _send_done(self, cseq: int) -> None:
        if self.conn is not None and self.alive:
            self.conn.send(protocol.encode_event_done(cseq))

    def _location(self) -> navigation.Location | None:
        return self.root.context.get("location") if self.root is not None else None

    def flush(self) -> int:
        """Re-render dirty components and send the diff: one PATCHES frame, or one NAV after a navigation.

        Returns how many patch operations went out.
        """
        if not self.alive:
            return 0
        patches: list[Any] = []
        if self.root.dirty:
            try:
                patches = self.root.rerender()
            except Exception as exc:
                # The tree is unchanged and the failed component re-renders on its next change.
                metrics.inc("vango_render_errors_total")
                report(self, "render", exc)
                self.render_failures += 1
                if self.render_failures >= MAX_RENDER_FAILURES and self.owner is not None:
                    log.error("session %s: %d renders in a row raised; ending it (the browser reloads)",
                              redact(self.id), self.render_failures)
                    self.owner.end(self, Close.SESSION_EXPIRED, "page cannot render", "render_errors")
                return 0
            finally:
                if self.root.errors:
                    self.report_root_errors()
            self.render_failures = 0
            self.cost_stale = True
        elif self.root.errors:
            self.report_root_errors()  # from the first render, or an effect outside a render
        location = self.root.context.get("location")  # (_location, inline: once per frame)
        nav = location.take() if location is not None and location.pending is not None else None
        if nav is not None:
            assert location is not None
            self.path = location.resolved.url
            self.seq += 1
            self._send_frame(self.seq, protocol.encode_nav(self.seq, nav.url, nav.mode, location.title, patches,
                                                           location.meta, nav.scroll))
            metrics.inc("vango_navigations_total")
            return len(patches)
        if not patches:
            return 0
        self.seq += 1
        self._send_frame(self.seq, shared.frame(self.seq, patches, protocol.encode_patches))
        metrics.inc("vango_patch_frames_total")
        return len(patches)

    def report_root_errors(self) -> None:
        """Report what the tree handled itself (a boundary's fallback, a reset component, an effect)."""
        errors = self.root.errors if self.root is not None else None
        while errors:
            kind, exc = errors.pop(0)
            report(self, kind, exc, logged=True)

    def prefetch(self, url: str) -> None:
        """Render ``url``'s page ahead (rate-limited; nothing observable happens) for the click that follows."""
        location = self._location()
        try:
            done = location is not None and location.prefetch(url)
        except Exception:  # a page that fails to render ahead will fail (and be logged) when visited
            log.debug("session %s: prefetch of %s failed", redact(self.id), url, exc_info=True)
            done = False
        metrics.inc("vango_prefetches_total", result="rendered" if done else "skipped")
        if done:
            self.cost_stale = True

    def drop_aside(self) -> int:
        """Drop kept-alive and prefetched pages (memory pressure takes them first)."""
        location = self._location()
        dropped = location.drop_aside() if location is not None else 0
        if dropped:
            self.cost_stale = True
        return dropped

    def queue_navigate(self, frame: protocol.Navigate) -> bool:
        """Queue a navigation in order with the events (the client clicked a link, or went Back)."""
        return self._enqueue(frame)

    def record_frame(self, seq: int, frame: bytes) -> None:
        """Keep a frame in the history (sent to the client on its catch-up) without sending it now."""
        conn, self.conn = self.conn, None
        try:
            self._send_frame(seq, frame)
        finally:
            self.conn = conn

    def _send_frame(self, seq: int, frame: bytes) -> None:
        limit = self._settings.max_patch_history
        if limit:  # max_patch_history = 0 keeps nothing
            history = self.history
            if history is None:
                self.history = PatchHistory(seq, frame)
            else:
                history.add(seq, frame, limit)
        if self.conn is not None:
            self.conn.send(frame)

    # -- resume --------------------------------------------------------------

    def acked(self, seq: int) -> None:
        """The client applied every frame up to ``seq``: it can never ask for those again."""
        self.touch()
        if self.history is not None and self.history.ack(seq):
            self.history = None  # idle sessions keep no container

    def load_history(self, frames: list[tuple[int, bytes]]) -> None:
        """Take over the patch frames a previous owner sent (a moved session replays them)."""
        self.history = PatchHistory.of(frames, self._settings.max_patch_history)

    def catch_up(self, last_seq: int) -> None:
        """Bring a (re)connected client from ``last_seq`` to now: replay, or FULL."""
        self.flush()
        if last_seq == self.seq:
            return
        missed = self.history.after(last_seq) if self.history is not None and last_seq < self.seq else None
        if missed is not None:
            assert self.conn is not None
            for frame in missed:
                self.conn.send(frame)
            return
        self.send_full()

    def request_resync(self, last_seq: int) -> bool:
        """A client asked to resync; False when over the resync rate limit."""
        if not self._resync_limit.allow():
            return False
        self.catch_up(last_seq)
        return True

    def send_full(self) -> None:
        """Send the whole tree as HTML (the client replaces its root)."""
        if self.conn is not None:
            self.conn.send(protocol.encode_full(self.seq, self.root.html()))
