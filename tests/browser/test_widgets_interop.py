"""The /widgets demo's JS-interop parts in Chromium: the toast the server emits, the chart a client hook draws."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import Server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


def open_live(page: Page, url: str) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    page.goto(url)
    page.wait_for_function("() => window.vango && window.vango.state === 'open'")
    return errors


def drawn(page: Page) -> str | None:
    return page.get_attribute("#chart", "data-drawn")


def test_toast_and_chart(server: Server, page: Page) -> None:
    errors = open_live(page, server.url + "/widgets")
    page.click("#toast-btn")
    expect(page.locator("#toast-text")).to_have_text("Hello from the server (1)")
    page.click("#toast-btn")
    expect(page.locator("#toast-text")).to_have_text("Hello from the server (2)")
    # the hook drew the server's six points; a new point is drawn on `updated`
    page.wait_for_function("() => document.querySelector('#chart').getAttribute('data-drawn') === '6'")
    page.click("#chart-add")
    page.wait_for_function("() => document.querySelector('#chart').getAttribute('data-drawn') === '7'")
    # a click on the first bar is the hook's pushEvent: the server names the bar and its value
    page.click("#chart", position={"x": 5, "y": 100})
    expect(page.locator("#chart-picked")).to_have_text("bar 1: 3")
    # a client command on the element: no server needed
    page.evaluate("window.vango.disconnect()")
    page.click("#chart-about")
    expect(page.locator("#chart-help")).to_be_visible()
    assert errors == []


def test_the_page_script_comes_along_on_live_navigation(server: Server, page: Page) -> None:
    errors = open_live(page, server.url + "/counter")
    session = page.evaluate("window.vango.sessionId")
    page.click("a[href='/widgets']")
    page.wait_for_function("() => document.querySelector('#chart') && "
                           "document.querySelector('#chart').getAttribute('data-drawn') === '6'")
    page.click("#toast-btn")
    expect(page.locator("#toast-text")).to_have_text("Hello from the server (1)")
    assert page.evaluate("window.vango.sessionId") == session
    assert errors == []
