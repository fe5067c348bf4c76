"""docs/GUIDE.md's JS-interop example, Python and page script as printed, in Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ROOT, start_server
from tests.integration.test_guide import guide_block, guide_code

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


def test_the_guide_example_works_in_a_browser(tmp_path: Path, page: Page) -> None:
    (tmp_path / "guide_interop.py").write_text(guide_block("# guide_interop.py"))
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "guide_interop.js").write_text(guide_code("js", "// static/guide_interop.js"))
    server = start_server("--workers", "1", "--app", "guide_interop:app",
                          env={"PYTHONPATH": f"{tmp_path}:{ROOT}"})
    try:
        logs: list[str] = []
        page.on("console", lambda msg: logs.append(f"{msg.type}: {msg.text}"))
        page.on("pageerror", lambda err: logs.append(f"pageerror: {err}"))
        page.goto(server.url + "/")
        page.wait_for_function("() => window.vango && window.vango.state === 'open'")
        page.click("#save")  # emit -> the window listener and the hook's handleEvent; run_js -> focus, class
        page.wait_for_function("() => document.querySelector('#chart').classList.contains('saved')")
        expect(page.locator("#form")).to_have_class("saved")
        assert page.evaluate("document.activeElement.id") == "title"
        assert "log: toast: Saved" in logs
        page.click("#chart")  # the hook's pushEvent('pick', {index: 1})
        expect(page.locator("#picked")).to_have_text("bar 1")
        page.click("#help-btn")  # data-js-click: no round trip
        expect(page.locator("#help")).to_be_visible()
        page.dispatch_event("map-view", "wheel")  # the island's message, validated
        expect(page.locator("#zoom")).to_have_text("zoom 4")
        page.click("#zoom-out")  # the server's message to the island
        page.wait_for_function("() => document.querySelector('map-view').dataset.zoom === '1'")
        assert [line for line in logs if line.startswith(("error", "pageerror"))] == []
    finally:
        server.stop()
