"""Live navigation in Chromium: one WebSocket and one session for the whole visit (issue 9)."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import Server, module_server, start_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

# Counts every WebSocket the page opens and every document load (a full load resets it).
SPY = """
window.__sockets = 0;
const Native = window.WebSocket;
window.WebSocket = function (...args) { window.__sockets += 1; return new Native(...args); };
window.WebSocket.prototype = Native.prototype;
Object.assign(window.WebSocket, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
"""


def open_page(browser: Browser, url: str) -> Page:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.add_init_script(SPY)
    page.goto(url)
    page.wait_for_function("() => window.vango && window.vango.state === 'open'")
    page.evaluate("window.__marker = 'same document'")  # gone if a navigation reloads the page
    return page


def same_visit(page: Page, sid: str) -> None:
    assert page.evaluate("window.__marker") == "same document"
    assert page.evaluate("window.__sockets") == 1
    assert page.evaluate("window.vango.sessionId") == sid


def test_every_demo_page_back_and_forward_on_one_socket(server: Server, browser: Browser) -> None:
    page = open_page(browser, server.url + "/")
    sid = page.evaluate("window.vango.sessionId")
    visits = [("/counter", "Counter · vango-mp", "#count"), ("/todos", "Todos · vango-mp", "#new-todo"),
              ("/global", "Global · vango-mp", "#global-count"), ("/items", "Items · vango-mp", "#item-count")]
    for path, title, marker in visits:
        page.click(f"nav a[href='{path}']")
        page.wait_for_url(server.url + path)
        expect(page.locator(marker)).to_be_visible()
        expect(page).to_have_title(title)
        same_visit(page, sid)
    page.click("#inc") if page.locator("#inc").count() else None
    for path, title, _ in reversed(visits[:-1]):
        page.go_back()
        page.wait_for_url(server.url + path)
        expect(page).to_have_title(title)
    page.go_forward()
    page.wait_for_url(server.url + "/todos")
    expect(page.locator("#new-todo")).to_be_visible()
    same_visit(page, sid)
    page.context.close()


def test_items_filter_round_trips_through_the_query_string(server: Server, browser: Browser) -> None:
    page = open_page(browser, server.url + "/items")
    expect(page.locator("#item-count")).to_have_text("200 of 200")
    page.fill("#filter", "Item 15")
    page.wait_for_url(server.url + "/items?q=Item+15")
    expect(page.locator("#item-count")).to_have_text("10 of 200")
    expect(page.locator("li.item")).to_have_count(10)
    sid = page.evaluate("window.vango.sessionId")
    page.click("li.item a >> nth=3")  # a link to /items/153: live
    page.wait_for_url(server.url + "/items/153")
    expect(page.locator("#item-id")).to_have_text("153")
    page.go_back()
    page.wait_for_url(server.url + "/items?q=Item+15")
    expect(page.locator("#item-count")).to_have_text("10 of 200")
    same_visit(page, sid)
    page.reload()  # a first load of the same URL shows the same filter
    expect(page.locator("#filter")).to_have_value("Item 15")
    expect(page.locator("#item-count")).to_have_text("10 of 200")
    page.context.close()


def test_back_restores_the_scroll_position(server: Server, browser: Browser) -> None:
    page = open_page(browser, server.url + "/items")
    page.set_viewport_size({"width": 800, "height": 400})
    page.evaluate("window.scrollTo(0, 1500)")
    page.wait_for_function("() => window.scrollY === 1500")
    # A click from script: Playwright's own click would scroll the link into view first.
    page.evaluate("document.querySelector(\"a[href='/items/120']\").click()")
    page.wait_for_url(server.url + "/items/120")
    page.wait_for_function("() => window.scrollY === 0")  # a new page starts at the top
    page.go_back()
    page.wait_for_url(server.url + "/items")
    page.wait_for_function("() => window.scrollY === 1500")
    page.context.close()


def test_unknown_path_is_a_404_page_and_live_too(server: Server, browser: Browser) -> None:
    context = browser.new_context()
    page = context.new_page()
    response = page.goto(server.url + "/no/such/page")
    assert response is not None and response.status == 404
    expect(page.locator("#not-found")).to_be_visible()
    page.wait_for_function("() => window.vango && window.vango.state === 'open'")
    page.click("a[href='/']")
    page.wait_for_url(server.url + "/")
    page.evaluate("window.vango.navigate('/nowhere')")
    page.wait_for_url(server.url + "/nowhere")
    expect(page.locator("#not-found")).to_be_visible()
    context.close()


def test_title_and_meta_tags_follow_live_navigation(browser: Browser) -> None:
    srv = start_server("--workers", "1", "--app", "tests.apps.navapp:app")
    try:
        page = open_page(browser, srv.url + "/a")
        meta = "() => [...document.querySelectorAll('meta[data-vango-head]')].map(m => m.name + '=' + m.content)"
        assert page.evaluate(meta) == ["description=About & A"]
        page.click("a[href='/b']")
        page.wait_for_url(srv.url + "/b")
        expect(page).to_have_title("B page")
        assert page.evaluate(meta) == ["description=B", "robots=noindex"]
        page.go_back()
        expect(page).to_have_title("A page")
        assert page.evaluate(meta) == ["description=About & A"]
        page.context.close()
    finally:
        srv.stop()


shell_app = module_server("--workers", "1", "--app", "tests.apps.navapp2:app")


def test_layout_state_survives_navigation_and_a_guard_redirects(shell_app: Server, browser: Browser) -> None:
    page = open_page(browser, shell_app.url + "/one")
    sid = page.evaluate("window.vango.sessionId")
    page.click("#shell")
    expect(page.locator("#shell")).to_have_text("opened 1")
    page.click("a[href='/two']")
    page.wait_for_url(shell_app.url + "/two")
    expect(page.locator("#two")).to_be_visible()
    expect(page.locator("#shell")).to_have_text("opened 1")  # the layout was not mounted again
    page.click("a[href='/secret']")  # the route middleware sends it to /one
    page.wait_for_url(shell_app.url + "/one")
    expect(page.locator("#one")).to_be_visible()
    assert page.locator("#secret").count() == 0
    same_visit(page, sid)
    page.context.close()


def test_parameters_decode_the_same_before_and_after_connect(shell_app: Server, browser: Browser) -> None:
    context = browser.new_context(java_script_enabled=False)
    static = context.new_page()
    static.goto(shell_app.url + "/hello/Zo%C3%AB%20Smith")
    assert static.text_content("#name") == "Zoë Smith"
    context.close()
    page = open_page(browser, shell_app.url + "/hello/Zo%C3%AB%20Smith")
    page.click("#shell")  # a live render of the page: the name is what the live session decoded
    expect(page.locator("#shell")).to_have_text("opened 1")
    expect(page.locator("#name")).to_have_text("Zoë Smith")
    page.click("a[href='/one']")
    page.wait_for_url(shell_app.url + "/one")
    page.click("a[href='/hello/Zo%C3%AB%20Smith']")  # and through a live navigation
    expect(page.locator("#name")).to_have_text("Zoë Smith")
    page.context.close()


def test_a_prefetched_page_needs_no_render_on_click(shell_app: Server, browser: Browser) -> None:
    page = open_page(browser, shell_app.url + "/one")
    before = prefetches(shell_app)
    page.hover("a[href='/two']")  # data-prefetch: PREFETCH after 100 ms of hover
    deadline = time.monotonic() + 10
    while prefetches(shell_app) == before:
        assert time.monotonic() < deadline, "the server never rendered the prefetch"
    page.click("a[href='/two']")
    page.wait_for_url(shell_app.url + "/two")
    # The layout rendered after the prefetch and before its page: had the click rendered Two,
    # Two's own count would be one more than the one the layout saw.
    expect(page.locator("#two")).to_be_visible()
    assert page.text_content("#two-count") == page.text_content("#two-renders")
    page.context.close()


def prefetches(srv: Server) -> float:
    status, _, body = srv.get("/_vango/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith('vango_prefetches_total{result="rendered"'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_navigate_without_scrolling(browser: Browser) -> None:
    srv = start_server("--workers", "1", "--app", "tests.apps.navapp:app")
    try:
        page = open_page(browser, srv.url + "/a")
        page.set_viewport_size({"width": 800, "height": 300})
        page.evaluate("window.scrollTo(0, 400)")
        page.wait_for_function("() => window.scrollY === 400")
        page.evaluate("document.getElementById('stay').click()")  # navigate('/b', scroll=False); no scroll into view
        page.wait_for_url(srv.url + "/b")
        expect(page).to_have_title("B page")
        assert page.evaluate("window.scrollY") == 400
        page.evaluate("document.getElementById('jump').click()")  # navigate('/a'): to the top
        page.wait_for_url(srv.url + "/a")
        page.wait_for_function("() => window.scrollY === 0")
        page.context.close()
    finally:
        srv.stop()
