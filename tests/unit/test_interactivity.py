"""Typed event payloads, listener options, storm budgets, session tasks and error descriptions."""

from __future__ import annotations

import asyncio
import json

import pytest

from vango_mp import protocol, reactive
from vango_mp.errors import GENERIC_NOTICE, app_line, describe, plain_error_page
from vango_mp.events import (
    Event, FocusEvent, FormData, FormEvent, KeyboardEvent, MouseEvent, ResizeEvent, ScrollEvent, TouchEvent,
    TouchPoint,
)
from vango_mp.reactive import StormError, effect, signal
from vango_mp.tasks import TaskGroup
from vango_mp.vdom import h
from vango_mp.vdom.listeners import Listener, on
from vango_mp.vdom.nodes import EVENT_NAMES
from vango_mp.vdom.safety import UnsafeAttributeError


# -- payloads ------------------------------------------------------------------------------


def test_every_protocol_event_has_a_typed_payload_and_a_listener_name() -> None:
    assert EVENT_NAMES == protocol.EVENT_NAMES
    kinds = {name: type(Event.from_payload(name, 1, None)) for name in protocol.EVENT_NAMES}
    assert {n for n, k in kinds.items() if k is MouseEvent} == protocol.MOUSE_EVENTS
    assert {n for n, k in kinds.items() if k is KeyboardEvent} == protocol.KEY_EVENTS
    assert {n for n, k in kinds.items() if k is TouchEvent} == protocol.TOUCH_EVENTS
    assert {n for n, k in kinds.items() if k is FormEvent} == protocol.FORM_EVENTS
    assert kinds["scroll"] is ScrollEvent and kinds["resize"] is ResizeEvent
    assert kinds["focus"] is FocusEvent is kinds["blur"]


def test_mouse_payload() -> None:
    ev = Event.from_payload("click", 4, {"x": 10, "y": 20, "button": 2, "buttons": 3, "ctrl": True, "meta": True}, 7)
    assert isinstance(ev, MouseEvent) and ev.hid == 4 and ev.cseq == 7
    assert (ev.client_x, ev.client_y, ev.button, ev.buttons) == (10, 20, 2, 3)
    assert (ev.ctrl_key, ev.shift_key, ev.alt_key, ev.meta_key) == (True, False, False, True)


def test_keyboard_payload() -> None:
    ev = Event.from_payload("keyup", 1, {"key": "A", "code": "KeyA", "shift": True, "repeat": True})
    assert isinstance(ev, KeyboardEvent)
    assert (ev.key, ev.code, ev.shift_key, ev.repeat, ev.ctrl_key) == ("A", "KeyA", True, True, False)


def test_scroll_resize_and_touch_payloads() -> None:
    scroll = Event.from_payload("scroll", 1, {"top": 120, "left": 3})
    assert isinstance(scroll, ScrollEvent) and (scroll.scroll_top, scroll.scroll_left) == (120, 3)
    size = Event.from_payload("resize", 1, {"width": 800, "height": 600})
    assert isinstance(size, ResizeEvent) and (size.width, size.height) == (800, 600)
    touch = Event.from_payload("touchend", 1, {"touches": [{"id": 1, "x": 5, "y": 6}],
                                               "changed": [{"id": 2, "x": 7, "y": 8}]})
    assert isinstance(touch, TouchEvent)
    assert touch.touches == [TouchPoint(1, 5, 6)] and touch.changed == [TouchPoint(2, 7, 8)]


def test_form_payload_keeps_every_value() -> None:
    ev = Event.from_payload("change", 1, {
        "value": "b", "values": ["a", "c"], "files": ["x.txt"], "field": "tags",
        "form": {"title": "hi", "tags": ["a", "c"], "color": ["red", "blue"], "upload": "x.txt"},
    })
    assert isinstance(ev, FormEvent)
    assert ev.values == ["a", "c"] and ev.files == ["x.txt"] and ev.field == "tags"
    assert ev.form["title"] == "hi" and ev.form.get("missing", "-") == "-"
    assert ev.form.get_all("color") == ["red", "blue"] and ev.form["color"] == "blue"
    assert ev.form.has("upload") and not ev.form.has("nope")
    assert ev.form.all() == {"title": "hi", "tags": "c", "color": "blue", "upload": "x.txt"}
    assert ev.form == {"title": "hi", "tags": "c", "color": "blue", "upload": "x.txt"}  # a Mapping


