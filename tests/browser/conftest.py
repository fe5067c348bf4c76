"""Headless Chromium (Debian's) driven by Playwright, against a real server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu",
    "--disable-background-networking", "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Per module: Playwright's sync API holds an asyncio loop open in this
    thread while it runs, which would break the asyncio.run() of later tests."""
    path = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    yield pg
    context.close()
