"""Two tabs loading at once in a fresh browser: both pages connect, neither reloads."""

from __future__ import annotations

import json
import urllib.request

import pytest
from playwright.sync_api import Browser, Route, expect

from tests.conftest import Server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

OPEN = "() => window.vango && window.vango.state === 'open'"


def test_a_page_whose_cookie_another_tab_replaced_still_connects(server: Server, browser: Browser) -> None:
    """Tabs A and B load at once with no cookie: each response mints a token and sets it as the
    cookie; the browser keeps the one that came last (B's). A's page still carries its own token.

    Reproduced in order: A is served (cookie a), then B's cookie lands before A's script connects.
    """
    context = browser.new_context()
    documents: list[str] = []

    def other_tab_lands_first(route: Route) -> None:
        with urllib.request.urlopen(server.url + "/_vango/csrf", timeout=5) as resp:  # B: no cookie, a new token
            token_b = json.loads(resp.read())["token"]
        context.add_cookies([{"name": "vango_csrf", "value": token_b, "url": server.url, "httpOnly": True,
                              "sameSite": "Lax"}])
        route.continue_()

    context.route("**/_vango/vango.js*", other_tab_lands_first)
    a = context.new_page()
    a.on("request", lambda req: req.resource_type == "document" and documents.append(req.url))
    a.goto(server.url + "/counter")
    a.wait_for_function(OPEN)
    cookie = next(c["value"] for c in context.cookies() if c["name"] == "vango_csrf")
    assert a.evaluate("window.__vango.csrf") == cookie, "the client took the token of the cookie it holds"
    assert documents == [server.url + "/counter"], "tab A was not reloaded"
    a.click("#inc")
    expect(a.locator("#count")).to_have_text("Count: 1")
    context.close()
