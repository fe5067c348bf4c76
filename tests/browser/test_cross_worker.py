"""A session follows its browser to whichever worker the reconnect lands on."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import Server, module_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


pair = module_server("--workers", "2")


def test_resume_on_the_other_worker_keeps_state(pair: Server, page: Page) -> None:
    page.goto(pair.url + "/counter")
    page.wait_for_function("() => window.vango && window.vango.state === 'open'")
    for _ in range(4):
        page.click("#inc")
    expect(page.locator("#count")).to_have_text("Count: 4")
    first = page.evaluate("window.vango.worker")
    expect(page.locator("#worker")).to_have_text(str(first))
    sid = page.evaluate("window.vango.sessionId")
    for _ in range(60):
        page.evaluate("window.vango.disconnect()")
        page.wait_for_function("() => window.vango.state === 'closed'")
        page.evaluate("window.vango.connect()")
        page.wait_for_function("() => window.vango.state === 'open'")
        if page.evaluate("window.vango.worker") != first:
            break
    else:
        pytest.fail("60 reconnects never landed on the other worker")
    other = page.evaluate("window.vango.worker")
    assert page.evaluate("window.vango.sessionId") == sid
    expect(page.locator("#worker")).to_have_text(str(other))
    expect(page.locator("#count")).to_have_text("Count: 4")
    page.click("#inc")
    expect(page.locator("#count")).to_have_text("Count: 5")
