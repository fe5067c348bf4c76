"""The demo's /widgets page in Chromium, as DESIGN.md's contract describes it; with and without --dev."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import Server, module_server
from vango_mp import protocol

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


prod = module_server("--workers", "1")
dev = module_server("--workers", "1", "--dev")


def open_widgets(page: Page, server: Server) -> list[Any]:
    """Open /widgets; the EVENT frames its socket sends, as they go."""
    sent: list[Any] = []

    def frame(data: Any) -> None:
        if isinstance(data, (bytes, bytearray)) and data[:1] == b"\x00":
            f = msgpack.unpackb(bytes(data[1:]), raw=False)
            if f[0] == protocol.EVENT:
                sent.append(f)

    page.on("websocket", lambda ws: ws.on("framesent", frame))
    page.goto(server.url + "/widgets")
    page.wait_for_function("() => window.vango && window.vango.state === 'open'")
    return sent


def type_burst(page: Page, selector: str, text: str) -> None:
    """Type ``text`` as one burst of input events in a single page task (no gap a loaded
    machine could stretch past the 300 ms debounce), ending with ``text`` in the field."""
    page.eval_on_selector(selector, """(el, text) => {
        const start = text.startsWith(el.value) ? el.value.length : 0;
        if (!start) el.value = "";
        for (const ch of text.slice(start)) {
            el.value += ch;
            el.dispatchEvent(new InputEvent("input", {bubbles: true, data: ch}));
        }
    }""", text)


def test_title_and_debounced_search(prod: Server, page: Page) -> None:
    sent = open_widgets(page, prod)
    assert page.title() == "Widgets · vango-mp"
    expect(page.locator("#search-count")).to_have_text("0 searches")
    type_burst(page, "#search", "item 01")
    expect(page.locator("#search-count")).to_have_text("1 searches")
    expect(page.locator("#search-results li")).to_have_count(5)
    assert [f[3] for f in sent] == ["input"]  # seven keystrokes, one event
    type_burst(page, "#search", "item 010")
    expect(page.locator("#search-count")).to_have_text("2 searches")


def test_slow_async_handler_is_busy_while_in_flight(prod: Server, page: Page) -> None:
    open_widgets(page, prod)
    slow = page.locator("#slow")
    expect(page.locator("#slow-result")).to_have_text("done 0")
    # Recorded in the page: a loaded machine may not let the test poll inside the 0.5 s.
    page.eval_on_selector("#slow", """el => { window.busySeen = [];
        new MutationObserver(() => window.busySeen.push([el.getAttribute("aria-busy"),
            document.querySelector("#slow-result").textContent]))
          .observe(el, {attributes: true, attributeFilter: ["aria-busy"]}); }""")
    slow.click()
    expect(page.locator("#slow-result")).to_have_text("done 1")
    expect(slow).not_to_have_attribute("aria-busy", "true")
    seen = page.evaluate("window.busySeen")
    assert seen[0] == ["true", "done 0"] and seen[-1][1] == "done 1", seen  # busy while in flight
    slow.click()
    expect(page.locator("#slow-result")).to_have_text("done 2")


def test_boom_without_dev_shows_a_notice_and_no_overlay(prod: Server, page: Page) -> None:
    open_widgets(page, prod)
    page.click("#boom")
    notice = page.locator("#vango-notice[data-kind=error]")
    expect(notice).to_have_text("Something went wrong. Please try again.")
    assert page.locator("#vango-error").count() == 0
    assert "raised on purpose" not in page.content()  # nothing about the code reaches the browser
    page.click("#slow")  # the page keeps working
    expect(page.locator("#slow-result")).to_have_text("done 1")
    assert page.locator("#vango-error").count() == 0


def test_boom_with_dev_shows_the_overlay_with_the_apps_line(dev: Server, page: Page) -> None:
    open_widgets(page, dev)
    page.click("#boom")
    overlay = page.locator("#vango-error")
    expect(overlay).to_contain_text("RuntimeError: boom: #boom's handler raised on purpose")
    expect(overlay).to_contain_text("vango_mp/demo/widgets.py")
    expect(overlay).to_contain_text('raise RuntimeError("boom')
    page.click("#slow")  # the page keeps working
    expect(page.locator("#slow-result")).to_have_text("done 1")
    overlay.get_by_role("button", name="Close").click()
    expect(overlay).to_have_count(0)


def test_error_boundary_fallback_and_retry(prod: Server, page: Page) -> None:
    open_widgets(page, prod)
    page.click("#break")
    expect(page.locator("#fallback")).to_have_text("Fallback: Fragile was asked to break")
    page.click("#retry")
    expect(page.locator("#fragile")).to_have_text("Fragile renders fine")
