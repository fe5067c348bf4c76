"""Chromium behind a balancer without stickiness: its session moves to the other machine with state and caret.

Two supervisors (two machines) share one Redis and one secret. The browser
talks to a TCP forwarder; switching the forwarder's backend is the balancer
sending the reconnect to the other machine. The session moves live (machine
A's owner hands it over through Redis) and the field being typed in keeps
its value, focus and caret.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import Server, start_server
from tests.integration.redisserver import redis_server
from tests.integration.tcpproxy import SwitchProxy

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


@pytest.fixture
def machines(tmp_path: Path) -> Iterator[tuple[Server, Server, SwitchProxy]]:
    redis = redis_server(tmp_path)
    env = {"VANGO_STORE_URL": redis.url, "VANGO_PERSISTENCE_SECRET": secrets.token_hex(32)}
    started: list[Server] = []
    proxy = None
    try:
        for _ in range(2):
            started.append(start_server("--workers", "2", "--app", "tests.apps.clusterapp:app", env=env))
        proxy = SwitchProxy(started[0].port)
        yield started[0], started[1], proxy
    finally:
        if proxy is not None:
            proxy.close()
        for server in started:
            server.stop()
        redis.stop()


def field_state(page: Page) -> dict[str, Any]:
    return page.evaluate("""() => {
      const a = document.activeElement;
      return {id: a.id, value: a.value, start: a.selectionStart, end: a.selectionEnd, kept: a.__kept === true};
    }""")


def attached(machine: Server) -> int:
    return sum(s["attached"] for s in machine.per_worker("sessions").values())


def test_session_resumes_on_the_other_machine_with_state_and_caret(
        machines: tuple[Server, Server, SwitchProxy], page: Page) -> None:
    a, b, proxy = machines
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(proxy.url + "/todos")
    page.wait_for_function("() => window.vango && window.vango.state === 'open'")
    sid = page.evaluate("window.vango.sessionId")
    field = page.locator("#new-todo")
    field.click()
    field.press_sequentially("first")
    page.keyboard.press("Enter")
    expect(page.locator("li.todo span")).to_have_text(["first"])
    field.press_sequentially("abc")
    expect(field).to_have_attribute("value", "abc")  # the server's draft holds it before we leave
    page.evaluate("""() => {
      const f = document.getElementById('new-todo');
      f.setSelectionRange(1, 1);
      f.__kept = true;
    }""")
    assert attached(a) == 1 and attached(b) == 0

    page.evaluate("window.vango.disconnect()")
    proxy.switch(b.port)  # the balancer sends the reconnect to machine B
    page.evaluate("window.vango.connect()")
    page.wait_for_function("() => window.vango.state === 'open'", timeout=15_000)

    assert page.evaluate("window.vango.sessionId") == sid
    assert proxy.served[b.port] >= 1
    assert attached(b) == 1 and attached(a) == 0  # it lives on B now, and only there
    a.wait_output(r"handing session \S+ to worker -2")  # handed over live by A, not restored
    assert field_state(page) == {"id": "new-todo", "value": "abc", "start": 1, "end": 1, "kept": True}
    expect(page.locator("li.todo span")).to_have_text(["first"])

    page.keyboard.type("x")  # typing goes in at the caret, on machine B
    expect(field).to_have_value("axbc")
    expect(field).to_have_attribute("value", "axbc")
    page.keyboard.press("Enter")
    expect(page.locator("li.todo span")).to_have_text(["first", "axbc"])
    assert errors == []
