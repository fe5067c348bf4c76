"""The demo under its Content-Security-Policy in Chromium: nothing the client does is blocked."""

from __future__ import annotations

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.conftest import Server, module_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


hardened = module_server("--workers", "1", "--app", "tests.apps.webapp:hardened")


def watch(page: Page) -> list[str]:
    """Console errors (a CSP violation, a failed load such as a missing favicon) and uncaught script errors."""
    seen: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error" or "Content Security Policy" in msg.text or "Refused to" in msg.text:
            seen.append(f"{msg.type}: {msg.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda err: seen.append(f"pageerror: {err}"))
    return seen


def counter_and_todos(page: Page, url: str) -> None:
    response = page.goto(url + "/counter")
    assert response is not None and "'nonce-" in response.headers["content-security-policy"]
    page.wait_for_function("() => window.vango && window.vango.state === 'open'")
    page.click("#inc")
    page.click("#inc")
    expect(page.locator("#count")).to_have_text("Count: 2")
    page.click("a[href='/todos']")
    page.wait_for_function("() => window.vango && window.vango.state === 'open'")
    page.fill("#new-todo", "alpha")
    page.press("#new-todo", "Enter")
    expect(page.locator("li.todo")).to_have_count(1)
    page.click("li.todo button.remove")
    expect(page.locator("li.todo")).to_have_count(0)


def test_demo_runs_under_the_default_policy(server: Server, page: Page) -> None:
    seen = watch(page)
    counter_and_todos(page, server.url)
    assert seen == []


def test_demo_runs_under_the_hardened_policy(hardened: Server, page: Page) -> None:
    seen = watch(page)
    counter_and_todos(page, hardened.url)
    assert seen == []


def test_the_notice_is_styled_without_an_inline_style_attribute(hardened: Server, page: Page) -> None:
    """Hardened: no 'unsafe-inline' for styles, yet the client's notice is laid out (set through the CSSOM)."""
    seen = watch(page)
    page.route_web_socket("**/_vango/ws", lambda ws: ws.close(code=4013, reason="server under memory pressure"))
    page.goto(hardened.url + "/counter")
    notice = page.locator("#vango-notice")
    expect(notice).to_contain_text("memory pressure")
    assert notice.evaluate("el => getComputedStyle(el).position") == "fixed"
    assert seen == []


def test_an_injected_inline_script_is_blocked(server: Server, page: Page) -> None:
    """The policy is enforced, not just sent: a script without the nonce does not run."""
    seen = watch(page)
    page.goto(server.url + "/counter")
    page.wait_for_function("() => window.vango && window.vango.state === 'open'")
    page.evaluate("""() => {
        const s = document.createElement('script');
        s.textContent = 'window.__pwned = 1';
        document.body.appendChild(s);
    }""")
    assert page.evaluate("window.__pwned") is None
    assert any("Content Security Policy" in line for line in seen)
