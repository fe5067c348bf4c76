"""vango_mp.testing against a real single-worker ``vango-mp`` process.

Each test opens its own pages on the module's server (``server`` fixture in
tests/conftest.py) and asserts one behaviour of the client or of the
protocol it speaks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from vango_mp import protocol
from vango_mp.protocol import Close
from vango_mp.testing import (
    ElementNotFound,
    FrameTimeout,
    NoHandler,
    PageState,
    SessionClosed,
    TestClient,
    UpgradeRefused,
    decode_server,
)
from vango_mp.testing import dom


def run(fn: Callable[[TestClient], Awaitable[Any]], url: str, **kwargs: Any) -> Any:
    """Run ``fn(client)`` on a fresh client in its own event loop."""

    async def main() -> Any:
        async with TestClient(url, **kwargs) as client:
            return await fn(client)

    return asyncio.run(main())


# -- counter ----------------------------------------------------------------------


def test_counter_clicks_patch_the_page(server: Any) -> None:
    async def scenario(c: TestClient) -> None:
        page = await c.open("/counter")
        assert page.state is PageState.OPEN
        assert page.text("#count") == "Count: 0"
        await page.click("#inc")
        await page.click("#inc")
        await page.click("#dec")
        assert page.text("#count") == "Count: 1"
        assert page.last_seq == 3
        assert page.errors == []

    run(scenario, server.url)


def test_welcome_names_session_and_worker(server: Any) -> None:
    async def scenario(c: TestClient) -> None:
        page = await c.open("/counter")
        assert page.session_id and len(page.session_id) >= 22  # >= 128 bits
        assert page.worker == 0
        assert page.text("#worker") == "0"
        assert not page.resumed

    run(scenario, server.url)


def test_ssr_page_needs_no_full_frame(server: Any) -> None:
    """HELLO carries the SSR hash; an unchanged page gets no FULL after WELCOME."""

    async def scenario(c: TestClient) -> None:
        page = await c.open("/counter")
        rtt = await page.ping()  # PONG comes after anything sent on WELCOME
        assert rtt >= 0
        assert page.frames_applied == 0

    run(scenario, server.url)


def test_counter_frame_is_small(server: Any) -> None:
    async def scenario(c: TestClient) -> None:
        page = await c.open("/counter")
        await page.click("#inc")
        assert page.last_frame is not None and page.last_frame[0] == protocol.PATCHES
        assert page.last_message is not None and len(page.last_message) + 2 <= 40

    run(scenario, server.url)


# -- todos ------------------------------------------------------------------------


def test_todos_fill_submit_and_remove(server: Any) -> None:
    async def scenario(c: TestClient) -> None:
        page = await c.open("/todos")
        await page.fill("#new-todo", "milk")
        assert page.attr("#new-todo", "value") == "milk"
        await page.submit("form")
        await page.fill("#new-todo", "eggs")
        await page.click("#add-todo")  # a submit button: the form's submit is sent
        assert page.texts("li.todo span") == ["milk", "eggs"]
        assert page.attr("#new-todo", "value") == ""
        await page.click("li.todo button.remove")  # the first one
        assert page.texts("li.todo span") == ["eggs"]
        assert page.errors == []

    run(scenario, server.url)


# -- sessions -------------------------------------------------------------------


def test_disconnect_then_resume_keeps_state(server: Any) -> None:
    async def scenario(c: TestClient) -> None:
        page = await c.open("/counter")
        for _ in range(3):
            await page.click("#inc")
        sid = page.session_id
        await page.disconnect()
        assert page.state is PageState.CLOSED
        assert page.closed_code == Close.NORMAL
        await page.resume()
        assert page.resumed and page.session_id == sid
        assert page.text("#count") == "Count: 3"
        await page.click("#inc")
        assert page.text("#count") == "Count: 4"

    run(scenario, server.url)


def test_dropped_socket_resumes_too(server: Any) -> None:
    async def scenario(c: TestClient) -> None:
        page = await c.open("/counter")
        await page.click("#inc")
        page.drop()
        assert await page.wait_closed() == (1006, None)
        await page.resume()
        assert page.text("#count") == "Count: 1"

    run(scenario, server.url)


def test_resume_replays_frames_missed_while_away(server: Any) -> None:
    async def scenario(c: TestClient) -> None:
        away = await c.open("/global")
        here = await c.open("/global")
        start = int(away.text("#global-count"))
        await away.disconnect()
        await here.click("#global-inc")
        await here.click("#global-inc")
        await away.resume()  # returns once caught up to WELCOME's seq
        assert away.text("#global-count") == str(start + 2)
        assert away.errors == []

    run(scenario, server.url)


def test_gap_in_seq_is_mended_by_resync(server: Any) -> None:
    async def scenario(c: TestClient) -> None:
        page = await c.open("/counter")
        await page.click("#inc")
        page.last_seq -= 1  # pretend frame 1 was lost: frame 2 is a gap
        await page.click("#inc", wait=False)
        await page.wait_for_text("#count", "Count: 2")
        await page.wait_for(lambda p: p.last_seq == 2)
        assert page.errors == []

    run(scenario, server.url)


def test_newer_socket_takes_the_session(server: Any) -> None:
    async def scenario(c: TestClient) -> None:
        first = await c.open("/counter")
        await first.click("#inc")
        second = await c.open("/counter", connect=False)
        second.session_id = first.session_id  # its SSR DOM is at seq 0: frame 1 is replayed
        await second.connect()
        assert await first.wait_closed() == (Close.SESSION_TAKEN, "session resumed elsewhere")
        assert second.text("#count") == "Count: 1"

    run(scenario, server.url)


def test_unknown_session_is_refused_with_4001(server: Any) -> None:
    async def scenario(c: TestClient) -> None:
        page = await c.open("/counter", connect=False)
        page.session_id = "no-such-session"
        with pytest.raises(SessionClosed) as err:
            await page.connect()
        assert err.value.code == Close.SESSION_EXPIRED
        assert page.closed_code == Close.SESSION_EXPIRED

    run(scenario, server.url)


def test_fresh_connect_starts_over_with_a_full_frame(server: Any) -> None:
    async def scenario(c: TestClient) -> None:
        page = await c.open("/counter")
        await page.click("#inc")
        old = page.session_id
        await page.disconnect()
        await page.connect(fresh=True)  # the DOM says 1, the new session 0: a FULL mends it
        assert page.session_id != old and not page.resumed
        await page.wait_for_text("#count", "Count: 0")

    run(scenario, server.url)


def test_leaving_the_client_closes_its_pages(server: Any) -> None:
    async def scenario() -> Any:
        async with TestClient(server.url) as c:
            page = await c.open("/counter")
        return page

    page = asyncio.run(scenario())
    assert page.state is PageState.CLOSED and page.closed_code == Close.NORMAL


# -- security and abuse ---------------------------------------------------------


def test_bad_csrf_token_closes_with_4002(server: Any) -> None:
    async def scenario(c: TestClient) -> None:
        page = await c.open("/counter", connect=False)
        with pytest.raises(SessionClosed) as err:
            await page.connect(csrf="forged")
        assert err.value.code == Close.INVALID_CSRF

    run(scenario, server.url)


def test_foreign_origin_is_refused(server: Any) -> None:
    async def scenario(c: TestClient) -> None:
        page = await c.open("/counter", connect=False)
        with pytest.raises(SessionClosed) as err:
            await page.connect(origin="http://evil.example")
        assert err.value.code == Close.FORBIDDEN_ORIGIN

    run(scenario, server.url)


def test_garbage_frame_closes_only_that_session(server: Any) -> None:
    async def scenario(c: TestClient) -> None:
        bad = await c.open("/counter")
        good = await c.open("/counter")
        bad.raw_send(b"\x07not a frame")
        code, _ = await bad.wait_closed()
        assert code == Close.PROTOCOL_ERROR
        await good.click("#inc")
        assert good.text("#count") == "Count: 1"

    run(scenario, server.url)


def test_text_message_is_a_protocol_error(server: Any) -> None:
    async def scenario(c: TestClient) -> None:
        page = await c.open("/counter")
        page.raw_send("hello")
        assert (await page.wait_closed())[0] == Close.PROTOCOL_ERROR

    run(scenario, server.url)


def test_compression_offer_still_connects(server: Any) -> None:
    async def scenario(c: TestClient) -> None:
        page = await c.open("/counter")
        await page.click("#inc")
        assert page.text("#count") == "Count: 1"
        assert page.last_message is not None and page.last_message[0] == protocol.FLAG_RAW

    run(scenario, server.url, compression=True)


# -- client ergonomics ------------------------------------------------------------


def test_missing_element_and_missing_handler_are_clear_errors(server: Any) -> None:
    async def scenario(c: TestClient) -> None:
        page = await c.open("/counter")
        with pytest.raises(ElementNotFound):
            await page.click("#nope")
        with pytest.raises(NoHandler):
            await page.click("#count")
        with pytest.raises(FrameTimeout):
            await page.wait_for_text("#count", "Count: 99", timeout=0.2)

    run(scenario, server.url)


def test_wait_false_then_wait_for_text(server: Any) -> None:
    async def scenario(c: TestClient) -> None:
        page = await c.open("/counter")
        for _ in range(5):
            await page.click("#inc", wait=False)
        await page.wait_for_text("#count", "Count: 5")

    run(scenario, server.url)


def test_page_without_connect_reads_ssr(server: Any) -> None:
    async def scenario(c: TestClient) -> None:
        page = await c.open("/todos", connect=False)
        assert page.state is PageState.LOADED
        assert page.exists("#new-todo") and page.count("li.todo") == 0
        assert page.csrf and page.boot["ws"] == "/_vango/ws"
        with pytest.raises(SessionClosed):
            await page.click("form button")

    run(scenario, server.url)


# -- pure pieces (no server) ------------------------------------------------------


def test_decode_server_handles_lz4_and_large_arrays() -> None:
    frame = [protocol.PATCHES, 7, [[protocol.SET_TEXT, 1, 0, "x" * 50]] * 300]
    message = protocol.encode(frame)
    assert message[0] == protocol.FLAG_LZ4
    assert decode_server(message) == frame


def test_form_fields_follow_formdata_rules() -> None:
    root = dom.extract_root(
        '<div id="vango-root" data-hid="0"><form data-hid="1">'
        '<input name="a" value="1" data-hid="2"><input name="b" type="checkbox" data-hid="3">'
        '<input name="c" type="checkbox" checked data-hid="4"><input name="d" disabled value="x" data-hid="5">'
        '<textarea name="e" data-hid="6">hi</textarea>'
        '<select name="f" data-hid="7"><option value="p">P</option><option selected>Q</option></select>'
        '<input type="radio" name="g" value="r1" data-hid="8"><input type="radio" name="g" value="r2" data-hid="9">'
        '<button name="s" data-hid="10">go</button></form></div>'
    )
    form = dom.select_one(root, "form")
    assert form is not None
    dom.set_checked(dom.select_one(root, "[value=r2]"), True)  # type: ignore[arg-type]
    assert dom.form_fields(form) == {"a": "1", "c": "on", "e": "hi", "f": "Q", "g": "r2"}
    dom.set_value(dom.select_one(root, "select"), "p")  # type: ignore[arg-type]
    assert dom.form_fields(form)["f"] == "p"
