"""A FULL frame morphs the page in place: the field being typed in keeps focus, value and caret.

The server sends FULL when a client is behind its patch history. With
``max_patch_history = 0`` there is none, so a RESYNC frame from the page's own
socket (what the client sends after a gap) is answered with a FULL.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import Server, start_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

# Keeps the client's socket reachable as window.__ws (vango.js makes it with
# `new window.WebSocket`), so the test can send a frame on it.
WS_SPY = """(() => {
  const W = window.WebSocket;
  window.WebSocket = class extends W { constructor(...a) { super(...a); window.__ws = this; } };
})()"""

RESYNC_FROM_0 = "() => window.__ws.send(new Uint8Array([0x00, 0x92, 4, 0]))"  # raw flag, msgpack [RESYNC, 0]


@pytest.fixture(scope="module")
def no_history_server() -> Iterator[Server]:
    srv = start_server("--workers", "1", env={"VANGO_MAX_PATCH_HISTORY": "0"})
    yield srv
    srv.stop()


def test_full_frame_keeps_focus_value_and_caret(no_history_server: Server, page: Page) -> None:
    page.add_init_script(WS_SPY)
    page.goto(no_history_server.url + "/todos")
    page.wait_for_function("() => window.vango && window.vango.state === 'open'")
    field = page.locator("#new-todo")
    field.click()
    field.press_sequentially("abc")
    expect(field).to_have_attribute("value", "abc")  # the server's patch: it holds the draft, seq > 0
    assert page.evaluate("window.vango.lastSeq") > 0
    # Caret after "a"; tag the node (an expando: attributes are the morph's to rewrite);
    # and leave a stale attribute and text that only the FULL frame will put right.
    page.evaluate("""() => {
      const f = document.getElementById('new-todo');
      f.setSelectionRange(1, 1);
      f.__kept = true;
      const h1 = document.querySelector('h1');
      h1.setAttribute('data-stale', '');
      h1.firstChild.data = 'stale';
    }""")
    page.evaluate(RESYNC_FROM_0)
    page.wait_for_function("() => !document.querySelector('h1').hasAttribute('data-stale')")
    expect(page.locator("h1")).to_have_text("Todos")
    state = page.evaluate("""() => {
      const a = document.activeElement;
      return {id: a.id, kept: a.__kept === true, value: a.value, start: a.selectionStart, end: a.selectionEnd};
    }""")
    assert state == {"id": "new-todo", "kept": True, "value": "abc", "start": 1, "end": 1}
    # Still live: typing goes in at the caret, and the todo is added.
    page.keyboard.type("x")
    expect(field).to_have_value("axbc")
    page.keyboard.press("Enter")
    expect(page.locator("li.todo span")).to_have_text(["axbc"])
    expect(field).to_have_value("")
    assert page.evaluate("document.activeElement.id") == "new-todo"
