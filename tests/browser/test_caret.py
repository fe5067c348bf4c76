"""A session that moves to the other worker keeps the field being typed in: focus, value, caret.

Under SO_REUSEPORT a reconnect usually lands on the other worker. The new owner
adopts the session with its rendered tree and patch history, so it catches the
client up with PATCHES (the ``#worker`` text changes) and never replaces the
page: no FULL frame is sent on the move (a FULL is morphed in place by the
client too, so only the frames on the wire tell the two apart).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import Server, start_server
from vango_mp import protocol

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

MAX_TRIES = 60  # reconnects until one lands on the other worker (each is a coin flip)
OPEN_MS = 10_000  # deadline for one reconnect to reach state 'open'

# Every frame each of the page's sockets sends and receives, as raw bytes, in
# order, tagged with the socket's index (vango.js makes its sockets with
# `new window.WebSocket`). The listener is added in the constructor, before
# the client sets onmessage, so a frame is recorded before it is applied.
WS_SPY = """(() => {
  const W = window.WebSocket;
  window.__frames = [];
  window.__sockets = 0;
  const bytes = (d) => Array.from(d instanceof ArrayBuffer ? new Uint8Array(d)
                                  : typeof d === 'string' ? new TextEncoder().encode(d) : d);
  window.WebSocket = class extends W {
    constructor(...a) {
      super(...a);
      const sock = window.__sockets++;
      this.__sock = sock;
      this.addEventListener('message', (e) => window.__frames.push([sock, 'in', bytes(e.data)]));
    }
    send(d) { window.__frames.push([this.__sock, 'out', bytes(d)]); return super.send(d); }
  };
})()"""


@pytest.fixture(scope="module")
def pair() -> Iterator[Server]:
    srv = start_server("--workers", "2")
    yield srv
    srv.stop()


def frames(page: Page) -> list[tuple[int, str, list[Any]]]:
    """(socket index, 'in'/'out', decoded frame) of everything on the wire so far."""
    return [(sock, way, protocol.unpack_message(bytes(raw), 1 << 24))
            for sock, way, raw in page.evaluate("window.__frames")]


def field_state(page: Page) -> dict[str, Any]:
    return page.evaluate("""() => {
      const a = document.activeElement;
      return {id: a.id, value: a.value, start: a.selectionStart, end: a.selectionEnd, kept: a.__kept === true};
    }""")


def test_move_to_other_worker_keeps_focus_value_and_caret(pair: Server, page: Page) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.add_init_script(WS_SPY)
    page.goto(pair.url + "/todos")
    page.wait_for_function("() => window.vango && window.vango.state === 'open'")
    sid = page.evaluate("window.vango.sessionId")
    first = page.evaluate("window.vango.worker")
    expect(page.locator("#worker")).to_have_text(str(first))

    field = page.locator("#new-todo")
    field.click()
    field.press_sequentially("abc")
    # The server's patch of the value attribute: its draft holds "abc" before we leave.
    expect(field).to_have_attribute("value", "abc")
    # Caret after "a"; tag the node itself (an expando: a rebuilt field would lose it).
    page.evaluate("""() => {
      const f = document.getElementById('new-todo');
      f.setSelectionRange(1, 1);
      f.__kept = true;
    }""")
    assert field_state(page) == {"id": "new-todo", "value": "abc", "start": 1, "end": 1, "kept": True}

    for tries in range(1, MAX_TRIES + 1):
        page.evaluate("window.vango.disconnect()")
        assert page.evaluate("window.vango.state") == "closed"
        sock = page.evaluate("window.__sockets")  # the index the next socket gets
        page.evaluate("window.vango.connect()")
        page.wait_for_function("() => window.vango.state === 'open'", timeout=OPEN_MS)
        landed = page.evaluate("window.vango.worker")
        # Caught up on whichever worker: #worker shows it (a patch when it changed).
        expect(page.locator("#worker")).to_have_text(str(landed))
        if landed != first:
            break
    else:
        pytest.fail(f"{MAX_TRIES} reconnects never landed on the other worker")

    expect(page.locator("#worker")).not_to_have_text(str(first))
    assert page.evaluate("window.vango.sessionId") == sid
    assert page.evaluate("window.vango.state") == "open"
    assert field_state(page) == {"id": "new-todo", "value": "abc", "start": 1, "end": 1, "kept": True}

    # On the wire: the move came as WELCOME (resumed, on the new worker) then PATCHES only.
    wire = frames(page)
    moved_in = [f for s, way, f in wire if s == sock and way == "in"]
    assert moved_in[0][0] == protocol.WELCOME, moved_in
    welcome = moved_in[0]
    assert welcome[1] == sid and welcome[3] is True and welcome[4] == landed, welcome
    rest = [f[0] for f in moved_in[1:]]
    assert rest and set(rest) == {protocol.PATCHES}, moved_in  # the #worker text came as a patch
    # No reconnect (same worker or the move) fell back to a FULL page, nor needed a RESYNC.
    # (The first socket may get one: the SSR page can come from the other worker,
    # whose #worker text then differs from the session's.)
    assert all(f[0] != protocol.FULL for s, way, f in wire if s > 0 and way == "in"), \
        f"FULL frame in {tries} reconnects: {[(s, f[:2]) for s, w, f in wire if w == 'in']}"
    assert all(f[0] != protocol.RESYNC for _, way, f in wire if way == "out"), wire

    # And the page still works on the new worker: typing goes in at the caret, Enter adds it.
    page.keyboard.type("x")
    expect(field).to_have_value("axbc")
    expect(field).to_have_attribute("value", "axbc")
    page.keyboard.press("Enter")
    expect(page.locator("li.todo span")).to_have_text(["axbc"])
    expect(field).to_have_value("")
    assert page.evaluate("window.vango.worker") == landed
    assert page.evaluate("window.vango.sessionId") == sid
    assert all(f[0] != protocol.FULL for s, way, f in frames(page) if s > 0 and way == "in")
    assert errors == []
