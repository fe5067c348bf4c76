"""Devtools: ``window.vango.inspect()`` and the panel with ``--dev``; nothing of them without it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.conftest import Server, module_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


dev = module_server("--workers", "2", "--dev")
prod = module_server("--workers", "1")


def open_counter(page: Page, url: str) -> None:
    page.goto(url + "/counter")
    page.wait_for_function("() => window.vango && window.vango.state === 'open'")


def test_inspect_shows_tree_signals_events_and_patches(dev: Server, page: Page) -> None:
    open_counter(page, dev.url)
    for _ in range(2):
        page.click("#inc")
    page.wait_for_function("() => document.querySelector('#count').textContent === 'Count: 2'")
    state = page.evaluate("() => window.vango.inspect()")
    assert state["path"] == "/counter" and state["seq"] == page.evaluate("() => window.vango.lastSeq")

    def find(nodes: list[dict], name: str) -> dict | None:
        for n in nodes:
            if n["name"] == name:
                return n
            hit = find(n["children"], name)
            if hit:
                return hit
        return None

    counter = find(state["tree"], "Counter")
    assert counter is not None and "2" in counter["signals"], state["tree"]
    assert [e["name"] for e in state["events"]][-2:] == ["click", "click"]
    assert state["patches"] and state["patches"][-1]["seq"] == state["seq"]
    assert "Count: 2" in state["patches"][-1]["frame"]
    stats = state["stats"]
    assert stats["events"] == 2 and stats["components"] >= 2 and stats["handlers"] >= 2 and stats["bytes_sent"] > 0

    page.click("#vango-devtools-toggle")
    page.wait_for_selector("#vango-devtools .vango-dt-component")
    assert "Counter" in page.inner_text("#vango-devtools")
    page.click("#inc")  # the open panel follows the session
    page.wait_for_function("() => document.querySelector('#vango-devtools').textContent.includes(\"'3'\") || "
                           "document.querySelector('#vango-devtools').textContent.includes('• 3')")


def test_absent_without_dev(prod: Server, page: Page) -> None:
    open_counter(page, prod.url)
    assert page.evaluate("() => typeof window.vango.inspect") == "undefined"
    assert page.locator("script[src*='devtools']").count() == 0
    assert page.locator("#vango-devtools, #vango-devtools-toggle").count() == 0
    sid = page.evaluate("() => window.vango.sessionId")
    for path in ("/_vango/devtools.js", f"/_vango/devtools/inspect?sid={sid}"):
        assert prod.get(path)[0] == 404, path