def test_untrusted_payload_values_read_as_zero_values() -> None:
    ev = Event.from_payload("mousemove", 1, {"x": "10", "y": 2.5e300, "button": None, "ctrl": "yes"})
    assert (ev.client_x, ev.client_y, ev.button, ev.ctrl_key) == (0, 0, 0, False)
    touch = Event.from_payload("touchstart", 1, {"touches": [5, {"id": "x"}, None], "changed": "no"})
    assert touch.touches == [TouchPoint(0, 0, 0)] and touch.changed == []
    form = Event.from_payload("submit", 1, {"form": {"a": [1, None, "x"], "b": True}, "values": "x"})
    assert form.form.get_all("a") == ["1", "x"] and form.form["b"] == "true" and form.values == []
    assert Event.from_payload("keydown", 1, {"key": 5}).key == ""


def test_formdata_without_fields() -> None:
    assert len(FormData()) == 0 and FormData().get_all("x") == [] and dict(FormData({"a": "1"})) == {"a": "1"}


# -- listener options ----------------------------------------------------------------------


def test_on_carries_its_options_in_data_vo() -> None:
    def search(e: Event) -> None: ...

    el = h.input(on_input=on(search, debounce=300), on_keydown=on(search, keys=["Enter"], prevent_default=True),
                 on_click=lambda: None)
    assert json.loads(el.attrs["data-vo"]) == {"input": {"d": 300}, "keydown": {"k": ["Enter"], "p": 1}}
    assert isinstance(el.events["input"], Listener) and el.events["input"].fn is search
    button = h.button(on_click=on(search, disable_with="Saving…", stop_propagation=True, throttle=50))
    assert json.loads(button.attrs["data-vo"]) == {"click": {"l": 1, "s": 1, "t": 50, "w": "Saving…"}}
    assert button.events["click"].loading and not el.events["input"].loading
    assert "data-vo" not in h.p(on_click=lambda: None).attrs  # plain handlers cost nothing


