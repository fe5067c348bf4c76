"""A form on a page posts to an app route with this browser's CSRF token; the route redirects back."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from tests.conftest import Server, module_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


web = module_server("--workers", "1", "--app", "tests.apps.webapp:web")


def post_feedback(browser: Browser, url: str, *, javascript: bool) -> None:
    context = browser.new_context(java_script_enabled=javascript)
    page = context.new_page()
    page.goto(url + "/form")
    if javascript:
        page.wait_for_function("() => window.vango && window.vango.state === 'open'")
    page.fill("#text", "from a real form")
    with page.expect_navigation():
        page.click("#send")
    assert page.url == url + "/form?sent=1"
    expect(page.locator("#sent")).to_have_text("Thanks!")
    context.close()


def test_a_server_rendered_form_posts_with_its_token(web: Server, browser: Browser) -> None:
    post_feedback(browser, web.url, javascript=False)


def test_the_same_form_posts_from_a_live_page(web: Server, browser: Browser) -> None:
    post_feedback(browser, web.url, javascript=True)
