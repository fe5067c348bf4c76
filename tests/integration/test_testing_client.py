"""vango_mp.testing against a real single-worker ``vango-mp`` process.

Each test opens its own pages on the module's server (``server`` fixture in
tests/conftest.py) and asserts one behaviour of the client or of the
protocol it speaks.
"""

from __future__ import annotations

import asyncio
import json
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
    VangoTestError,
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


def test_form_fields_keep_every_value_of_a_repeated_name() -> None:
    root = dom.extract_root(
        '<div id="vango-root" data-hid="0"><form data-hid="1">'
        '<input type="checkbox" name="t" value="x" checked data-hid="2">'
        '<input type="checkbox" name="t" value="y" data-hid="3">'
        '<input type="checkbox" name="t" value="z" checked data-hid="4">'
        '<select name="m" multiple data-hid="5"><option value="a" selected>A</option><option value="b">B</option>'
        '<option value="c" selected>C</option></select></form></div>'
    )
    form = dom.select_one(root, "form")
    assert form is not None
    assert dom.form_fields(form) == {"t": ["x", "z"], "m": ["a", "c"]}  # as vango.js's formFields


# -- live navigation on the demo ------------------------------------------------


def test_demo_links_navigate_on_one_session(server: Any) -> None:
    """A link click is a live navigation: same socket and session, new page, title, URL; Back/Forward too."""

    async def scenario(c: TestClient) -> None:
        page = await c.open("/counter")
        assert page.title == "Counter · vango-mp"
        sid = page.session_id
        await page.click("#inc")
        await page.click('a[href="/todos"]')
        assert (page.url, page.path, page.title) == (c.base_url + "/todos", "/todos", "Todos · vango-mp")
        assert page.exists("#new-todo") and not page.exists("#count")
        await page.click_link("Items")
        assert page.text("#item-count") == "200 of 200"
        await page.back()
        assert page.title == "Todos · vango-mp" and page.exists("#new-todo")
        await page.back()
        assert page.url == c.base_url + "/counter" and page.text("#count") == "Count: 0"  # mounted again
        await page.forward()
        assert page.path == "/todos"
        await page.navigate("/items/7")
        assert page.text("#item-id") == "7" and page.title.startswith("Item 7")
        assert [u for u, _ in page.history] == ["/counter", "/todos", "/items/7"]
        assert page.session_id == sid and page.state is PageState.OPEN and page.errors == []
        assert page.navs_applied == 6

    run(scenario, server.url)


def test_demo_query_writes_replace_the_url(server: Any) -> None:
    async def scenario(c: TestClient) -> None:
        page = await c.open("/items")
        await page.fill("#filter", "1")
        await page.wait_for(lambda p: p.path == "/items?q=1", what="the query in the URL")
        assert page.url == c.base_url + "/items?q=1" and len(page.history) == 1
        await page.navigate("/counter")
        await page.back()
        assert page.text("#item-count") == "119 of 200"  # the query round trip: the filter is back

    run(scenario, server.url)


def test_demo_unknown_path_is_a_404_page_live_or_loaded(server: Any) -> None:
    async def scenario(c: TestClient) -> None:
        page = await c.open("/no/such/page")
        assert page.status == 404 and page.exists("#not-found") and page.state is PageState.OPEN
        await page.navigate("/counter")
        await page.navigate("/nope")
        assert page.exists("#not-found") and page.path == "/nope"

    run(scenario, server.url)


def test_package_docstring_example_runs(server: Any) -> None:
    """vango_mp.testing's own example, as printed (against this module's demo server)."""
    import textwrap

    import vango_mp.testing

    doc = vango_mp.testing.__doc__ or ""
    block = doc.split("::\n", 1)[1].split("\nThe client runs", 1)[0]
    code = textwrap.dedent(block).replace("http://127.0.0.1:8080", server.url)
    namespace: dict[str, Any] = {}
    exec(compile(code, "vango_mp.testing docstring", "exec"), namespace)
    asyncio.run(namespace["test_counter"]())


# -- live navigation against a scripted server -----------------------------------
# A tiny server speaking the wire protocol, so each frame the client sends and
# each odd answer (redirect, full load, gap, silence) is under the test's control.

