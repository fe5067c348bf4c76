"""Every event payload, listener option and loading state, in Chromium (tests/apps/eventsapp.py).

The app records each event it handled, typed (``GET /log``); frames the browser
sends are counted from Playwright's WebSocket ``framesent`` (decoded msgpack).
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import msgpack
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import Server, module_server
from vango_mp import protocol

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


srv = module_server("--workers", "1", "--app", "tests.apps.eventsapp:app")


class Wire:
    """The EVENT frames this page's socket sent: [(hid, name, payload)]."""

    def __init__(self, page: Page) -> None:
        self.sent: list[tuple[int, str, Any]] = []
        page.on("websocket", lambda ws: ws.on("framesent", self._frame))

    def _frame(self, data: Any) -> None:
        if isinstance(data, (bytes, bytearray)) and data[:1] == b"\x00":
            frame = msgpack.unpackb(bytes(data[1:]), raw=False)
            if frame[0] == protocol.EVENT:
                self.sent.append((frame[2], frame[3], frame[4]))

    def named(self, name: str) -> list[Any]:
        return [payload for _, n, payload in self.sent if n == name]


def log_of(server: Server) -> list[dict[str, Any]]:
    with urllib.request.urlopen(server.url + "/log", timeout=5) as resp:
        return json.loads(resp.read())["events"]


def events_after(server: Server, start: int, name: str, count: int = 1, timeout: float = 10.0) -> list[dict]:
    """The first ``count`` events named ``name`` the app recorded after index ``start``."""
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in log_of(server)[start:] if e["name"] == name]
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no {count} {name!r} events after #{start}: {log_of(server)[start:]}")
        time.sleep(0.05)


