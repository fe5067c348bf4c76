"""The event object handed to handlers, and the call that adapts to a handler's arity.

A handler is ``fn(event)`` if it has a required positional parameter (or
``*args``), else ``fn()``. So ``lambda: inc()`` and ``lambda e: set(e.value)``
both work, and the loop-variable idiom ``lambda i=i: remove(i)`` is called
with no arguments. The arity check is cached per code object: it runs on
every click.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from types import CodeType, FunctionType, MethodType
from typing import Any
from weakref import WeakKeyDictionary

__all__ = ["Event", "call_handler", "wants_event"]

_VARARGS = inspect.CO_VARARGS


@dataclass(slots=True)
class Event:
    """One client event: name, target hid, and the payload fields the client sends (docs/PROTOCOL.md)."""

    name: str
    hid: int
    value: Any = None
    checked: bool | None = None
    key: str | None = None
    form: dict[str, Any] = field(default_factory=dict)
    payload: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_payload(cls, name: str, hid: int, payload: dict[str, Any] | None) -> Event:
        """Build from a decoded EVENT frame's payload map (nil -> empty)."""
        if not payload:
            return cls(name, hid)
        form = payload.get("form")
        return cls(
            name,
            hid,
            payload.get("value"),
            payload.get("checked"),
            payload.get("key"),
            form if isinstance(form, dict) else {},
            payload,
        )


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


def call_handler(fn: Callable[..., Any], event: Event) -> Any:
    """Call ``fn(event)`` or ``fn()`` according to its signature."""
    if type(fn) is FunctionType:  # the hot path: a lambda or def from a render
        code = fn.__code__
        wants = _FUNC_WANTS.get(code)
        if wants is None:
            wants = _FUNC_WANTS[code] = _code_wants(fn, code, 0)
    else:
        wants = wants_event(fn)
    return fn(event) if wants else fn()
