"""The styled demo: its stylesheet applies (a file, under the CSP), touch targets are large, the home page explains."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.conftest import Server, module_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


dev = module_server("--workers", "1", "--dev")


def test_styled_with_large_touch_targets(server: Server, page: Page) -> None:
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(server.url + "/counter")
    page.wait_for_function("() => window.vango && window.vango.state === 'open'")
    for sel in ("#inc", "#dec", "nav a[href='/todos']"):
        box = page.locator(sel).bounding_box()
        assert box is not None and box["height"] >= 44 and box["width"] >= 44, (sel, box)
    assert page.evaluate("() => getComputedStyle(document.body).fontFamily").startswith("system-ui")
    page.click("nav a[href='/todos']")  # the layout (and its stylesheet) stays across live navigation
    page.wait_for_function("() => document.title === 'Todos · vango-mp'")
    assert page.locator("#new-todo").bounding_box()["height"] >= 44  # type: ignore[index]
    assert page.locator("link[rel=stylesheet]").count() == 1
    assert violations == []
    status, headers, body = server.get("/favicon.ico")
    assert status == 200 and body[:4] == b"\x00\x00\x01\x00"  # an ICO file, the demo's own


def test_home_explains_and_links_the_status_page_in_dev(dev: Server, server: Server, page: Page) -> None:
    page.goto(dev.url + "/")
    text = page.inner_text(".intro")
    assert "worker" in text and "resumes" in text and "Restart a worker" in text
    page.click("#status-link")
    page.wait_for_selector("[data-worker]")
    page.goto(server.url + "/")
    assert page.locator("#status-link").count() == 0  # not without --dev
