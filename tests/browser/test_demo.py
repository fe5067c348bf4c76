"""The demo app in a real browser: SSR, clicks, keyed lists, disconnect/resume."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


def wait_open(page: Page) -> None:
    page.wait_for_function("() => window.vango && window.vango.state === 'open'")


def counter_at_two(page: Page, url: str) -> str:
    """Open /counter, click + twice; the session id."""
    page.goto(url + "/counter")
    wait_open(page)
    page.click("#inc")
    page.click("#inc")
    expect(page.locator("#count")).to_have_text("Count: 2")
    sid = page.evaluate("window.vango.sessionId")
    assert sid
    return sid


def test_ssr_holds_initial_state_before_any_script(server, browser: Browser) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(server.url + "/counter")
    assert page.text_content("#count") == "Count: 0"
    assert page.text_content("#worker") == "0"
    assert page.locator("#inc").count() == 1 and page.locator("#dec").count() == 1
    context.close()


def test_counter_clicks(server, page: Page) -> None:
    page.goto(server.url + "/counter")
    wait_open(page)
    for _ in range(3):
        page.click("#inc")
    expect(page.locator("#count")).to_have_text("Count: 3")
    page.click("#dec")
    expect(page.locator("#count")).to_have_text("Count: 2")


def test_todos_add_and_remove_keyed(server, page: Page) -> None:
    page.goto(server.url + "/todos")
    wait_open(page)
    for title in ("alpha", "beta", "gamma"):
        page.fill("#new-todo", title)
        page.press("#new-todo", "Enter")
        expect(page.locator("li.todo").last).to_contain_text(title)
        expect(page.locator("#new-todo")).to_have_value("")
    expect(page.locator("li.todo")).to_have_count(3)
    # Tag the DOM node of gamma: a keyed removal of beta must keep it, not rebuild it.
    page.eval_on_selector("li.todo:nth-child(3)", "el => el.dataset.marker = 'kept'")
    page.locator("li.todo", has_text="beta").locator("button.remove").click()
    expect(page.locator("li.todo")).to_have_count(2)
    expect(page.locator("li.todo span")).to_have_text(["alpha", "gamma"])
    assert page.eval_on_selector("li.todo:nth-child(2)", "el => el.dataset.marker") == "kept"


def test_disconnect_then_connect_resumes_same_session(server, page: Page) -> None:
    sid = counter_at_two(page, server.url)
    page.evaluate("window.vango.disconnect()")
    page.wait_for_function("() => window.vango.state === 'closed'")
    page.evaluate("window.vango.connect()")
    wait_open(page)
    assert page.evaluate("window.vango.sessionId") == sid
    page.click("#inc")
    expect(page.locator("#count")).to_have_text("Count: 3")
    assert page.evaluate("window.vango.lastSeq") >= 3


@pytest.fixture(scope="module")
def short_server():
    from tests.conftest import start_server

    srv = start_server("--workers", "1", env={"VANGO_RESUME_WINDOW": "1s"})
    yield srv
    srv.stop()


def test_expired_session_reloads_cleanly(short_server, page: Page) -> None:
    import json
    import time

    page.goto(short_server.url + "/counter")
    wait_open(page)
    page.click("#inc")
    expect(page.locator("#count")).to_have_text("Count: 1")
    page.evaluate("window.vango.disconnect()")
    page.wait_for_function("() => window.vango.state === 'closed'")
    deadline = time.monotonic() + 10
    while json.loads(short_server.get("/_vango/health")[2])["sessions"]["detached"]:
        assert time.monotonic() < deadline, "session never expired"
        time.sleep(0.05)
    # The server answers the resume with "session expired"; the page reloads fresh.
    with page.expect_navigation():
        page.evaluate("window.vango.connect()")
    wait_open(page)
    expect(page.locator("#count")).to_have_text("Count: 0")


def test_global_counter_is_shared_between_pages(server, browser: Browser) -> None:
    a, b = browser.new_context().new_page(), browser.new_context().new_page()
    for pg in (a, b):
        pg.goto(server.url + "/global")
        wait_open(pg)
    start = int(a.text_content("#global-count") or "0")
    a.click("#global-inc")
    b.click("#global-inc")
    b.click("#global-inc")
    for pg in (a, b):
        expect(pg.locator("#global-count")).to_have_text(str(start + 3))
    a.context.close()
    b.context.close()


def test_reconnect_toast_through_a_full_restart(tmp_path, page: Page) -> None:
    """Deploy-style restart with a state dir: the toast shows while the server is down, the session resumes."""
    import secrets

    from tests.conftest import start_server

    env = {"VANGO_STATE_DIR": str(tmp_path), "VANGO_PERSISTENCE_SECRET": secrets.token_hex(32)}
    first = start_server("--workers", "1", env=env)
    try:
        sid = counter_at_two(page, first.url)
    finally:
        assert first.stop() == 0
    notice = page.locator("#vango-notice")
    expect(notice).to_have_text("Connection lost. Reconnecting\u2026")
    second = start_server("--workers", "1", "--bind", f"127.0.0.1:{first.port}", env=env)
    try:
        expect(notice).to_have_count(0, timeout=20_000)  # the next retry of the 1-2-4 s backoff
        assert page.evaluate("window.vango.sessionId") == sid
        expect(page.locator("#count")).to_have_text("Count: 2")
        page.click("#inc")
        expect(page.locator("#count")).to_have_text("Count: 3")
    finally:
        second.stop()