PAGES = {"/a": "Page A", "/b": "Page B", "/new": "New"}
LINKS = (
    '<a id="to-b" href="/b">B</a><a id="to-b-sec" href="/b#sec">B sec</a><a id="to-old" href="/old#top">Old</a>'
    '<a id="frag" href="#here">Here</a><a id="blank" href="/b" target="_blank">x</a>'
    '<a id="download" href="/b" download>x</a><a id="reload" href="/b" data-vango-reload>x</a>'
    '<a id="away" href="https://example.com/x">x</a><a id="listening" href="/b" data-hid="2" data-ve="click">x</a>'
    '<div data-hid="3" data-ve="click"><a id="inside" href="/b">x</a></div>'
    '<a id="pf" href="/b" data-prefetch>x</a><a id="pf-off" href="/new" data-prefetch="false">x</a>'
    '<a id="pf-plain" href="/new">x</a><a id="pf-here" href="/a" data-prefetch>x</a>'
)


class Scripted:
    """The fake server's state: what it received, how it answers NAVIGATE (``routes``: url -> (url, mode))."""

    def __init__(self) -> None:
        self.frames: list[list[Any]] = []  # every client frame, in order
        self.sockets = 0
        self.sessions = 0
        self.closes: list[int | None] = []
        self.routes: dict[str, tuple[str, int] | None] = {
            "/old": ("/new", protocol.NAV_PUSH),  # a redirect
            "/b?x": ("/b?x=1", protocol.NAV_PUSH),  # canonical query, same path
            "/full": ("/a", protocol.NAV_LOAD),  # another app on this origin: a full load
            "/external": ("https://example.com/x", protocol.NAV_LOAD),
            "/silent": None,  # never answered
        }
        self.prefetch_all = False

    def sent(self, kind: int) -> list[list[Any]]:
        return [f for f in self.frames if f[0] == kind]


def scripted_app(state: Scripted) -> Any:
    import tornado.web
    import tornado.websocket

    class PageHandler(tornado.web.RequestHandler):
        def get(self) -> None:
            path = self.request.path
            known = path in PAGES
            self.set_status(200 if known else 404)
            boot = {"csrf": "tok", "path": self.request.uri, "ws": "/_vango/ws", "worker": 0, "h": f"h{path}"}
            if state.prefetch_all:
                boot["prefetch"] = True
            body = PAGES.get(path, "Not found")
            self.write(f"<!doctype html><html><head><title>{body} &amp; co</title></head><body>"
                       f'<div id="vango-root" data-hid="0"><main data-hid="1">{body}</main>{LINKS}</div>'
                       f"<script>window.__vango = {json.dumps(boot)};</script></body></html>")

    class Socket(tornado.websocket.WebSocketHandler):
        def open(self) -> None:
            state.sockets += 1
            self.seq = 0
            self.log: list[list[Any]] = []  # frames sent, for RESYNC

        def push(self, frame: list[Any], *, send: bool = True) -> None:
            self.log.append(frame)
            if send:
                self.write_message(protocol.encode(frame), binary=True)

        def nav(self, url: str, mode: int, *, send: bool = True) -> None:
            self.seq += 1
            title = PAGES.get(url.split("?")[0], "") + " · fake"
            self.push([protocol.NAV, self.seq, url, mode, title, [[protocol.SET_TEXT, 1, 0, f"at {url}"]]], send=send)

        def on_message(self, message: str | bytes) -> None:
            frame = decode_server(message)
            state.frames.append(frame)
            kind = frame[0]
            if kind == protocol.HELLO:
                state.sessions += frame[4] is None
                self.push([protocol.WELCOME, frame[4] or f"sid-{state.sessions}", self.seq, frame[4] is not None, 0])
            elif kind == protocol.PING:
                self.write_message(protocol.encode([protocol.S_PONG, frame[1]]), binary=True)
            elif kind == protocol.RESYNC:
                for f in self.log:
                    if f[0] in (protocol.PATCHES, protocol.NAV) and f[1] > frame[1]:
                        self.write_message(protocol.encode(f), binary=True)
            elif kind == protocol.EVENT and frame[2] == 1:  # the page writes its query: an unasked replace
                self.nav("/a?q=1", protocol.NAV_REPLACE)
            elif kind == protocol.EVENT:
                self.seq += 1
                self.push([protocol.PATCHES, self.seq, []])
            elif kind == protocol.NAVIGATE:
                url, mode = frame[1], frame[2]
                if url == "/gap":  # a PATCHES frame lost in transit before the NAV
                    self.seq += 1
                    self.push([protocol.PATCHES, self.seq, []], send=False)
                    self.nav("/a", protocol.NAV_PUSH)
                    return
                if url == "/twice":  # a replay overlap: the same NAV twice
                    self.nav("/b", protocol.NAV_PUSH)
                    self.write_message(protocol.encode(self.log[-1]), binary=True)
                    return
                answer = state.routes.get(url, (url, mode))
                if answer is not None:
                    self.nav(*answer)

        def on_close(self) -> None:
            state.closes.append(self.close_code)

    return tornado.web.Application([(r"/_vango/ws", Socket), (r"/.*", PageHandler)])


