"""Async handlers, resources, intervals, errors and boundaries over the real wire (tests/apps/eventsapp.py)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from typing import Any

import pytest

from tests.conftest import Server, module_server
from vango_mp import protocol
from vango_mp.errors import GENERIC_NOTICE
from vango_mp.testing import TestClient

pytestmark = pytest.mark.timeout(90)


srv = module_server("--workers", "1", "--app", "tests.apps.eventsapp:app",
                    env={"VANGO_RESUME_WINDOW": "1s"})
dev_srv = module_server("--workers", "1", "--dev", "--app", "tests.apps.eventsapp:error_app")


def server_log(server: Server) -> dict[str, Any]:
    with urllib.request.urlopen(server.url + "/log", timeout=5) as resp:
        return json.loads(resp.read())


def wait_log(server: Server, predicate: Any, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        log = server_log(server)
        if predicate(log):
            return log
        if time.monotonic() > deadline:
            raise AssertionError(f"the app's log never satisfied the condition: {log}")
        time.sleep(0.05)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_async_handler_writes_are_patched_step_by_step(srv: Server) -> None:
    async def go() -> list[str]:
        async with TestClient(srv.url) as client:
            page = await client.open("/async")
            seen: list[str] = []
            await page.click("#run", wait=False)
            await page.wait_for_text("#done", "done 1")
            seen.append(page.text("#done"))
            await page.click("#release", wait=False)
            await page.wait_for_text("#done", "done 2")
            seen.append(page.text("#done"))
            assert page.errors == [] and page.app_errors == []
            return seen

    assert run(go()) == ["done 1", "done 2"]


def test_loading_listener_gets_event_done_after_the_async_handlers_patches(srv: Server) -> None:
    async def go() -> None:
        async with TestClient(srv.url) as client:
            page = await client.open("/")
            await page.click("#busy2", wait=False)
            await page.wait_for(lambda p: p.events_done, timeout=5)
            # the handler wrote twice (record, then after its sleep): both are applied before EVENT_DONE
            assert page.text("#n") == "2"
            assert len(page.events_done) == 1
            await page.click("#clicker")  # no loading option: no EVENT_DONE
            assert len(page.events_done) == 1

    run(go())


def test_resource_loads_follows_its_deps_and_cancels_the_stale_fetch(srv: Server) -> None:
    async def go() -> None:
        async with TestClient(srv.url) as client:
            page = await client.open("/async", connect=False)
            assert page.text("#res") == "loading"  # the server render starts no fetch
            await page.connect()
            await page.wait_for_text("#res", "value A")
            await page.fill("#q", "stale", wait=False)
            await page.wait_for_text("#res", "loading")
            await page.fill("#q", "fresh", wait=False)
            await page.wait_for_text("#res", "value FRESH")
            await page.fill("#q", "bad")
            await page.wait_for_text("#res", "error no such thing")
            await page.wait_for_text("#ticks", "ticking")  # use_interval runs as a task too
            await page.wait_for_text("#greeting", "effect ran")  # so does an async use_effect

    run(go())
    log = server_log(srv)
    # cancelled while it ran -- or before its first step, when "fresh" came in the same loop turn
    assert "stale" in log["cancelled"] or "stale" not in log["started"]
    assert "fresh" in log["started"]


def test_handler_errors_show_a_generic_notice_and_the_page_goes_on(srv: Server) -> None:
    async def go() -> None:
        async with TestClient(srv.url) as client:
            page = await client.open("/async")
            await page.click("#boom", wait=False)
            await page.wait_for(lambda p: p.app_errors)
            await page.click("#fail", wait=False)
            await page.wait_for(lambda p: len(p.app_errors) == 2)
            assert page.app_errors == [(GENERIC_NOTICE, None)] * 2  # nothing about the code in production
            await page.click("#inc")
            assert page.text("#done") == "done 1"
            assert page.state.value == "open" and page.errors == []

    run(go())
    errors = wait_log(srv, lambda log: len(log["errors"]) >= 2)["errors"]
    kinds = {(e["kind"], e["error"].split("(")[0]) for e in errors}
    assert {("handler", "RuntimeError"), ("task", "LookupError")} <= kinds
    [boom] = [e for e in errors if e["kind"] == "handler" and "sync handler failed" in e["error"]]
    assert boom["event"] == "click" and boom["hid"] > 0 and 'raise RuntimeError("sync handler failed")' in boom["stack"]
    assert "sync handler failed" in srv.output()  # the traceback is in the log


def test_dev_errors_carry_the_exception_and_the_apps_line(dev_srv: Server) -> None:
    async def go() -> tuple[str, str | None]:
        async with TestClient(dev_srv.url) as client:
            page = await client.open("/async")
            await page.click("#boom", wait=False)
            await page.wait_for(lambda p: p.app_errors)
            return page.app_errors[0]

    text, detail = run(go())
    assert text == "RuntimeError: sync handler failed"
    assert detail is not None
    first = detail.splitlines()[0]
    assert "tests/apps/eventsapp.py" in first and "in boom" in first  # the app's line, not the runtime's
    assert 'raise RuntimeError("sync handler failed")' in detail


def test_tasks_die_with_their_session(srv: Server) -> None:
    async def go() -> None:
        async with TestClient(srv.url) as client:
            page = await client.open("/async")
            await page.click("#forever", wait=False)
            await page.click("#inc")  # the click above was handled (events run in order)
            await page.disconnect()  # detached; the resume window (1 s) runs out, the session ends

    run(go())
    wait_log(srv, lambda log: "forever" in log["cancelled"])


def test_a_conditional_hook_resets_its_component_and_the_session_goes_on(srv: Server) -> None:
    async def go() -> None:
        async with TestClient(srv.url) as client:
            page = await client.open("/hooks")
            await page.click("#inc")
            await page.click("#inc")
            assert page.text("#count") == "count 2"
            await page.click("#flip")
            await page.wait_for(lambda p: p.app_errors)
            assert page.text("#count") == "count 0"  # its state started over
            await page.click("#inc")
            assert page.text("#count") == "count 1"
            assert page.errors == []

    run(go())
    [hook] = [e for e in server_log(srv)["errors"] if e["kind"] == "hook"]
    assert "component Hooks" in hook["error"] and "hook #" in hook["error"]


def test_error_boundary_shows_its_fallback_and_resets(srv: Server) -> None:
    async def go() -> None:
        async with TestClient(srv.url) as client:
            page = await client.open("/boundaries")
            await page.click("#arm")
            assert page.text("#fallback") == "fallback: bomb went off"
            await page.click("#fallback")
            assert page.text("#calm") == "calm"
            # outside any boundary: the page keeps its last good DOM, the error is reported
            await page.click("#arm-outside", wait=False)
            await page.wait_for(lambda p: p.app_errors)
            assert page.exists("#outside") and page.exists("#calm")
            await page.click("#disarm-outside", wait=False)
            await page.click("#arm")
            assert page.exists("#fallback") and page.errors == []

    run(go())
    kinds = [e["kind"] for e in server_log(srv)["errors"]]
    assert "render" in kinds


def test_renders_failing_again_and_again_end_the_session_and_the_browser_reloads(srv: Server) -> None:
    async def go() -> tuple[int | None, list]:
        async with TestClient(srv.url) as client:
            page = await client.open("/boundaries")
            await page.click("#arm-outside", wait=False)  # outside any boundary: this render raises ...
            await page.wait_for(lambda p: len(p.app_errors) == 1)
            await page.click("#poke", wait=False)  # ... and so does every render after it
            await page.wait_for(lambda p: len(p.app_errors) == 2)
            assert page.state.value == "open"
            await page.click("#poke", wait=False)  # the third in a row
            code, _ = await page.wait_closed()
            return code, page.app_errors

    code, errors = run(go())
    assert code == protocol.Close.SESSION_EXPIRED  # the client reloads (docs/PROTOCOL.md)
    assert len(errors) == 3


def test_storm_budgets_stop_runaway_loops_with_a_clear_error(srv: Server) -> None:
    async def go() -> None:
        async with TestClient(srv.url) as client:
            page = await client.open("/storm")
            await page.click("#spawn", wait=False)
            await page.wait_for(lambda p: p.app_errors)
            await page.click("#loop", wait=False)
            await page.wait_for(lambda p: len(p.app_errors) == 2)
            assert page.state.value == "open"

    run(go())
    errors = [e["error"] for e in server_log(srv)["errors"] if e["path"] == "/storm"]
    assert any("task storm" in e and "100 task starts per second" in e for e in errors), errors
    assert any("CycleError" in e or "effect storm" in e for e in errors), errors


def test_first_load_that_raises_answers_500(srv: Server, dev_srv: Server) -> None:
    def get(server: Server) -> tuple[int, str]:
        status, headers, body = server.get("/broken")
        assert "Content-Security-Policy" in headers
        return status, body.decode()

    status, body = get(srv)
    assert status == 500 and 'id="server-error"' in body and "KeyError" not in body
    status, body = get(dev_srv)  # error_app: its own error page
    assert status == 500 and "Our own error page" in body and "KeyError" in body
    assert any(e["kind"] == "page" for e in server_log(srv)["errors"])


def test_unknown_event_names_are_still_a_protocol_error(srv: Server) -> None:
    async def go() -> int | None:
        async with TestClient(srv.url) as client:
            page = await client.open("/")
            page.send_frame([protocol.EVENT, 1, 1, "beforeunload", None])
            code, _ = await page.wait_closed()
            return code

    assert run(go()) == protocol.Close.PROTOCOL_ERROR


def test_a_dropped_event_still_ends_its_loading_state(srv: Server) -> None:
    async def go() -> list[int]:
        async with TestClient(srv.url) as client:
            page = await client.open("/")
            hid = int(page.attr("#n", "data-hid") or 0)  # listens to nothing: the event is dropped
            await page.send_event(hid, "click", None, wait=False)
            await page.wait_for(lambda p: p.events_done)
            return page.events_done

    assert len(run(go())) == 1


def test_a_session_whose_live_render_raises_is_refused_with_a_notice(srv: Server) -> None:
    from vango_mp.testing import SessionClosed

    async def go() -> int | None:
        async with TestClient(srv.url) as client:
            page = await client.open("/live-fails", connect=False)
            assert page.text("#ssr") == "server render"
            with pytest.raises(SessionClosed) as refused:
                await page.connect()
            return refused.value.code

    before = srv.health()["sessions"]
    assert run(go()) == protocol.Close.APP_ERROR  # the client shows a notice, no reload loop
    assert any(e["kind"] == "page" and "only the live render" in e["error"] for e in server_log(srv)["errors"])
    assert srv.health()["sessions"] == before  # nothing counted or kept for it
