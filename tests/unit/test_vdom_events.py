"""Event payloads and arity-adapting handler calls."""

from __future__ import annotations

import functools
from typing import Any

from vango_mp.events import Event, call_handler, wants_event


def test_from_payload() -> None:
    ev = Event.from_payload("submit", 7, {"form": {"title": "milk"}})
    assert (ev.name, ev.hid, ev.form, ev.value, ev.payload) == ("submit", 7, {"title": "milk"}, None, {"form": {"title": "milk"}})
    ev = Event.from_payload("keydown", 3, {"key": "Enter", "shift": True})
    assert ev.key == "Enter" and ev.payload["shift"] is True
    ev = Event.from_payload("input", 3, {"value": "x", "checked": False})
    assert (ev.value, ev.checked) == ("x", False)
    ev = Event.from_payload("click", 1, None)
    assert ev.form == {} and ev.payload == {}
    assert Event.from_payload("submit", 1, {"form": "junk"}).form == {}


def test_call_handler_adapts_to_arity() -> None:
    seen: list[Any] = []
    ev = Event("click", 1)

    def no_args() -> None:
        seen.append("none")

    def one_arg(e: Event) -> None:
        seen.append(e)

    def star(*args: Any) -> None:
        seen.append(args)

    class Widget:
        def on(self, e: Event) -> None:
            seen.append(("method", e))

        def bare(self) -> None:
            seen.append("bare")

    for i in range(2):  # the second round hits the cache
        call_handler(no_args, ev)
        call_handler(one_arg, ev)
        call_handler(lambda: seen.append("lambda"), ev)
        call_handler(lambda e: seen.append(("lambda", e)), ev)
        call_handler(lambda i=i: seen.append(("default", i)), ev)  # the loop-variable idiom: not the event
        call_handler(star, ev)
        call_handler(Widget().on, ev)
        call_handler(Widget().bare, ev)
        call_handler(functools.partial(one_arg), ev)
        call_handler(functools.partial(lambda x: seen.append(("partial", x)), 5), ev)
    assert seen[:10] == [
        "none", ev, "lambda", ("lambda", ev), ("default", 0), (ev,), ("method", ev), "bare", ev, ("partial", 5),
    ]
    assert seen[10:] == [*seen[:4], ("default", 1), *seen[5:10]]


def test_wants_event_for_callable_objects() -> None:
    class Handler:
        def __call__(self, event: Event) -> None:
            pass

    assert wants_event(Handler()) is True
    assert wants_event(print) is True  # no usable signature: pass the event
