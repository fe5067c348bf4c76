"""Per-listener options: ``on_input=on(search, debounce=300)``.

The options are the client's business (as LiveView's ``phx-debounce``,
``phx-throttle``, ``phx-key``, ``phx-disable-with``): the element carries
them in one attribute, ``data-vo``, a JSON map from event name to its
options, and vango.js acts on them before anything reaches the socket.
The server keeps only the handler (and, for ``loading``, answers the event
with EVENT_DONE when the handler, or its async task, is finished).

Keys in ``data-vo`` (short: every listening element carries them):
``d`` debounce ms, ``t`` throttle ms, ``p`` preventDefault, ``s``
stopPropagation, ``k`` list of accepted ``event.key`` values, ``l``
loading state, ``w`` the disable-with text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["Listener", "on", "options_attr"]


class Listener:
    """A handler with options; callable like the handler itself."""

    __slots__ = ("fn", "options", "loading")

    def __init__(self, fn: Callable[..., Any], options: dict[str, Any]) -> None:
        self.fn = fn
        self.options = options
        self.loading = "l" in options  # the server answers with EVENT_DONE

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args)

    def __repr__(self) -> str:
        return f"on({getattr(self.fn, '__name__', self.fn)!r}, {self.options!r})"


def on(
    fn: Callable[..., Any],
    *,
    debounce: int | None = None,
    throttle: int | None = None,
    prevent_default: bool = False,
    stop_propagation: bool = False,
    keys: Iterable[str] | None = None,
    loading: bool = False,
    disable_with: str | None = None,
) -> Listener:
    """Wrap ``fn`` with client-side options for one event of one element.

    ``debounce``: ms of quiet before the event is sent (a blur sends a pending
    one at once; a submit of the form too). ``throttle``: at most one event per
    so many ms (the first at once, the last of a burst at the end).
    ``prevent_default`` / ``stop_propagation``: as the DOM methods.
    ``keys``: only these ``event.key`` values are sent (``keys=["Enter"]``).
    ``loading``: while the event is in flight (until its handler, async too,
    is done) the element has ``aria-busy="true"`` and class
    ``vango-loading``; ``disable_with`` also disables it and shows that text.

    >>> h.input(on_input=on(search, debounce=300))
    >>> h.button("Save", on_click=on(save, disable_with="Saving…"))
    """
    if not callable(fn):
        raise TypeError(f"on() wants a callable handler, got {type(fn).__name__}")
    if debounce is not None and throttle is not None:
        raise ValueError("on(): debounce and throttle exclude each other")
    opts: dict[str, Any] = {}
    for code, ms, what in (("d", debounce, "debounce"), ("t", throttle, "throttle")):
        if ms is not None:
            if type(ms) is not int or not 0 < ms <= 60_000:
                raise ValueError(f"on(): {what} must be an int of milliseconds in 1..60000, got {ms!r}")
            opts[code] = ms
    if prevent_default:
        opts["p"] = 1
    if stop_propagation:
        opts["s"] = 1
    if keys is not None:
        key_list = [keys] if isinstance(keys, str) else list(keys)
        if not key_list or not all(isinstance(k, str) and k for k in key_list):
            raise ValueError("on(): keys must be non-empty key names such as 'Enter' or 'Escape'")
        opts["k"] = key_list
    if loading or disable_with is not None:
        opts["l"] = 1
    if disable_with is not None:
        opts["w"] = str(disable_with)
    return Listener(fn, opts)


def options_attr(events: dict[str, Any]) -> str | None:
    """The ``data-vo`` value for an element's handlers, or None when none has options."""
    out = {name: fn.options for name, fn in events.items() if type(fn) is Listener and fn.options}
    return json.dumps(out, separators=(",", ":"), sort_keys=True, ensure_ascii=False) if out else None
