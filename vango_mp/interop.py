"""Server -> browser and back, outside the patch stream: emit, client commands, hooks, islands.

What the page's own JavaScript and the server say to each other (see
docs/GUIDE.md, "JS interop"; the frames are in docs/PROTOCOL.md):

* :func:`emit` dispatches a DOM ``CustomEvent`` on ``window`` (toasts,
  analytics), and calls every hook's ``handleEvent`` callback of that name.
* :class:`JS` commands (focus, blur, scroll into view, select, copy, class
  and visibility changes) run in the browser with no round trip: sent from a
  handler (:func:`run_js`), or attached to an element (``data_js_click=``)
  so that a click runs them without asking the server at all.
* Client hooks: ``data_hook="Chart"`` names a hook the page registers with
  ``vango.hook("Chart", {mounted() {...}})``; its ``this.pushEvent(name,
  data)`` reaches the element's ``on_hook=`` handler as a :class:`HookEvent`,
  which may :meth:`~HookEvent.revert` the hook's optimistic change.
* Islands: an element with ``data_island="id"`` (typically a custom element
  the page defines) and :func:`use_island` on the server; every message, in
  both directions, passes ``App(island_validator=...)``. Without a validator
  islands are refused: their payloads come straight from page script.

Calls are queued per session and leave as one CALLS frame on the next turn of
the loop, after the patches of the step that queued them (a ``focus`` can
name an element that handler inserted). They are not sequenced and not kept:
a detached session's calls are dropped, and a resume does not replay them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary, WeakSet

from . import metrics, navigation, protocol
from .events import call_handler
from .security import redact
from .vdom.listeners import Listener

__all__ = ["JS", "js", "HookEvent", "BrowserCalls", "emit", "run_js", "use_browser", "use_island",
           "register_island_handler", "HOOK_EVENT"]

log = logging.getLogger("vango_mp.interop")

HOOK_EVENT = "hook"  # on_hook=fn: the element's handler for its hook's pushEvent
MAX_PENDING = 256  # calls one session may queue between two loop turns; more are dropped (a loop bug)
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,63}$")  # emit names, island ids, hook event names
OPS = frozenset({"focus", "blur", "scroll", "select", "copy", "add_class", "remove_class", "toggle_class",
                 "show", "hide", "toggle"})


def check_name(name: str, what: str) -> str:
    """A name the client may use as an event name or id: a letter, then up to 63 of ``[A-Za-z0-9_.:-]``."""
    if type(name) is not str or not _NAME.match(name):
        raise ValueError(f"{what} {name!r}: a letter, then up to 63 letters, digits or _.:-")
    return name


# ---------------------------------------------------------------- commands


class JS:
    """A chain of client commands, as LiveView's ``JS``: ``js.focus("#name").add_class("#form", "busy")``.

    Each command names its targets with a CSS selector (every match; ``focus``
    and ``select`` the first). ``str()`` is the compact JSON the client reads
    from a ``data-js-<event>`` attribute, so ``h.button("Menu",
    data_js_click=js.toggle_class("#menu", "open"))`` toggles with no round
    trip; :func:`run_js` sends a chain from a handler instead.
    """

    __slots__ = ("ops",)

    def __init__(self, ops: tuple[tuple[Any, ...], ...] = ()) -> None:
        self.ops = ops

    def _then(self, op: str, to: str, arg: Any = None) -> JS:
        if type(to) is not str or not to or len(to) > 256:
            raise ValueError(f"{op}: the target must be a CSS selector of at most 256 characters")
        return JS(self.ops + ((op, to) if arg is None else (op, to, arg),))

    def focus(self, to: str) -> JS:
        """Move the keyboard focus to the first match."""
        return self._then("focus", to)

    def blur(self, to: str) -> JS:
        """Take the focus away from the matches."""
        return self._then("blur", to)

    def scroll_into_view(self, to: str, *, smooth: bool = False) -> JS:
        """Scroll the first match into view."""
        return self._then("scroll", to, 1 if smooth else None)

    def select(self, to: str) -> JS:
        """Select the text of the first matching input or textarea (and focus it)."""
        return self._then("select", to)

    def copy(self, to: str) -> JS:
        """Copy the first match's value (a field) or text to the clipboard (the browser may ask the user)."""
        return self._then("copy", to)

    def add_class(self, to: str, names: str) -> JS:
        return self._then("add_class", to, _classes(names))

    def remove_class(self, to: str, names: str) -> JS:
        return self._then("remove_class", to, _classes(names))

    def toggle_class(self, to: str, names: str) -> JS:
        return self._then("toggle_class", to, _classes(names))

    def show(self, to: str) -> JS:
        """Remove the ``hidden`` attribute of the matches."""
        return self._then("show", to)

    def hide(self, to: str) -> JS:
        """Set the ``hidden`` attribute of the matches."""
        return self._then("hide", to)

    def toggle(self, to: str) -> JS:
        """Flip the ``hidden`` attribute of the matches."""
        return self._then("toggle", to)

    def __add__(self, other: JS) -> JS:
        return JS(self.ops + other.ops)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.ops)

    def __str__(self) -> str:
        return json.dumps([list(op) for op in self.ops], separators=(",", ":"))

    def __repr__(self) -> str:
        return f"JS({list(self.ops)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JS) and other.ops == self.ops

    __hash__ = None  # type: ignore[assignment]


