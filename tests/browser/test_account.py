"""The demo's login, profile and avatar upload in Chromium (2 workers), and revocation (tests/apps/accountapp)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import Server, module_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]
MB = 1024 * 1024
# Every text #user ever shows, from the first byte of the document (a flash of "guest" would be caught).
WATCH_USER = """
window.__userTexts = [];
new MutationObserver(() => {
  const el = document.getElementById('user');
  if (el && window.__userTexts[window.__userTexts.length - 1] !== el.textContent) window.__userTexts.push(el.textContent);
}).observe(document, {childList: true, subtree: true, characterData: true});
"""
# Every value #upload-progress takes.
WATCH_PROGRESS = """
window.__progress = [];
new MutationObserver(() => {
  const el = document.getElementById('upload-progress');
  if (el) window.__progress.push([el.getAttribute('value'), el.getAttribute('max')]);
}).observe(document, {attributes: true, subtree: true, attributeFilter: ['value']});
"""


demo = module_server("--workers", "2")


def log_in(page: Page, base: str, user: str, password: str) -> None:
    page.goto(base + "/login")
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("form button[type=submit]")
    page.wait_for_url(base + "/profile")
    page.wait_for_function("() => window.vango && window.vango.state === 'open'")


def test_login_then_the_profile_shows_the_user_on_its_first_paint(demo: Server, page: Page) -> None:
    page.goto(demo.url + "/profile")
    page.wait_for_url(demo.url + "/login")  # the route guard, logged out
    page.add_init_script(WATCH_USER)
    documents: list[str] = []
    page.on("response", lambda r: documents.append(r.text()) if r.request.resource_type == "document"
            and r.url.endswith("/profile") else None)
    page.fill("#username", "alice")
    page.fill("#password", "wrong")
    page.click("form button[type=submit]")
    expect(page.locator("#login-error")).to_have_text("Wrong user name or password")
    log_in(page, demo.url, "alice", "wonderland")
    assert '<strong id="user"' in documents[-1] and ">Alice</strong>" in documents[-1]  # the first HTML
    expect(page.locator("#user")).to_have_text("Alice")
    assert page.evaluate("window.__userTexts") == ["Alice"]  # never anything else, live or not


def test_logout_in_one_tab_sends_the_other_tab_on_another_worker_to_login(demo: Server, browser: Browser) -> None:
    context = browser.new_context()
    try:
        a, b = context.new_page(), context.new_page()
        log_in(a, demo.url, "bob", "builder")
        worker_a = a.evaluate("window.vango.worker")
        for _ in range(60):
            b.goto(demo.url + "/profile")
            b.wait_for_function("() => window.vango && window.vango.state === 'open'")
            if b.evaluate("window.vango.worker") != worker_a:
                break
        else:
            pytest.fail("tab B never landed on the other worker")
        expect(b.locator("#user")).to_have_text("Bob")
        a.click("#logout")
        a.wait_for_url(demo.url + "/login")
        b.wait_for_url(demo.url + "/login")  # told over the bus, on the other worker
        expect(b.locator("#username")).to_be_visible()
    finally:
        context.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("files")
    out = {"big": d / "big.png", "huge": d / "huge.png", "notes": d / "notes.txt"}
    out["big"].write_bytes(os.urandom(20 * MB))
    with open(out["huge"], "wb") as f:
        f.truncate(26 * MB)  # sparse: over the avatar's 25 MB
    out["notes"].write_text("not an image\n")
    return out


def test_a_20_mb_avatar_uploads_with_progress_and_arrives_intact(demo: Server, page: Page,
                                                                  files: dict[str, Path]) -> None:
    log_in(page, demo.url, "alice", "wonderland")
    page.evaluate(WATCH_PROGRESS)
    data = files["big"].read_bytes()
    page.set_input_files("#avatar", str(files["big"]))
    expect(page.locator("#avatar-sha256")).to_have_text(hashlib.sha256(data).hexdigest(), timeout=60_000)
    expect(page.locator("#avatar-size")).to_have_text(str(len(data)))
    seen = [int(v) for v, m in page.evaluate("window.__progress") if m == str(len(data))]
    between = {v for v in seen if 0 < v < len(data)}
    assert len(between) >= 3 and seen == sorted(seen) and seen[-1] == len(data), seen
    expect(page.locator("#upload-error")).to_have_text("")


def test_oversize_and_wrong_type_are_refused_with_their_messages(demo: Server, page: Page,
                                                                files: dict[str, Path]) -> None:
    log_in(page, demo.url, "bob", "builder")
    page.set_input_files("#avatar", str(files["huge"]))
    expect(page.locator("#upload-error")).to_have_text(
        f"huge.png is too large: {26 * MB} bytes (at most {25 * MB} bytes)")
    page.set_input_files("#avatar", str(files["notes"]))
    expect(page.locator("#upload-error")).to_have_text("notes.txt: type text/plain is not allowed (allowed: image/*)")
    expect(page.locator("#avatar-size")).to_have_text("none")


revocable = module_server("--workers", "2", "--app", "tests.apps.accountapp:app")


def test_a_revoked_user_is_logged_out_within_the_interval(revocable: Server, page: Page) -> None:
    from tests.apps.accountapp import INTERVAL

    log_in(page, revocable.url, "bob", "builder")
    status = page.evaluate("""async () => (await fetch('/revoke/bob', {method: 'POST',
        headers: {'X-CSRF-Token': window.__vango.csrf}})).status""")
    assert status == 200
    page.wait_for_url(revocable.url + "/login", timeout=(INTERVAL * 2 + 1) * 1000)
    page.goto(revocable.url + "/profile")
    page.wait_for_url(revocable.url + "/login")  # the cookie no longer logs in
