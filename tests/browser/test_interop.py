"""JS interop in Chromium (vango_mp.interop): emit, client hooks both ways, client commands, islands."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import Server, module_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


interop = module_server("--workers", "1", "--app", "tests.apps.interopapp:app")


def open_page(page: Page, server: Server) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    page.goto(server.url + "/")
    page.wait_for_function("() => window.vango && window.vango.state === 'open'")
    return errors


def hook_log(page: Page) -> list[str]:
    return page.evaluate("window.hookLog")


def test_emit_reaches_the_pages_own_script(interop: Server, page: Page) -> None:
    errors = open_page(page, interop)
    page.click("#emit-btn")
    expect(page.locator("#toast-text")).to_have_text("Saved!")
    assert errors == []


def test_hook_lifecycle_both_ways(interop: Server, page: Page) -> None:
    errors = open_page(page, interop)
    # mounted, and its pushEvent reached the element's on_hook handler as a HookEvent
    expect(page.locator("#heard")).to_have_text("hello 7")
    assert hook_log(page) == ["mounted hooked"]
    # a render inside the hook's element: updated; the server's emit reaches handleEvent
    page.click("#bump")
    page.wait_for_function("() => window.hookLog.includes('bump 1')")
    assert hook_log(page)[1:] == ["updated value 1", "bump 1"]
    # the element leaves: destroyed; it comes back: a new instance is mounted
    page.click("#toggle-hook")
    page.wait_for_function("() => window.hookLog.includes('destroyed')")
    page.click("#toggle-hook")
    page.wait_for_function("() => window.hookLog.filter((x) => x.startsWith('mounted')).length === 2")
    # SendHookRevert: the handler refuses the hook's optimistic change, the hook's reverted() runs
    page.click("#hooked")
    expect(page.locator("#heard")).to_have_text("risky 1")
    page.wait_for_function("() => window.hookLog.includes('reverted')")
    # the bump handler of the destroyed instance is gone: one 'bump 2', from the new instance
    page.click("#bump")
    page.wait_for_function("() => window.hookLog.includes('bump 2')")
    assert hook_log(page).count("bump 2") == 1
    assert errors == []


def test_client_commands_from_the_server(interop: Server, page: Page) -> None:
    errors = open_page(page, interop)
    page.click("#cmd-btn")
    expect(page.locator("#box")).to_have_class("lit")
    assert page.evaluate("""() => { const f = document.querySelector('#field');
        return [document.activeElement === f, f.selectionStart, f.selectionEnd]; }""") == [True, 0, 11]
    page.evaluate("document.querySelector('#toast-text').hidden = true")
    page.click("#blur-btn")
    page.wait_for_function("() => !document.querySelector('#toast-text').hidden")
    assert page.evaluate("document.activeElement.id") != "field"
    assert errors == []


def test_element_commands_need_no_server(interop: Server, page: Page) -> None:
    """data-js-click runs its chain in the browser: it works with the socket closed."""
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    errors = open_page(page, interop)
    page.evaluate("window.vango.disconnect()")
    page.click("#local-btn")
    expect(page.locator("#box")).to_have_class("local")
    assert page.evaluate("document.querySelector('#toast-text').hidden") is True
    page.click("#local-btn")
    expect(page.locator("#box")).not_to_have_class("local")
    page.click("#copy-btn")
    page.wait_for_function("async () => (await navigator.clipboard.readText()) === 'hello world'")
    assert page.evaluate("window.scrollY") == 0
    page.click("#scroll-btn")
    page.wait_for_function("() => window.scrollY > 1000")
    assert errors == []


def send_island(page: Page, payload: object) -> None:
    page.evaluate("""(p) => document.querySelector('#isl').dispatchEvent(
        new CustomEvent('vango:island', { bubbles: true, detail: p }))""", payload)


def test_island_messages_pass_the_validator_both_ways(interop: Server, page: Page) -> None:
    errors = open_page(page, interop)
    send_island(page, {"n": 5})
    expect(page.locator("#isl-got")).to_have_text("got 5 #1")
    expect(page.locator("#isl")).to_have_text("echo 5")  # the server's answer, validated too
    # refused inbound: out of range, an extra key, not a map -- then a good one, handled in order
    for bad in ({"n": 1000}, {"n": 1, "html": "<b>"}, "n=3"):
        send_island(page, bad)
    send_island(page, {"n": 6})
    expect(page.locator("#isl-got")).to_have_text("got 6 #2")  # none of the three reached the handler
    # refused outbound: send() raises, nothing reaches the island
    page.click("#isl-bad-out")
    expect(page.locator("#isl-out")).to_have_text("refused")
    expect(page.locator("#isl")).to_have_text("echo 6")
    assert errors == []