def _classes(names: str) -> str:
    if type(names) is not str or not names.split() or len(names) > 256:
        raise ValueError("class names: a non-empty string of at most 256 characters")
    return " ".join(names.split())


js = JS()  # the empty chain every command starts from


# ---------------------------------------------------------------- per session

_pending: WeakKeyDictionary[Any, list[list[Any]]] = WeakKeyDictionary()
_islands: WeakKeyDictionary[Any, dict[str, Callable[[Any], Any]]] = WeakKeyDictionary()
_overflowed: WeakSet[Any] = WeakSet()  # sessions told (in the log) that this turn's calls overflowed


class BrowserCalls:
    """What the server can ask of one session's browser (see the module docstring)."""

    __slots__ = ("session",)

    def __init__(self, session: Any) -> None:
        self.session = session

    def emit(self, name: str, payload: Any = None) -> None:
        """Dispatch ``CustomEvent(name, {detail: payload})`` on ``window`` and to hooks' ``handleEvent(name)``."""
        self._queue(["e", check_name(name, "event name"), _plain(payload)])

    def run(self, commands: JS) -> None:
        """Run a :class:`JS` chain in the browser."""
        if not isinstance(commands, JS):
            raise TypeError(f"run() takes a JS chain (vango_mp.interop.js...), got {type(commands).__name__}")
        for op in commands:
            self._queue(["c", *op])

    def revert_hook(self, hid: int) -> None:
        """SendHookRevert: the hook on element ``hid`` undoes its optimistic change (its ``reverted()``)."""
        self._queue(["r", int(hid)])

    def send_island(self, island_id: str, payload: Any) -> None:
        """SendIslandMessage: ``payload`` to the island's element as a ``vango:message`` event.

        Raises ValueError when the app's ``island_validator`` refuses it (or there is none).
        """
        check_name(island_id, "island id")
        payload = _plain(payload)
        _validate(_validator_of(self.session), island_id, payload, "out")
        self._queue(["i", island_id, payload])

    def _queue(self, call: list[Any]) -> None:
        session = self.session
        if session is None or not getattr(session, "alive", False):
            return  # the first render, or a session that is gone: nobody to tell
        pending = _pending.get(session)
        if pending is None:
            pending = _pending[session] = []
            asyncio.get_running_loop().call_soon(_deliver, session)
        if len(pending) >= MAX_PENDING:
            metrics.inc("vango_client_calls_dropped_total")
            if session not in _overflowed:  # once per turn: a loop calling emit() must not flood the log too
                _overflowed.add(session)
                log.warning("session %s: over %d client calls in one turn; dropping the rest",
                            redact(session.id), MAX_PENDING)
            return
        pending.append(call)


def _deliver(session: Any) -> None:
    """Send what the session queued as one CALLS frame (after that turn's patches)."""
    calls = _pending.pop(session, None)
    _overflowed.discard(session)
    conn = session.conn
    if calls and conn is not None:
        conn.send(protocol.encode([protocol.CALLS, calls]))


def _plain(value: Any, depth: int = 0) -> Any:
    """``value`` as msgpack-ready plain data (tuples become lists); TypeError for anything else."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    if depth >= 8:
        raise ValueError("payload nested too deeply (8 levels)")
    if isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    raise TypeError(f"a client payload holds None, bool, int, float, str, lists and dicts, not {type(value).__name__}")


def _validate(validator: Callable[[str, Any], Any] | None, island_id: str, payload: Any, direction: str) -> None:
    if validator is None:
        raise ValueError("island messages need App(island_validator=...): their payloads come from page script")
    try:
        result = validator(island_id, payload)
    except Exception as exc:
        raise ValueError(f"island {island_id}: {direction}bound message refused by island_validator: {exc}") from None
    if result is False:
        raise ValueError(f"island {island_id}: {direction}bound message refused by island_validator")


def _session_here() -> Any:
    location = navigation.acting_location()
    if location is None:
        raise RuntimeError("this is for event handlers and effects of a live session (or use use_browser())")
    return location.context.get("session")


def _validator_of(session: Any) -> Callable[[str, Any], Any] | None:
    """The app's island_validator (looked up when a message goes: during the first render the tree is not there)."""
    root = getattr(session, "root", None)
    location = root.context.get("location") if root is not None else None
    app = getattr(location, "app", None)
    return getattr(app, "island_validator", None)


def browser_of(session: Any) -> BrowserCalls:
    """The :class:`BrowserCalls` of ``session`` (None on the first, server-side render: calls do nothing)."""
    return BrowserCalls(session)


