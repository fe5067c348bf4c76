"""``/_vango/status`` in Chromium: every worker's row, its sessions changing live over the socket, no polling."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page

from tests.conftest import Server, module_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


dev = module_server("--workers", "2", "--dev")


def attached(page: Page) -> int:
    return int(page.evaluate(
        "() => [...document.querySelectorAll('[data-worker] .attached')].reduce((n, td) => n + +td.textContent, 0)"))


def test_every_worker_and_its_sessions_live(dev: Server, page: Page, browser: Browser) -> None:
    requests: list[str] = []
    page.goto(dev.url + "/_vango/status")
    page.wait_for_function("() => window.vango && window.vango.state === 'open'")
    page.wait_for_function("() => document.querySelectorAll('[data-worker]').length === 2")
    assert sorted(page.eval_on_selector_all("[data-worker]", "rows => rows.map(r => r.dataset.worker)")) == ["0", "1"]
    pids = page.eval_on_selector_all("[data-worker] .pid", "tds => tds.map(t => +t.textContent)")
    assert all(pid > 0 for pid in pids) and len(set(pids)) == 2
    assert page.locator("[data-worker] svg.rss-spark polyline").count() == 2
    sid = page.evaluate("() => window.vango.sessionId")
    page.on("request", lambda req: requests.append(req.url))
    before = attached(page)

    other = browser.new_context().new_page()
    other.goto(dev.url + "/counter")
    other.wait_for_function("() => window.vango && window.vango.state === 'open'")
    page.wait_for_function(f"() => [...document.querySelectorAll('[data-worker] .attached')]"
                           f".reduce((n, td) => n + +td.textContent, 0) === {before + 1}")
    other.context.close()  # its socket closes: the session detaches
    page.wait_for_function(f"() => [...document.querySelectorAll('[data-worker] .attached')]"
                           f".reduce((n, td) => n + +td.textContent, 0) === {before}")
    assert int(page.evaluate(
        "() => [...document.querySelectorAll('[data-worker] .detached')].reduce((n, td) => n + +td.textContent, 0)"
    )) >= 1
    assert page.evaluate("() => window.vango.sessionId") == sid  # the same page and session all along
    assert requests == []  # patches came over the socket; the page never polled


def test_refused_when_not_loopback_and_off_without_dev(dev: Server) -> None:
    forwarded = {"X-Forwarded-For": "203.0.113.9"}  # relayed by a proxy nobody trusts: not loopback
    import urllib.request
    from urllib.error import HTTPError

    for path in ("/_vango/status", "/_vango/status/ws", "/_vango/status.css"):
        with pytest.raises(HTTPError) as err:
            urllib.request.urlopen(urllib.request.Request(dev.url + path, headers=forwarded), timeout=5)
        assert err.value.code == 403, path
