"""vango_mp.interop without a browser: command chains, names, frames, calls queued per session, validators."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from vango_mp import protocol
from vango_mp.interop import (BrowserCalls, HookEvent, JS, check_name, js, receive_hook, receive_island,
                              register_island_handler)
from vango_mp.protocol import HookPush, IslandPush, ProtocolError
from vango_mp.ratelimit import TokenBucket


class FakeConn:
    def __init__(self) -> None:
        self.frames: list[list[Any]] = []

    def send(self, data: bytes) -> None:
        self.frames.append(protocol.unpack_message(data))


class FakeApp:
    def __init__(self, island_validator: Any = None, hook_validator: Any = None) -> None:
        self.island_validator, self.hook_validator = island_validator, hook_validator


class FakeLocation:
    def __init__(self, app: FakeApp) -> None:
        self.app = app


class FakeRoot:
    def __init__(self, app: FakeApp, handlers: dict[tuple[int, str], Any] | None = None) -> None:
        self.context = {"location": FakeLocation(app)}
        self.handlers = handlers or {}

    def handler(self, hid: int, name: str) -> Any:
        return self.handlers.get((hid, name))


class FakeSession:
    """What interop touches of a Session: alive, conn, id, root, dispatch (run at once here), the event budget."""

    def __init__(self, app: FakeApp, handlers: dict[tuple[int, str], Any] | None = None) -> None:
        self.alive = True
        self.conn: FakeConn | None = FakeConn()
        self.id = "s" * 32
        self.root = FakeRoot(app, handlers)
        self._event_limit = TokenBucket(1000, 1000)
        self.ran: list[Any] = []

    def dispatch(self, fn: Any) -> None:
        self.ran.append(fn())


def test_a_chain_is_compact_json_with_its_commands_in_order() -> None:
    chain = js.focus("#name").add_class("#form", " busy  now ").toggle("#menu")
    assert json.loads(str(chain)) == [["focus", "#name"], ["add_class", "#form", "busy now"], ["toggle", "#menu"]]
    assert js.scroll_into_view("#x", smooth=True) + js.blur("#y") == JS((("scroll", "#x", 1), ("blur", "#y")))
    assert str(js) == "[]"


@pytest.mark.parametrize("bad", [lambda: js.focus(""), lambda: js.add_class("#a", "  "), lambda: js.hide("x" * 300)])
def test_a_chain_refuses_empty_selectors_and_class_names(bad: Any) -> None:
    with pytest.raises(ValueError):
        bad()


@pytest.mark.parametrize("name", ["", "1x", "a b", "x" * 65, "<img>", "a/b"])
def test_names_are_plain(name: str) -> None:
    with pytest.raises(ValueError):
        check_name(name, "event name")
    assert check_name("vango:toast.ok-1", "event name") == "vango:toast.ok-1"


def test_hook_and_island_frames_decode_and_refuse_what_they_must() -> None:
    assert protocol.decode_client(protocol.encode([protocol.HOOK, 4, "moved", {"x": 1}])) == HookPush(4, "moved", {"x": 1})
    assert protocol.decode_client(protocol.encode([protocol.ISLAND, "map", [1, 2]])) == IslandPush("map", [1, 2])
    for bad in ([protocol.HOOK, 4, "bad name", None], [protocol.HOOK, 4, "ok", "text"], [protocol.HOOK, 4, "ok"],
                [protocol.ISLAND, "x" * 65, 1], [protocol.ISLAND, "ok", [[[[1]]]]]):
        with pytest.raises(ProtocolError):
            protocol.decode_client(protocol.encode(bad))


def test_calls_leave_as_one_frame_on_the_next_loop_turn_in_order() -> None:
    async def scenario() -> FakeSession:
        session = FakeSession(FakeApp())
        calls = BrowserCalls(session)
        calls.emit("toast", {"text": "hi", "tags": ("a", "b")})
        calls.run(js.focus("#name").add_class("#f", "busy"))
        calls.revert_hook(7)
        assert session.conn.frames == []  # after the step's patches, not before
        await asyncio.sleep(0)
        return session

    session = asyncio.run(scenario())
    assert session.conn.frames == [[protocol.CALLS, [
        ["e", "toast", {"text": "hi", "tags": ["a", "b"]}], ["c", "focus", "#name"], ["c", "add_class", "#f", "busy"],
        ["r", 7]]]]


def test_calls_of_a_detached_or_first_render_session_are_dropped() -> None:
    BrowserCalls(None).emit("toast")  # the server-side render: nobody to tell, no error

    async def scenario() -> FakeSession:
        session = FakeSession(FakeApp())
        session.conn = None
        BrowserCalls(session).emit("toast")
        await asyncio.sleep(0)
        return session

    assert asyncio.run(scenario()).conn is None


def test_payloads_must_be_plain_data() -> None:
    with pytest.raises(TypeError):
        BrowserCalls(None).emit("toast", {"when": object()})


def test_hook_events_reach_the_elements_handler_unless_the_validator_refuses() -> None:
    seen: list[HookEvent] = []

    def refuse_big(event: HookEvent) -> bool:
        return event.get_int("n") < 100

    session = FakeSession(FakeApp(hook_validator=refuse_big), {(3, "hook"): seen.append})
    receive_hook(session.root.context["location"].app, session, HookPush(3, "moved", {"n": 5, "ok": True}))
    receive_hook(session.root.context["location"].app, session, HookPush(3, "moved", {"n": 500}))
    receive_hook(session.root.context["location"].app, session, HookPush(9, "moved", {"n": 1}))  # no handler
    assert [(e.name, e.get_int("n"), e.get_bool("ok"), e.get_str("n"), e.hid) for e in seen] == \
        [("moved", 5, True, "", 3)]


def test_island_messages_need_a_validator_and_pass_it() -> None:
    got: list[Any] = []
    app = FakeApp(island_validator=lambda island, payload: isinstance(payload, int))
    session = FakeSession(app)
    unregister = register_island_handler(session, "map", got.append)
    receive_island(app, session, IslandPush("map", 4))
    receive_island(app, session, IslandPush("map", "four"))  # refused by the validator
    receive_island(FakeApp(), session, IslandPush("map", 5))  # no validator: refused
    unregister()
    receive_island(app, session, IslandPush("map", 6))  # unregistered
    assert got == [4]
    with pytest.raises(ValueError, match="refused"):
        BrowserCalls(session).send_island("map", "four")
    with pytest.raises(ValueError, match="island_validator"):
        BrowserCalls(FakeSession(FakeApp())).send_island("map", 1)


def test_a_runaway_loop_of_calls_is_cut_at_the_bound(caplog: pytest.LogCaptureFixture) -> None:
    from vango_mp.interop import MAX_PENDING

    async def scenario() -> FakeSession:
        session = FakeSession(FakeApp())
        calls = BrowserCalls(session)
        for i in range(MAX_PENDING + 50):
            calls.emit("tick", i)
        await asyncio.sleep(0)
        return session

    session = asyncio.run(scenario())
    [frame] = session.conn.frames
    assert len(frame[1]) == MAX_PENDING and frame[1][-1] == ["e", "tick", MAX_PENDING - 1]
    assert sum("client calls in one turn" in r.message for r in caplog.records) == 1


def test_unvalidated_hook_events_are_warned_about_once_outside_dev(caplog: pytest.LogCaptureFixture,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from vango_mp import interop

    monkeypatch.setattr(interop, "_warned_unvalidated", False)
    seen: list[HookEvent] = []
    dev = FakeSession(FakeApp(), {(3, "hook"): seen.append})
    dev._settings = SimpleNamespace(dev=True)  # type: ignore[attr-defined]
    receive_hook(FakeApp(), dev, HookPush(3, "a", None))
    assert not any("unvalidated" in r.message for r in caplog.records)
    prod = FakeSession(FakeApp(), {(3, "hook"): seen.append})
    prod._settings = SimpleNamespace(dev=False)  # type: ignore[attr-defined]
    for _ in range(3):
        receive_hook(FakeApp(), prod, HookPush(3, "a", None))
    assert sum("unvalidated" in r.message for r in caplog.records) == 1
    assert len(seen) == 4  # warned, not refused
