"""``--dev --reload`` in Chromium: an open tab picks up the edited code and keeps its state where the shapes match."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import Server, start_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

APP = '''
from vango_mp import App, component, h, use_signal


@component
def Page():
    n = use_signal({initial})
    return h.main(h.p("{text}", id="ver"), h.p(f"n {{n.get()}}", id="n"), {extra}
                  h.button("+1", id="inc", on_click=lambda: n.set(n.get() + 1)))


app = App({{"/": Page}})
'''


@pytest.fixture(params=[1, 2], ids=["one-worker", "two-workers"])
def hot(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Server, Path]]:
    """Two workers: the session moves between old and new workers while the slots are replaced one by one."""
    module = tmp_path / f"hot_{uuid.uuid4().hex[:8]}.py"
    module.write_text(APP.format(initial="0", text="version one", extra=""))
    server = start_server("--dev", "--reload", "--workers", str(request.param), "--app", f"{module.stem}:app", cwd=tmp_path)
    yield server, module
    server.stop()


def test_an_open_tab_rerenders_with_the_new_code_and_keeps_its_state(hot: tuple[Server, Path], page: Page) -> None:
    server, module = hot
    page.goto(server.url + "/")
    page.wait_for_function("() => window.vango && window.vango.state === 'open'")
    page.click("#inc")
    page.click("#inc")
    expect(page.locator("#n")).to_have_text("n 2")
    loads = page.evaluate("performance.getEntriesByType('navigation').length")
    page.evaluate("window.marker = 'same document'")

    # new code (an element more), the same hooks: the count survives
    module.write_text(APP.format(initial="0", text="version two", extra='h.p("new", id="new"),'))
    expect(page.locator("#ver")).to_have_text("version two", timeout=15_000)
    expect(page.locator("#n")).to_have_text("n 2")
    expect(page.locator("#new")).to_have_text("new")
    assert page.evaluate("window.marker") == "same document"  # no page load: a live re-render
    assert page.evaluate("performance.getEntriesByType('navigation').length") == loads
    page.wait_for_function("() => window.vango.state === 'open'")
    page.click("#inc")
    expect(page.locator("#n")).to_have_text("n 3")

    module.write_text(APP.format(initial="100", text="version three", extra=""))  # same shape, new initial: state kept
    expect(page.locator("#ver")).to_have_text("version three", timeout=15_000)
    expect(page.locator("#n")).to_have_text("n 3")

    module.write_text(APP.format(initial='"x"', text="version four", extra=""))  # the signal is a str now: it starts afresh
    expect(page.locator("#ver")).to_have_text("version four", timeout=15_000)
    expect(page.locator("#n")).to_have_text("n x")
    assert page.evaluate("window.marker") == "same document"
