"""MOVE and REPLACE patches applied by the real client in headless Chromium.

tests/apps/patchapp.py: ``#reverse`` reverses a keyed list (the server sends
MOVE patches), ``#swap`` turns ``<p id=shape>`` into a ``<section>`` (REPLACE).
The DOM must come out right *from the patches themselves*: a client that
misreads an op and recovers with RESYNC + FULL fails here too, since the
frames on the socket are checked as well as the DOM.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import Server, module_server
from tests.integration.rawws import Raw, fetch_page
from vango_mp import protocol

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

KEYS = ["a", "b", "c", "d", "e"]


patch_server = module_server("--workers", "1", "--app", "tests.apps.patchapp:app")


def hid_of(html: str, element_id: str) -> int:
    import re

    tag = re.search(rf'<[^>]*id="{element_id}"[^>]*>', html)
    assert tag, element_id
    return int(re.search(r'data-hid="(\d+)"', tag.group(0)).group(1))  # type: ignore[union-attr]


def test_the_clicks_send_move_and_replace(patch_server: Server) -> None:
    """On the wire: the reorder is MOVEs (not a rebuild), the tag change one REPLACE."""
    async def go() -> tuple[list, list]:
        page = fetch_page(patch_server.url, "/")
        ws = await Raw.connect(patch_server.url, cookie=page.cookie)
        assert (await ws.hello(page))[0] == protocol.WELCOME
        frames = []
        for cseq, button in enumerate(["reverse", "swap"], 1):
            await ws.send([protocol.EVENT, cseq, hid_of(page.html, button), "click", None])
            frames.append(await ws.recv())
        ws.close()
        return frames[0], frames[1]

    reverse, swap = asyncio.run(go())
    assert reverse[0] == protocol.PATCHES and swap[0] == protocol.PATCHES
    ops = [p[0] for p in reverse[2]]
    assert protocol.MOVE in ops and set(ops) <= {protocol.MOVE, protocol.SET_TEXT}, reverse
    assert [p[0] for p in swap[2]] == [protocol.REPLACE], swap
    assert swap[2][0][3][0] == "section"


class Wire:
    """Every frame the page's WebSocket sent and received, decoded."""

    def __init__(self, page: Page) -> None:
        self.sent: list[Any] = []
        self.received: list[Any] = []
        page.on("websocket", lambda ws: (ws.on("framesent", lambda p: self.sent.append(decode(p))),
                                         ws.on("framereceived", lambda p: self.received.append(decode(p)))))

    def types(self, frames: list[Any]) -> list[int]:
        return [f[0] for f in frames]


def decode(payload: bytes | str) -> Any:
    return protocol.unpack_message(payload if isinstance(payload, bytes) else payload.encode(), 1 << 24)


def pump_until(page: Page, condition: Any, timeout: float = 5.0) -> None:
    """Let Playwright deliver its queued events (frames) until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        page.evaluate("0")  # a round trip: pending events are dispatched meanwhile


def rows(page: Page) -> list[list[str]]:
    """[id, text, data-hid] of each row, in DOM order."""
    return page.eval_on_selector_all(
        "#list > *", "els => els.map(e => [e.id, e.textContent, e.getAttribute('data-hid')])")


def test_move_and_replace_in_chromium(patch_server: Server, page: Page) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and "Failed to load resource" not in msg.text else None)  # /favicon.ico
    wire = Wire(page)
    page.goto(patch_server.url + "/")
    page.wait_for_function("() => window.vango && window.vango.state === 'open'")
    before = rows(page)
    assert [r[0] for r in before] == [f"item-{k}" for k in KEYS]
    # Remember the row nodes themselves: MOVE must move them, not rebuild them.
    page.evaluate("() => { window.__rows = [...document.querySelectorAll('#list > li')]; }")
    shape_hid = page.get_attribute("#shape", "data-hid")

    page.click("#reverse")
    expect(page.locator("#order")).to_have_text("e d c b a")
    assert rows(page) == before[::-1]  # same ids, texts and hids, reversed
    assert page.evaluate("""() => {
        const now = [...document.querySelectorAll('#list > li')];
        return now.length === 5 && now.every((el, i) => el === window.__rows[4 - i]);
    }""")

    page.click("#swap")
    expect(page.locator("#shape")).to_have_text("a section")
    assert page.eval_on_selector_all("#holder > *", "els => els.map(e => e.tagName + '#' + e.id)") == \
        ["SPAN#before", "SECTION#shape", "SPAN#after"]
    assert page.get_attribute("#shape", "class") == "section"
    assert page.get_attribute("#shape", "data-hid") != shape_hid  # a new element, with its new hid

    page.click("#swap")  # and back: a <p> again, then the list in its first order
    expect(page.locator("#shape")).to_have_text("a paragraph")
    assert page.eval_on_selector("#shape", "e => e.tagName") == "P"
    page.click("#reverse")
    expect(page.locator("#order")).to_have_text("a b c d e")
    assert rows(page) == before
    assert page.evaluate("() => [...document.querySelectorAll('#list > li')].every((el, i) => el === window.__rows[i])")

    # Everything came as in-order PATCHES: no FULL, no RESYNC, no client error.
    assert page.evaluate("window.vango.lastSeq") == 4 and page.evaluate("window.vango.state") == "open"
    pump_until(page, lambda: wire.types(wire.received).count(protocol.PATCHES) >= 4)
    got = wire.types(wire.received)
    assert protocol.FULL not in got and got.count(protocol.PATCHES) == 4, wire.received
    assert protocol.RESYNC not in wire.types(wire.sent), wire.sent
    assert errors == []