@pytest.mark.parametrize("kwargs", [
    {"debounce": 0}, {"debounce": 60_001}, {"throttle": 1.5}, {"debounce": 10, "throttle": 10},
    {"keys": []}, {"keys": [""]},
])
def test_on_refuses_bad_options(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        on(lambda: None, **kwargs)


def test_data_vo_cannot_be_set_by_hand_and_unknown_events_are_refused() -> None:
    with pytest.raises(UnsafeAttributeError, match="data-vo"):
        h.div(data_vo='{"click":{"p":1}}')
    with pytest.raises(ValueError, match="unknown event"):
        h.div(on_beforeunload=lambda: None)
    with pytest.raises(TypeError):
        on("not callable")  # type: ignore[arg-type]


# -- storm budgets -------------------------------------------------------------------------


def test_effect_runs_per_tick_are_budgeted() -> None:
    source = signal(0)
    runs: list[int] = []
    disposers = [effect(lambda: runs.append(source.get())) for _ in range(30)]
    runs.clear()
    reactive.set_effect_budget(10)
    try:
        with pytest.raises(StormError, match="more than 10 effect runs in one tick"):
            source.set(1)
        assert len(runs) == 10  # the rest were dropped
        runs.clear()
        reactive.set_effect_budget(0)  # no limit
        source.set(2)
        assert len(runs) == 30
    finally:
        reactive.set_effect_budget(reactive.DEFAULT_EFFECT_RUNS_PER_TICK)
        for dispose in disposers:
            dispose()
    runs.clear()
    source.set(3)  # a fresh tick, a fresh budget
    assert runs == []


def _group(errors: list, rate: float = 100) -> TaskGroup:
    return TaskGroup(asyncio.get_running_loop(), enter=lambda: None, leave=lambda token: None,
                     on_error=lambda exc, label: errors.append((label, exc)), starts_per_second=rate)


def test_task_starts_per_second_are_budgeted() -> None:
    async def go() -> None:
        errors: list = []
        group = _group(errors, rate=5)
        ran: list[int] = []

        async def job(i: int) -> None:
            ran.append(i)

        for i in range(5):
            group.spawn(job(i))
        with pytest.raises(StormError, match="more than 5 task starts per second"):
            group.spawn(job(99))
        await asyncio.sleep(0.01)
        assert sorted(ran) == [0, 1, 2, 3, 4] and errors == []

    asyncio.run(go())


def test_each_step_of_a_task_is_one_batch_and_errors_are_reported() -> None:
    async def go() -> None:
        errors: list = []
        group = _group(errors)
        a, b = signal(0), signal(0)
        seen: list[tuple[int, int]] = []
        dispose = effect(lambda: seen.append((a.get(), b.get())))

        async def job() -> None:
            a.set(1)
            b.set(1)  # same step: the effect sees both at once
            await asyncio.sleep(0)
            a.set(2)
            raise KeyError("after two steps")

        task = group.spawn(job(), "job")
        await task
        assert seen == [(0, 0), (1, 1), (2, 1)]
        [(label, exc)] = errors
        assert label == "job" and isinstance(exc, KeyError)
        dispose()

    asyncio.run(go())


def test_cancel_all_cancels_running_tasks_and_refuses_new_ones() -> None:
    async def go() -> None:
        errors: list = []
        group = _group(errors)
        cancelled: list[str] = []

        async def forever() -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.append("yes")
                raise

        task = group.spawn(forever())
        await asyncio.sleep(0)
        assert len(group) == 1
        assert group.cancel_all() == 1
        with pytest.raises(asyncio.CancelledError):
            await task
        assert cancelled == ["yes"] and errors == []  # cancellation is not an error

        async def late() -> None: ...

        coro = late()
        with pytest.raises(RuntimeError, match="closed"):
            group.spawn(coro)
        assert coro.cr_frame is None  # closed, never left dangling

    asyncio.run(go())


def test_an_async_effect_is_a_task_cancelled_on_unmount() -> None:
    from vango_mp.vdom import Root, component, use_effect

    class FakeSession:
        def __init__(self) -> None:
            self.tasks: list[asyncio.Task] = []

        def spawn(self, coro: object, label: str) -> asyncio.Task:
            self.tasks.append(asyncio.get_running_loop().create_task(coro))  # type: ignore[arg-type]
            return self.tasks[-1]

    async def go() -> None:
        steps: list[str] = []

        @component
        def Page() -> object:
            async def work() -> None:
                steps.append("started")
                await asyncio.sleep(3600)

            use_effect(work)
            return h.p("x")

        session = FakeSession()
        root = Root(Page(), context={"session": session})
        root.render_initial()
        await asyncio.sleep(0)
        [task] = session.tasks
        assert steps == ["started"] and not task.done()
        root.dispose()
        await asyncio.sleep(0)
        assert task.cancelled()
        ssr = Root(Page(), context={})  # a server render: no session, no task
        ssr.render_initial()
        ssr.dispose()
        assert len(session.tasks) == 1

    asyncio.run(go())


# -- what the user and the log see -------------------------------------------------------------


def _raise_here() -> None:
    raise ValueError("from the app <b>")


def test_describe_shows_the_app_line_only_in_dev() -> None:
    try:
        _raise_here()
    except ValueError as exc:
        err = exc
    assert describe(err, dev=False) == (GENERIC_NOTICE, None)
    text, detail = describe(err, dev=True)
    assert text == "ValueError: from the app <b>"
    assert detail is not None and detail.startswith('File "') and "test_interactivity.py" in detail.splitlines()[0]
    assert 'raise ValueError("from the app <b>")' in app_line(err)
    page = plain_error_page("My <App>", "n0nce", err, dev=True)
    assert "from the app &lt;b&gt;" in page and "My &lt;App&gt;" in page and 'nonce="n0nce"' in page
    assert "from the app" not in plain_error_page("App", "n", err, dev=False)


def test_a_task_cancelled_before_its_first_step_closes_its_coroutine() -> None:
    async def go() -> None:
        group = _group([])
        started: list[int] = []

        async def job() -> None:
            started.append(1)

        coro = job()
        task = group.spawn(coro)
        task.cancel()  # in the same loop turn: it never runs
        with pytest.raises(asyncio.CancelledError):
            await task
        assert started == [] and coro.cr_frame is None  # closed: no "never awaited" warning

    asyncio.run(go())