def scripted(fn: Callable[[TestClient, Scripted], Awaitable[Any]], **state_kwargs: Any) -> Any:
    """Run ``fn(client, state)`` against a fresh scripted server in its own event loop."""
    import tornado.httpserver
    import tornado.testing

    async def main() -> Any:
        state = Scripted()
        for k, v in state_kwargs.items():
            setattr(state, k, v)
        sock, port = tornado.testing.bind_unused_port()
        http = tornado.httpserver.HTTPServer(scripted_app(state))
        http.add_sockets([sock])
        try:
            async with TestClient(f"http://127.0.0.1:{port}", timeout=2.0) as client:
                return await fn(client, state)
        finally:
            http.stop()

    return asyncio.run(main())


def test_link_click_sends_navigate_push_and_applies_the_nav() -> None:
    async def scenario(c: TestClient, s: Scripted) -> None:
        page = await c.open("/a")
        assert page.title == "Page A & co" and page.path == "/a"
        await page.click("#to-b")
        assert s.sent(protocol.NAVIGATE) == [[protocol.NAVIGATE, "/b", protocol.NAV_PUSH]]
        assert page.text("main") == "at /b"
        assert (page.url, page.path, page.title) == (c.base_url + "/b", "/b", "Page B · fake")
        assert page.history == [["/a", 0], ["/b", 0]] and page.last_seq == 1 and page.navs_applied == 1
        assert s.sockets == 1 and s.sessions == 1 and page.errors == []

    scripted(scenario)


def test_server_url_wins_and_the_fragment_stays_only_on_the_asked_path() -> None:
    async def scenario(c: TestClient, s: Scripted) -> None:
        page = await c.open("/a")
        await page.click("#to-old")  # redirected to /new: the #top was for /old
        assert page.url == c.base_url + "/new" and page.fragment == ""
        await page.navigate("/b?x#sec")  # canonical query, same path: the fragment stays
        assert page.url == c.base_url + "/b?x=1#sec" and page.path == "/b?x=1"
        assert [f[1] for f in s.sent(protocol.NAVIGATE)] == ["/old", "/b?x"], "never the fragment"

    scripted(scenario)


def test_back_and_forward_send_pop_and_leave_the_history() -> None:
    async def scenario(c: TestClient, s: Scripted) -> None:
        page = await c.open("/a")
        await page.click("#to-b-sec")
        assert page.url == c.base_url + "/b#sec"
        await page.back()
        assert s.sent(protocol.NAVIGATE)[-1] == [protocol.NAVIGATE, "/a", protocol.NAV_POP]
        assert (page.path, page.title, page.text("main")) == ("/a", "Page A · fake", "at /a")
        await page.forward()
        assert s.sent(protocol.NAVIGATE)[-1] == [protocol.NAVIGATE, "/b", protocol.NAV_POP]
        assert page.url == c.base_url + "/b#sec" and page.history == [["/a", 0], ["/b#sec", 0]]
        with pytest.raises(VangoTestError):
            await page.forward()

    scripted(scenario)


def test_fragment_links_on_the_page_need_no_server() -> None:
    async def scenario(c: TestClient, s: Scripted) -> None:
        page = await c.open("/a")
        await page.click("#frag")
        assert page.url == c.base_url + "/a#here" and len(page.history) == 2
        await page.back()
        assert page.url == c.base_url + "/a"
        assert s.sent(protocol.NAVIGATE) == []

    scripted(scenario)


def test_replace_and_unasked_replace_keep_the_history_length() -> None:
    async def scenario(c: TestClient, s: Scripted) -> None:
        page = await c.open("/a#top")
        await page.navigate("/b", replace=True)
        assert s.sent(protocol.NAVIGATE) == [[protocol.NAVIGATE, "/b", protocol.NAV_REPLACE]]
        assert page.history == [["/b", 0]]
        await page.navigate("/a#top")
        await page.send_event(1, "input", {"value": "1"})  # the server answers with NAV replace /a?q=1
        assert page.history == [["/b", 0], ["/a?q=1#top", 0]] and page.path == "/a?q=1"

    scripted(scenario)


def test_nav_frames_are_sequenced_like_patches() -> None:
    async def scenario(c: TestClient, s: Scripted) -> None:
        page = await c.open("/a")
        await page.navigate("/gap")  # seq 2 arrives first: RESYNC 0, then the replay applies both
        assert s.sent(protocol.RESYNC) == [[protocol.RESYNC, 0]]
        assert page.last_seq == 2 and page.path == "/a" and len(page.history) == 2
        await page.navigate("/twice")
        await page.ping()  # the duplicate has arrived by now
        assert page.last_seq == 3 and len(page.history) == 3 and page.errors == []

    scripted(scenario)


