"""Live navigation over the wire: one socket, one session; NAV frames carry URL, mode, title and patches."""

from __future__ import annotations

import asyncio
import urllib.request

import pytest

from tests.conftest import Server, start_server
from vango_mp import protocol

from .rawws import Raw, fetch_page
from .test_live_protocol import find_hid

pytestmark = pytest.mark.timeout(60)


async def nav(ws: Raw, url: str, mode: int = protocol.NAV_PUSH) -> list:
    await ws.send([protocol.NAVIGATE, url, mode])
    frame = await ws.recv()
    assert frame is not None and frame[0] == protocol.NAV, frame
    return frame


def test_a_session_walks_the_demo_pages_on_one_socket(server: Server) -> None:
    async def go() -> None:
        page = fetch_page(server.url, "/counter")
        ws = await Raw.connect(server.url, cookie=page.cookie)
        welcome = await ws.hello(page)
        sid = welcome[1]
        inc = find_hid(page.html, "inc")
        await ws.send([protocol.EVENT, 1, inc, "click", None])
        assert (await ws.recv())[0] == protocol.PATCHES

        frame = await nav(ws, "/todos")
        assert frame[1:5] == [2, "/todos", protocol.NAV_PUSH, "Todos · vango-mp"] and frame[5], frame
        # The todos page works in the same session: its form adds an item.
        html_after = repr(frame[5])
        assert "new-todo" in html_after

        back = await nav(ws, "/counter", protocol.NAV_POP)
        assert back[2:4] == ["/counter", protocol.NAV_POP]
        assert "Count: 0" in repr(back[5])  # mounted again (a page is not kept alive by default)

        missing = await nav(ws, "/no/such/page")
        assert "not-found" in repr(missing[5])
        ws.close()
        # Still one session: resuming it shows the last page.
        again = await Raw.connect(server.url, cookie=page.cookie)
        resumed = await again.hello(page, sid=sid, last_seq=missing[1])
        assert resumed[:4] == [protocol.WELCOME, sid, missing[1], True]
        again.close()

    asyncio.run(go())


def test_unknown_path_is_a_404_with_the_apps_not_found_page(server: Server) -> None:
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(server.url + "/no/such/page", timeout=5)
    assert err.value.code == 404
    body = err.value.read().decode()
    assert 'id="not-found"' in body and "window.__vango=" in body  # a live page, not Tornado's text


def test_items_filter_lives_in_the_query_string(server: Server) -> None:
    async def go() -> None:
        page = fetch_page(server.url, "/items?q=Item%2001")
        assert 'id="item-count"' in page.html and ">10 of 200<" in page.html  # Item 010 .. Item 019
        ws = await Raw.connect(server.url, cookie=page.cookie)
        await ws.hello(page)
        hid = find_hid(page.html, "filter")
        await ws.send([protocol.EVENT, 1, hid, "input", {"value": "Item 1"}])
        frame = await ws.recv()
        # Writing the query replaces the URL: a NAV frame (mode replace) with the filtered list.
        assert frame[0] == protocol.NAV and frame[2:4] == ["/items?q=Item+1", protocol.NAV_REPLACE], frame
        assert "100 of 200" in repr(frame[5])  # Item 100 .. Item 199
        item = await nav(ws, "/items/42")
        assert item[4] == "Item 42 · vango-mp" and "'42'" in repr(item[5])
        ws.close()

    asyncio.run(go())


def test_head_meta_on_the_first_load_and_every_navigation() -> None:
    srv = start_server("--workers", "1", "--app", "tests.apps.navapp:app")

    async def go() -> None:
        page = fetch_page(srv.url, "/a")
        assert '<title>A page</title><meta name="description" content="About &amp; A" data-vango-head>' in page.html
        ws = await Raw.connect(srv.url, cookie=page.cookie)
        await ws.hello(page)
        frame = await nav(ws, "/b")
        assert frame[4] == "B page" and frame[6] == {"description": "B", "robots": "noindex"}
        frame = await nav(ws, "/a", protocol.NAV_POP)
        assert frame[6] == {"description": "About & A"}
        ws.close()

    try:
        asyncio.run(go())
    finally:
        srv.stop()
