"""The event objects handed to handlers (typed per kind, as the reference's MouseEvent,
KeyboardEvent, ScrollEvent, ResizeEvent, TouchEvent and FormData), and the call
that adapts to a handler's arity.

Every field is read defensively: the payload comes from the client, so a
missing or mistyped value reads as 0, "" or False, never raises.

A handler is ``fn(event)`` if it has a required positional parameter (or
``*args``), else ``fn()``. So ``lambda: inc()`` and ``lambda e: set(e.value)``
both work, and the loop-variable idiom ``lambda i=i: remove(i)`` is called
with no arguments. The arity check is cached per code object: it runs on
every click.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import CodeType, FunctionType, MethodType
from typing import Any
from weakref import WeakKeyDictionary

__all__ = [
    "Event", "MouseEvent", "KeyboardEvent", "ScrollEvent", "ResizeEvent", "TouchEvent", "TouchPoint",
    "FocusEvent", "FormEvent", "FormData", "call_handler", "wants_event",
]

_VARARGS = inspect.CO_VARARGS


class FormData(Mapping[str, str]):
    """A form's fields as the client sent them: ``form["name"]`` is the (last) value, ``get_all`` every one.

    Repeated names (checkbox groups, ``<select multiple>``) keep all their
    values in order; a file input holds the chosen file names (never contents).
    """

    __slots__ = ("_fields",)

    def __init__(self, fields: Mapping[str, Any] | None = None) -> None:
        self._fields: dict[str, list[str]] = {}
        for name, value in (fields or {}).items():
            items = value if isinstance(value, list) else [value]
            self._fields[str(name)] = [v if isinstance(v, str) else _text(v) for v in items if v is not None]

    def __getitem__(self, name: str) -> str:
        values = self._fields[name]
        return values[-1] if values else ""

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def get_all(self, name: str) -> list[str]:
        """Every value of field ``name`` (a checkbox group's checked boxes; a multi-select's choices)."""
        return list(self._fields.get(name, ()))

    def has(self, name: str) -> bool:
        """Whether the form has a field ``name`` (an unchecked box is absent, as in the browser's FormData)."""
        return name in self._fields

    def all(self) -> dict[str, str]:
        """Each field's (last) value."""
        return {k: self[k] for k in self._fields}

    def __repr__(self) -> str:
        return f"FormData({self._fields!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FormData):
            return self._fields == other._fields
        return Mapping.__eq__(self, other)

    __hash__ = None  # type: ignore[assignment]


def _text(value: Any) -> str:
    return "" if value is None else str(value).lower() if type(value) is bool else str(value)


def _int(value: Any) -> int:
    """A client number as an int (0 for anything else: the payload is untrusted)."""
    if type(value) is int:
        return value
    if type(value) is float and value == value and abs(value) < 2**53:
        return int(value)
    return 0


def _bool(value: Any) -> bool:
    return value is True


@dataclass(slots=True)
class Event:
    """One client event: name, target hid, and the payload fields the client sends (docs/PROTOCOL.md).

    The handler of a mouse, keyboard, scroll, resize, touch, focus or form
    event gets the typed subclass (:class:`MouseEvent` ...); ``payload`` is
    the raw map either way.
    """

    name: str
    hid: int
    value: Any = None
    checked: bool | None = None
    key: str | None = None
    form: FormData = field(default_factory=FormData)
    payload: dict[str, Any] = field(default_factory=dict)
    cseq: int = 0  # the client's number for it (EVENT_DONE names it)

    @classmethod
    def from_payload(cls, name: str, hid: int, payload: dict[str, Any] | None, cseq: int = 0) -> Event:
        """Build the typed event for ``name`` from a decoded EVENT frame's payload map (nil -> empty)."""
        p = payload or {}
        form = p.get("form")
        kind = _KINDS.get(name, cls)
        ev = kind(name, hid, p.get("value"), p.get("checked") if type(p.get("checked")) is bool else None,
                  p.get("key") if type(p.get("key")) is str else None,
                  FormData(form) if isinstance(form, dict) else FormData(), p, cseq)
        ev._fill(p)
        return ev

    def _fill(self, p: dict[str, Any]) -> None:
        """Set the subclass's typed fields from the payload."""


@dataclass(slots=True)
class MouseEvent(Event):
    """click, dblclick, mousedown/up/move, mouseenter/leave, contextmenu: position, buttons, modifiers."""

    client_x: int = 0
    client_y: int = 0
    button: int = 0  # which button changed: 0 main, 1 middle, 2 secondary
    buttons: int = 0  # bitmask of the buttons held
    ctrl_key: bool = False
    shift_key: bool = False
    alt_key: bool = False
    meta_key: bool = False

    def _fill(self, p: dict[str, Any]) -> None:
        self.client_x, self.client_y = _int(p.get("x")), _int(p.get("y"))
        self.button, self.buttons = _int(p.get("button")), _int(p.get("buttons"))
        _modifiers(self, p)


@dataclass(slots=True)
class KeyboardEvent(Event):
    """keydown, keyup: ``key`` ("Enter", "a"), ``code`` ("KeyA"), modifiers, ``repeat`` (held down)."""

    code: str = ""
    ctrl_key: bool = False
    shift_key: bool = False
    alt_key: bool = False
    meta_key: bool = False
    repeat: bool = False

    def _fill(self, p: dict[str, Any]) -> None:
        self.key = self.key or ""
        code = p.get("code")
        self.code = code if type(code) is str else ""
        self.repeat = _bool(p.get("repeat"))
        _modifiers(self, p)


@dataclass(slots=True)
class ScrollEvent(Event):
    """scroll: the element's (or the page's) scroll position in CSS pixels."""

    scroll_top: int = 0
    scroll_left: int = 0

    def _fill(self, p: dict[str, Any]) -> None:
        self.scroll_top, self.scroll_left = _int(p.get("top")), _int(p.get("left"))


@dataclass(slots=True)
class ResizeEvent(Event):
    """resize: the window's inner size in CSS pixels (every listening element hears it)."""

    width: int = 0
    height: int = 0

    def _fill(self, p: dict[str, Any]) -> None:
        self.width, self.height = _int(p.get("width")), _int(p.get("height"))


@dataclass(slots=True, frozen=True)
class TouchPoint:
    """One finger: the browser's touch identifier and its position."""

    id: int
    client_x: int
    client_y: int


@dataclass(slots=True)
class TouchEvent(Event):
    """touchstart/move/end/cancel: ``touches`` still down, ``changed`` the ones this event is about."""

    touches: list[TouchPoint] = field(default_factory=list)
    changed: list[TouchPoint] = field(default_factory=list)

    def _fill(self, p: dict[str, Any]) -> None:
        self.touches, self.changed = _points(p.get("touches")), _points(p.get("changed"))


@dataclass(slots=True)
class FocusEvent(Event):
    """focus, blur: on the listening element itself; ``value`` is a field's value."""


@dataclass(slots=True)
class FormEvent(Event):
    """input, change, submit: ``value``/``checked`` of the field; ``values`` of a multi-select; ``files``
    (names) of a file input; ``form`` every field of the form (submit, or a listener on the form);
    ``field`` the name of the field that changed."""

    values: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    field: str = ""

    def _fill(self, p: dict[str, Any]) -> None:
        self.values, self.files = _strs(p.get("values")), _strs(p.get("files"))
        name = p.get("field")
        self.field = name if type(name) is str else ""


def _modifiers(ev: Any, p: dict[str, Any]) -> None:
    ev.ctrl_key, ev.shift_key = _bool(p.get("ctrl")), _bool(p.get("shift"))
    ev.alt_key, ev.meta_key = _bool(p.get("alt")), _bool(p.get("meta"))


def _strs(value: Any) -> list[str]:
    return [v for v in value if type(v) is str] if type(value) is list else []


def _points(value: Any) -> list[TouchPoint]:
    if type(value) is not list:
        return []
    return [TouchPoint(_int(t.get("id")), _int(t.get("x")), _int(t.get("y"))) for t in value if type(t) is dict]


_KINDS: dict[str, type[Event]] = {
    **dict.fromkeys(("click", "dblclick", "mousedown", "mouseup", "mousemove", "mouseenter", "mouseleave",
                     "contextmenu"), MouseEvent),
    "keydown": KeyboardEvent, "keyup": KeyboardEvent, "scroll": ScrollEvent, "resize": ResizeEvent,
    **dict.fromkeys(("touchstart", "touchmove", "touchend", "touchcancel"), TouchEvent),
    "focus": FocusEvent, "blur": FocusEvent,
    "input": FormEvent, "change": FormEvent, "submit": FormEvent,
}


# code object -> does a function with it want the event?  (bounded by the program's code)
_FUNC_WANTS: dict[CodeType, bool] = {}
_METHOD_WANTS: dict[CodeType, bool] = {}
_OTHER_WANTS: WeakKeyDictionary[Any, bool] = WeakKeyDictionary()


def _code_wants(fn: Any, code: CodeType, bound: int) -> bool:
    """A required positional parameter (beyond ``bound`` already-bound ones) or ``*args``."""
    if code.co_flags & _VARARGS:
        return True
    required = code.co_argcount - bound - len(getattr(fn, "__defaults__", None) or ())
    return required > 0


def _signature_wants(fn: Callable[..., Any]) -> bool:
    """The slow path for partials and callable objects."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            return True
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty:
            return True
    return False


def wants_event(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` should be called with the event (cached)."""
    t = type(fn)
    if t is FunctionType:
        code = fn.__code__  # type: ignore[attr-defined]
        wants = _FUNC_WANTS.get(code)
        if wants is None:
            wants = _FUNC_WANTS[code] = _code_wants(fn, code, 0)
        return wants
    if t is MethodType and type(fn.__func__) is FunctionType:  # type: ignore[attr-defined]
        func = fn.__func__  # type: ignore[attr-defined]
        code = func.__code__
        wants = _METHOD_WANTS.get(code)
        if wants is None:  # its first parameter is already bound
            wants = _METHOD_WANTS[code] = _code_wants(func, code, 1)
        return wants
    try:
        wants = _OTHER_WANTS.get(fn)
        if wants is None:
            wants = _OTHER_WANTS[fn] = _signature_wants(fn)
        return wants
    except TypeError:  # not weak-referenceable / not hashable: no cache
        return _signature_wants(fn)


def call_handler(fn: Callable[..., Any], event: Any, typed: Callable[[Any], Event] | None = None) -> Any:
    """Call ``fn(event)`` or ``fn()`` according to its signature; ``typed(event)`` makes the event it gets
    (only for a handler that takes one: most click handlers do not, and building it costs ~4 µs)."""
    if type(fn) is FunctionType:  # the hot path: a lambda or def from a render
        code = fn.__code__
        wants = _FUNC_WANTS.get(code)
        if wants is None:
            wants = _FUNC_WANTS[code] = _code_wants(fn, code, 0)
    else:
        wants = wants_event(fn)
    if not wants:
        return fn()
    return fn(typed(event) if typed is not None else event)