def wait_for(server: Server, start: int, predicate: Any, timeout: float = 10.0) -> list[dict]:
    """The events recorded after ``start`` once ``predicate(events)`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        evs = log_of(server)[start:]
        if predicate(evs):
            return evs
        if time.monotonic() > deadline:
            raise AssertionError(f"condition never held; events: {evs}")
        time.sleep(0.05)


def open_page(page: Page, server: Server) -> tuple[Wire, int]:
    wire = Wire(page)
    page.goto(server.url + "/")
    page.wait_for_function("() => window.vango && window.vango.state === 'open'")
    return wire, len(log_of(server))


def test_mouse_payloads(srv: Server, page: Page) -> None:
    _, start = open_page(page, srv)
    box = page.locator("#clicker").bounding_box()
    assert box is not None
    page.click("#clicker", position={"x": 5, "y": 6}, modifiers=["Shift"])
    [down] = events_after(srv, start, "mousedown")
    [click] = events_after(srv, start, "click")
    assert click["type"] == "MouseEvent" and down["type"] == "MouseEvent"
    f = click["fields"]
    assert (f["client_x"], f["client_y"]) == (round(box["x"] + 5), round(box["y"] + 6))
    assert f["shift_key"] and not f["ctrl_key"] and f["button"] == 0
    assert down["fields"]["buttons"] == 1  # the main button held
    page.dblclick("#clicker")
    assert events_after(srv, start, "dblclick")[0]["type"] == "MouseEvent"
    page.click("#clicker", button="right")
    assert events_after(srv, start, "contextmenu")[0]["fields"]["button"] == 2
    prevented = page.evaluate("""() => { const e = new MouseEvent('contextmenu', {bubbles: true, cancelable: true});
        document.getElementById('clicker').dispatchEvent(e); return e.defaultPrevented; }""")
    assert prevented is True  # on(..., prevent_default=True)
    page.hover("#hover")
    page.hover("#clicker")
    assert events_after(srv, start, "mouseenter")[0]["type"] == "MouseEvent"
    assert events_after(srv, start, "mouseleave")[0]["type"] == "MouseEvent"


def test_keyboard_payloads_and_key_filter(srv: Server, page: Page) -> None:
    wire, start = open_page(page, srv)
    page.focus("#keys")
    page.keyboard.press("Shift+KeyA")
    downs = events_after(srv, start, "keydown")
    ups = events_after(srv, start, "keyup")
    a = [e["fields"] for e in downs if e["fields"]["code"] == "KeyA"][0]
    assert a["key"] == "A" and a["shift_key"] and a["repeat"] is False
    assert any(e["fields"]["code"] == "KeyA" for e in ups)
    hid = int(page.get_attribute("#enter-only", "data-hid") or 0)
    page.focus("#enter-only")
    page.keyboard.type("abc")
    page.keyboard.press("Enter")
    wait_for(srv, start, lambda evs: any(e["fields"].get("key") == "Enter" for e in evs))
    sent = [p for h, n, p in wire.sent if h == hid]
    assert [p["key"] for p in sent] == ["Enter"]  # only the key it asked for left the browser


def test_debounce_sends_one_event_for_a_burst(srv: Server, page: Page) -> None:
    wire, start = open_page(page, srv)
    page.locator("#deb").press_sequentially("hello world", delay=10)
    [ev] = events_after(srv, start, "input")
    assert ev["fields"]["value"] == "hello world"
    hid = int(page.get_attribute("#deb", "data-hid") or 0)
    assert [p["value"] for h, n, p in wire.sent if h == hid and n == "input"] == ["hello world"]


def test_blur_flushes_a_pending_debounce(srv: Server, page: Page) -> None:
    wire, start = open_page(page, srv)  # #deb-long waits 60 s: only the blur can send it
    page.locator("#deb-long").press_sequentially("abc", delay=10)
    page.focus("#other")
    [ev] = events_after(srv, start, "input")
    assert ev["fields"]["value"] == "abc"
    assert len(wire.named("input")) == 1


def test_throttle_sends_the_first_and_the_last_of_a_burst(srv: Server, page: Page) -> None:
    wire, start = open_page(page, srv)
    box = page.locator("#mover").bounding_box()
    assert box is not None
    began = time.monotonic()
    page.mouse.move(box["x"] + 5, box["y"] + 5)
    for i in range(1, 31):
        page.mouse.move(box["x"] + 5 + i * 5, box["y"] + 5 + i)
    moves, took = 31, time.monotonic() - began
    last = (round(box["x"] + 155), round(box["y"] + 35))
    # the last position arrives on the trailing edge of the window: it is not lost
    wait_for(srv, start, lambda evs: [(e["fields"]["client_x"], e["fields"]["client_y"])
                                      for e in evs if e["name"] == "mousemove"][-1:] == [last])
    sent = wire.named("mousemove")
    # one per 300 ms window plus the trailing one, however long a loaded machine took to move
    assert 2 <= len(sent) <= min(moves - 1, took / 0.3 + 2), (len(sent), took)


def test_scroll_resize_focus_and_touch_payloads(srv: Server, browser: Browser) -> None:
    context = browser.new_context(has_touch=True)
    page = context.new_page()
    try:
        _, start = open_page(page, srv)
        page.eval_on_selector("#scroller", "el => { el.scrollTop = 120; }")
        scroll = events_after(srv, start, "scroll")[-1]
        assert scroll["type"] == "ScrollEvent" and scroll["fields"]["scroll_top"] == 120
        page.set_viewport_size({"width": 700, "height": 500})
        resize = events_after(srv, start, "resize")[-1]
        assert resize["type"] == "ResizeEvent"
        assert (resize["fields"]["width"], resize["fields"]["height"]) == (700, 500)
        page.focus("#focus")
        page.focus("#other")
        [focus] = events_after(srv, start, "focus")
        [blur] = events_after(srv, start, "blur")
        assert focus["type"] == "FocusEvent" and focus["fields"]["value"] == "f" and blur["type"] == "FocusEvent"
        box = page.locator("#touch").bounding_box()
        assert box is not None
        page.tap("#touch", position={"x": 4, "y": 3})
        [ts] = events_after(srv, start, "touchstart")
        [te] = events_after(srv, start, "touchend")
        [point] = ts["fields"]["touches"]
        assert ts["type"] == "TouchEvent"
        assert (point["client_x"], point["client_y"]) == (round(box["x"] + 4), round(box["y"] + 3))
        assert te["fields"]["touches"] == [] and len(te["fields"]["changed"]) == 1
    finally:
        context.close()


def test_whole_form_change_and_submit_carry_every_field(srv: Server, page: Page, tmp_path: Path) -> None:
    _, start = open_page(page, srv)
    page.fill("#title", "hello")
    page.select_option("#tags", ["a", "c"])
    change = events_after(srv, start, "change")[-1]
    assert change["type"] == "FormEvent" and change["fields"]["field"] == "tags"
    assert change["fields"]["values"] == ["a", "c"]
    assert change["fields"]["form"]["tags"] == ["a", "c"] and change["fields"]["form"]["title"] == ["hello"]
    page.check("#red")
    page.check("#blue")
    change = events_after(srv, start, "change", 3)[-1]
    assert change["fields"]["form"]["color"] == ["red", "blue"] and change["fields"]["checked"] is True
    for name in ("one.txt", "two.csv"):
        (tmp_path / name).write_text("x")
    page.set_input_files("#upload", [str(tmp_path / "one.txt"), str(tmp_path / "two.csv")])
    change = events_after(srv, start, "change", 4)[-1]
    assert change["fields"]["files"] == ["one.txt", "two.csv"] and change["fields"]["field"] == "upload"
    assert change["fields"]["form"]["upload"] == ["one.txt", "two.csv"]
    page.click("#send")
    [submit] = events_after(srv, start, "submit")
    assert submit["fields"]["form"] == {"title": ["hello"], "tags": ["a", "c"], "color": ["red", "blue"],
                                         "upload": ["one.txt", "two.csv"]}
    assert page.url.rstrip("/") == srv.url  # no native submit


def test_stop_propagation_hides_the_event_from_the_pages_own_listeners(srv: Server, page: Page) -> None:
    _, start = open_page(page, srv)
    page.evaluate("() => { window.seen = []; window.addEventListener('click', (e) => window.seen.push(e.target.id)); }")
    page.click("#stopper")
    page.click("#clicker")
    assert len(events_after(srv, start, "click", 2)) == 2  # the server got both
    assert page.evaluate("window.seen") == ["clicker"]


def test_prevent_default_keeps_the_link_on_the_page(srv: Server, page: Page) -> None:
    _, start = open_page(page, srv)
    page.click("#link")
    events_after(srv, start, "click")
    assert page.url.rstrip("/") == srv.url and page.evaluate("window.vango.state") == "open"


def test_loading_state_while_the_event_is_in_flight(srv: Server, page: Page) -> None:
    open_page(page, srv)
    busy = page.locator("#busy2")
    busy.click()
    expect(busy).to_have_attribute("aria-busy", "true")
    expect(busy).to_have_class("vango-loading")
    expect(busy).not_to_have_attribute("aria-busy", "true")  # EVENT_DONE came: the async handler finished
    expect(busy).not_to_have_class("vango-loading")
    save = page.locator("#busy")
    save.click()
    expect(save).to_have_text("Saving…")
    expect(save).to_be_disabled()
    expect(save).to_have_text("Save")
    expect(save).to_be_enabled()


def test_async_handler_and_resource_cancellation_in_the_browser(srv: Server, page: Page) -> None:
    page.goto(srv.url + "/async")
    page.wait_for_function("() => window.vango && window.vango.state === 'open'")
    expect(page.locator("#res")).to_have_text("value A")
    page.click("#run")
    expect(page.locator("#done")).to_have_text("done 1")  # each step of the handler is patched
    page.click("#release")
    expect(page.locator("#done")).to_have_text("done 2")
    page.fill("#q", "stale")  # a fetch that only ends by being cancelled
    expect(page.locator("#res")).to_have_text("loading")
    page.fill("#q", "fresh")
    expect(page.locator("#res")).to_have_text("value FRESH")
    with urllib.request.urlopen(srv.url + "/log", timeout=5) as resp:
        log = json.loads(resp.read())
    # cancelled while it ran -- or before its first step, when "fresh" came in the same loop turn
    assert "stale" in log["cancelled"] or "stale" not in log["started"]