def test_a_reconnect_says_hello_with_the_url_navigated_to() -> None:
    async def scenario(c: TestClient, s: Scripted) -> None:
        page = await c.open("/a?x=1")
        await page.navigate("/b")
        page.drop()
        await page.wait_closed()
        await page.resume()
        hellos = s.sent(protocol.HELLO)
        assert [h[3] for h in hellos] == ["/a?x=1", "/b"] and hellos[1][4] == page.session_id

    scripted(scenario)


def test_nav_load_is_a_full_load_with_a_new_session() -> None:
    async def scenario(c: TestClient, s: Scripted) -> None:
        page = await c.open("/a")
        first = page.session_id
        await page.navigate("/full")  # answered with NAV mode 3 (load /a)
        assert s.sockets == 2 and page.session_id != first and page.state is PageState.OPEN
        assert s.sent(protocol.HELLO)[-1][6] == "h/a", "the new document's SSR hash, though the old one was patched"
        assert protocol.Close.GOING_AWAY in s.closes, "the old document's socket went away"
        assert page.title == "Page A & co" and page.text("main") == "Page A"  # the SSR of the new load
        assert [u for u, _ in page.history] == ["/a", "/a"] and page.history[0][1] != page.history[1][1]
        await page.back()  # an entry of the previous document: loaded in full again
        assert s.sockets == 3 and page.history_index == 0 and page.state is PageState.OPEN

    scripted(scenario)


def test_nav_load_elsewhere_leaves_the_tab_at_that_url() -> None:
    async def scenario(c: TestClient, s: Scripted) -> None:
        page = await c.open("/a")
        await page.navigate("/external")
        assert page.url == "https://example.com/x" and page.state is PageState.CLOSED
        unconnected = await c.open("/a", connect=False)
        await unconnected.click("#away")
        assert unconnected.url == "https://example.com/x" and unconnected.state is PageState.CLOSED

    scripted(scenario)


def test_links_the_client_does_not_take_live() -> None:
    async def scenario(c: TestClient, s: Scripted) -> None:
        page = await c.open("/a")
        for sel in ("#blank", "#download"):
            with pytest.raises(NoHandler):
                await page.click(sel)
        await page.click("#listening")  # a listening <a> is an event, not a navigation
        assert s.sent(protocol.EVENT)[-1][2] == 2 and page.path == "/a"
        await page.click("#inside")  # a link inside a listener: the event, then the navigation
        assert s.sent(protocol.EVENT)[-1][2] == 3 and page.path == "/b"
        await page.click("#reload")  # data-vango-reload: a full load, a new session
        assert s.sockets == 2 and s.sessions == 2 and page.path == "/b" and page.text("main") == "Page B"
        await page.disconnect()
        await page.click("#to-b")  # the socket is closed: a full load too
        assert s.sockets == 3 and page.state is PageState.OPEN
        await page.click("#away")
        assert page.url == "https://example.com/x" and page.state is PageState.CLOSED
        assert [f[1] for f in s.sent(protocol.NAVIGATE)] == ["/b"]

    scripted(scenario)


def test_no_nav_is_a_frame_timeout() -> None:
    async def scenario(c: TestClient, s: Scripted) -> None:
        page = await c.open("/a")
        with pytest.raises(FrameTimeout, match="NAVIGATE /silent"):
            await page.navigate("/silent", timeout=0.3)

    scripted(scenario)


def test_hover_prefetches_marked_links_once_per_30_s() -> None:
    async def scenario(c: TestClient, s: Scripted) -> None:
        page = await c.open("/a")
        assert await page.hover("#pf") is True
        assert await page.hover("#pf") is False  # deduplicated
        for sel in ("#pf-off", "#pf-plain", "#pf-here", "#away", "#reload"):
            assert await page.hover(sel) is False, sel
        await page.click("#pf")  # following it forgets it
        await page.back()
        assert await page.hover("#pf") is True
        await page.ping()
        assert s.sent(protocol.PREFETCH) == [[protocol.PREFETCH, "/b"]] * 2

    scripted(scenario)


def test_hover_prefetches_every_link_when_the_app_opts_in() -> None:
    async def scenario(c: TestClient, s: Scripted) -> None:
        page = await c.open("/a")
        assert await page.hover("#pf-plain") is True
        assert await page.hover("#pf-off") is False
        await page.ping()
        assert s.sent(protocol.PREFETCH) == [[protocol.PREFETCH, "/new"]]

    scripted(scenario, prefetch_all=True)