def emit(name: str, payload: Any = None) -> None:
    """From an event handler or effect: dispatch ``CustomEvent(name)`` in this session's browser."""
    browser_of(_session_here()).emit(name, payload)


def run_js(commands: JS) -> None:
    """From an event handler or effect: run a :class:`JS` chain in this session's browser."""
    browser_of(_session_here()).run(commands)


def use_browser() -> BrowserCalls:
    """In a component: the calls of its session's browser, for handlers, timers and tasks alike."""
    from .vdom import use_context

    return browser_of(use_context("session"))


# ---------------------------------------------------------------- hooks


@dataclass(slots=True)
class HookEvent:
    """A hook's ``pushEvent(name, data)``, delivered to the element's ``on_hook=`` handler (the reference's HookEvent)."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)
    hid: int = 0
    session: Any = field(default=None, repr=False, compare=False)  # for revert()

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def get_bool(self, key: str) -> bool:
        return self.data.get(key) is True

    def get_int(self, key: str) -> int:
        v = self.data.get(key)
        return v if type(v) is int else int(v) if type(v) is float and v == v and abs(v) < 2**53 else 0

    def get_str(self, key: str) -> str:
        v = self.data.get(key)
        return v if type(v) is str else ""

    get_string = get_str

    def revert(self) -> None:
        """SendHookRevert: ask the hook that pushed this to undo its optimistic change (``reverted()``)."""
        BrowserCalls(self.session).revert_hook(self.hid)


_warned_unvalidated = False


def _warn_unvalidated(session: Any) -> None:
    """Once per worker, outside --dev (as the reference warns at start): hook data reaches handlers as sent."""
    global _warned_unvalidated
    settings = getattr(session, "_settings", None)
    if _warned_unvalidated or settings is None or settings.dev:
        return
    _warned_unvalidated = True
    log.warning("hook events reach their on_hook handlers unvalidated: give App(hook_validator=...) "
                "a function that checks each event's name and data (they come from page script)")


def receive_hook(app: Any, session: Any, frame: protocol.HookPush) -> None:
    """A HOOK frame: validate, then run the element's ``on_hook`` handler in order on the session loop."""
    if not session._event_limit.allow():  # one budget with DOM events (DOMEventRateLimit)
        metrics.inc("vango_events_dropped_total", reason="rate_limited")
        return
    event = HookEvent(frame.name, frame.data or {}, frame.hid, session)
    validator = getattr(app, "hook_validator", None)
    if validator is None:
        _warn_unvalidated(session)
    else:
        try:
            ok = validator(event)
        except Exception as exc:
            ok = False
            log.info("session %s: hook event %r refused: %s", redact(session.id), frame.name, exc)
        if ok is False:
            metrics.inc("vango_events_dropped_total", reason="hook_refused")
            return

    def run() -> Any:
        handler = session.root.handler(frame.hid, HOOK_EVENT)
        if handler is None:
            metrics.inc("vango_events_dropped_total", reason="no_handler")
            return None
        if type(handler) is Listener:  # on_hook=on(fn, ...): the options are the browser's business
            handler = handler.fn
        return call_handler(handler, event)  # type: ignore[arg-type]  # an async one becomes a session task

    session.dispatch(run)


# ---------------------------------------------------------------- islands


def register_island_handler(session: Any, island_id: str, handler: Callable[[Any], Any]) -> Callable[[], None]:
    """RegisterIslandHandler: ``handler(payload)`` gets the island's messages; returns the unregister call."""
    check_name(island_id, "island id")
    handlers = _islands.get(session)
    if handlers is None:
        handlers = _islands[session] = {}
    handlers[island_id] = handler

    def unregister() -> None:
        if handlers.get(island_id) is handler:
            del handlers[island_id]

    return unregister


def use_island(island_id: str, on_message: Callable[[Any], Any]) -> Callable[[Any], None]:
    """In a component: receive the island's messages (validated) while mounted; returns ``send(payload)``.

    ``on_message`` is the one of the first render (as ``use_effect``'s function).
    """
    from .vdom import use_context, use_effect

    session = use_context("session")
    calls = browser_of(session)
    use_effect(lambda: register_island_handler(session, island_id, on_message) if session is not None else None)
    return lambda payload: calls.send_island(island_id, payload)


def receive_island(app: Any, session: Any, frame: protocol.IslandPush) -> None:
    """An ISLAND frame: validated by the app's island_validator, then its handler runs on the session loop."""
    if not session._event_limit.allow():
        metrics.inc("vango_events_dropped_total", reason="rate_limited")
        return
    try:
        _validate(getattr(app, "island_validator", None), frame.island, frame.payload, "in")
    except ValueError as exc:
        metrics.inc("vango_events_dropped_total", reason="island_refused")
        log.info("session %s: %s", redact(session.id), exc)
        return
    handler = (_islands.get(session) or {}).get(frame.island)
    if handler is None:
        metrics.inc("vango_events_dropped_total", reason="no_handler")
        return
    session.dispatch(lambda: handler(frame.payload))
