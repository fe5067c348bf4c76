"""The live socket against a real one-worker server: handshake, security, bad input."""

from __future__ import annotations

import asyncio
import json

import msgpack
import pytest
import tornado.httpclient
import tornado.websocket

from tests.conftest import Server, start_server
from vango_mp import protocol
from vango_mp.protocol import Close

from .rawws import Raw, fetch_page

pytestmark = pytest.mark.timeout(60)


def run(coro):  # noqa: ANN001, ANN201 - test helper
    return asyncio.run(coro)


def find_hid(html: str, element_id: str) -> int:
    import re

    m = re.search(rf'<[^>]*id="{element_id}"[^>]*>', html)
    assert m, element_id
    return int(re.search(r'data-hid="(\d+)"', m.group(0)).group(1))  # type: ignore[union-attr]


async def open_counter(url: str) -> tuple[Raw, list, int]:
    page = fetch_page(url, "/counter")
    ws = await Raw.connect(url, cookie=page.cookie)
    welcome = await ws.hello(page)
    return ws, welcome, find_hid(page.html, "inc")


def test_every_response_names_its_worker(server) -> None:
    for path in ("/", "/counter", "/_vango/health", "/_vango/vango.js", "/nope"):
        status, headers, _ = server.get(path)
        assert headers["X-Vango-Worker"] == "0", path
    assert server.get("/nope")[0] == 404


def test_health_contract(server) -> None:
    status, _, body = server.get("/_vango/health")
    data = json.loads(body)
    assert status == 200
    assert {"status", "worker", "pid", "sessions", "rss_bytes", "pressure"} <= data.keys()
    assert set(data["sessions"]) >= {"attached", "detached"}
    assert data["rss_bytes"] > 0


def test_script_is_cacheable_under_its_version(server) -> None:
    page = fetch_page(server.url, "/counter")
    import re

    src, version = re.search(r'src="(/_vango/vango\.js\?v=(\w+))"', page.html).groups()  # type: ignore[union-attr]
    status, headers, body = server.get(src)
    assert status == 200 and "immutable" in headers["Cache-Control"]
    assert headers["Content-Type"].startswith("application/javascript")
    assert {k.lower(): v for k, v in headers.items()}["etag"] == f'"{version}"'  # the version names this content
    # The body is the thin client itself, minified: its banner and the line that exposes window.vango.
    assert body.startswith(b"/*! vango.js") and b"window.vango=client.api" in body
    # Another version (a stale page's link) must not be cached for good.
    _, stale, _ = server.get("/_vango/vango.js?v=0" + version)
    assert "immutable" not in stale["Cache-Control"] and "no-cache" in stale["Cache-Control"]


def test_new_session_matching_ssr_gets_welcome_and_no_patches(server) -> None:
    async def go() -> None:
        ws, welcome, _ = await open_counter(server.url)
        assert welcome[0] == protocol.WELCOME and welcome[3] is False and welcome[4] == 0
        with pytest.raises(asyncio.TimeoutError):
            await ws.recv(timeout=0.3)
        ws.close()

    run(go())


def test_click_sends_one_small_patches_frame(server) -> None:
    async def go() -> None:
        ws, _, inc = await open_counter(server.url)
        await ws.send([protocol.EVENT, 1, inc, "click", None])
        msg = await asyncio.wait_for(ws.conn.read_message(), 5)
        assert len(msg) <= 40
        frame = protocol.unpack_message(msg)
        assert frame[0] == protocol.PATCHES and frame[1] == 1
        assert frame[2][0][0] == protocol.SET_TEXT and frame[2][0][-1] == "Count: 1"
        ws.close()

    run(go())


def test_missing_csrf_cookie_is_refused(server) -> None:
    async def go() -> None:
        page = fetch_page(server.url, "/counter")
        ws = await Raw.connect(server.url)  # no cookie
        await ws.send([protocol.HELLO, 1, page.csrf, "/counter", None, 0, None])
        assert (await ws.closed())[0] == Close.INVALID_CSRF

    run(go())


def test_forged_csrf_token_is_refused(server) -> None:
    async def go() -> None:
        ws = await Raw.connect(server.url, cookie="vango_csrf=AAAA.BBBB")
        await ws.send([protocol.HELLO, 1, "AAAA.BBBB", "/counter", None, 0, None])
        assert (await ws.closed())[0] == Close.INVALID_CSRF

    run(go())


@pytest.mark.parametrize("origin", [
    "http://evil.example",
    "https://{host}",  # same host, another scheme
    "http://{host}/path",  # not a bare origin
    "http://{host}.evil.example",
    "null",
])
def test_cross_origin_socket_is_closed_with_4004_after_the_upgrade(server, origin: str) -> None:
    """vango decides, not Tornado's version-dependent pre-check; the client sees 4004 and stops."""
    async def go() -> None:
        host = server.url.split("://", 1)[1]
        ws = await Raw.connect(server.url, origin=origin.format(host=host))
        assert await ws.closed() == (Close.FORBIDDEN_ORIGIN, "origin not allowed")

    run(go())


def test_forged_session_id_gets_session_expired(server) -> None:
    async def go() -> None:
        page = fetch_page(server.url, "/counter")
        ws = await Raw.connect(server.url, cookie=page.cookie)
        await ws.send([protocol.HELLO, 1, page.csrf, "/counter", "forged-id", 3, None])
        assert (await ws.closed())[0] == Close.SESSION_EXPIRED

    run(go())


@pytest.mark.parametrize(
    "payload, code",
    [
        (b"\x00" + msgpack.packb([2, 1, 1, "click"]), Close.PROTOCOL_ERROR),
        (b"\x00" + msgpack.packb([42, 1]), Close.PROTOCOL_ERROR),
        (b"\x00\xc1", Close.PROTOCOL_ERROR),
        (b"\x09junk", Close.PROTOCOL_ERROR),
        (b"\x00" + msgpack.packb([2, 1, 1, "input", {"value": "x" * 70_000}]), Close.MESSAGE_TOO_LARGE),
    ],
)
def test_bad_frame_closes_only_its_own_session(server, payload: bytes, code: int) -> None:
    async def go() -> None:
        bystander, _, inc = await open_counter(server.url)
        victim, _, _ = await open_counter(server.url)
        await victim.send_bytes(payload)
        assert (await victim.closed())[0] == code
        await bystander.send([protocol.EVENT, 1, inc, "click", None])
        frame = await bystander.recv()
        assert frame[0] == protocol.PATCHES and frame[2][0][-1] == "Count: 1"
        bystander.close()

    run(go())
    assert server.proc.poll() is None


def test_text_frame_is_a_protocol_error(server) -> None:
    async def go() -> None:
        ws, _, _ = await open_counter(server.url)
        await ws.send_bytes("hello", binary=False)
        assert (await ws.closed())[0] == Close.PROTOCOL_ERROR

    run(go())


def test_resume_replays_missed_patches(server) -> None:
    async def go() -> None:
        page = fetch_page(server.url, "/counter")
        ws = await Raw.connect(server.url, cookie=page.cookie)
        welcome = await ws.hello(page)
        sid = welcome[1]
        inc = find_hid(page.html, "inc")
        for cseq in range(1, 4):
            await ws.send([protocol.EVENT, cseq, inc, "click", None])
            await ws.recv()
        ws.close()
        await asyncio.sleep(0)  # let the close go out; the server detaches on its own
        again = await Raw.connect(server.url, cookie=page.cookie)
        welcome = await again.hello(page, sid=sid, last_seq=1)
        assert welcome[0] == protocol.WELCOME and welcome[1] == sid and welcome[3] is True
        replayed = [await again.recv(), await again.recv()]
        assert [f[1] for f in replayed] == [2, 3]
        assert replayed[-1][2][0][-1] == "Count: 3"
        again.close()

    run(go())


def test_resume_from_the_future_gets_full_html(server) -> None:
    async def go() -> None:
        page = fetch_page(server.url, "/counter")
        ws = await Raw.connect(server.url, cookie=page.cookie)
        sid = (await ws.hello(page))[1]
        await ws.send([protocol.EVENT, 1, find_hid(page.html, "inc"), "click", None])
        await ws.recv()
        ws.close()
        again = await Raw.connect(server.url, cookie=page.cookie)
        await again.hello(page, sid=sid, last_seq=50)  # a seq the server never sent: resync
        full = await again.recv()
        assert full[0] == protocol.FULL and "Count: 1" in full[2]
        again.close()

    run(go())


HISTORY = 100  # Settings.max_patch_history, the server's default


def test_resume_older_than_the_history_gets_full_not_a_replay_across_the_gap(server) -> None:
    """Frames 1..5 have left the 100-frame history: replaying 6..105 would skip them, so FULL."""
    clicks = HISTORY + 5

    async def go() -> None:
        page = fetch_page(server.url, "/counter")
        ws = await Raw.connect(server.url, cookie=page.cookie)
        sid = (await ws.hello(page))[1]
        inc = find_hid(page.html, "inc")
        for cseq in range(1, clicks + 1):
            await ws.send([protocol.EVENT, cseq, inc, "click", None])
            assert (await ws.recv())[1] == cseq
        ws.close()
        again = await Raw.connect(server.url, cookie=page.cookie)
        welcome = await again.hello(page, sid=sid, last_seq=2)  # frames 3, 4, 5 are gone
        assert welcome[:4] == [protocol.WELCOME, sid, clicks, True], welcome
        full = await again.recv()
        assert full[0] == protocol.FULL, f"expected FULL, got frame type {full[0]} seq {full[1]}"
        assert full[1] == clicks and f"Count: {clicks}" in full[2]
        with pytest.raises(asyncio.TimeoutError):  # and nothing replayed after it
            await again.recv(timeout=0.3)
        # A resume still inside the history is replayed, from the oldest frame kept.
        again.close()
        third = await Raw.connect(server.url, cookie=page.cookie)
        await third.hello(page, sid=sid, last_seq=clicks - HISTORY)
        first = await third.recv()
        assert first[:2] == [protocol.PATCHES, clicks - HISTORY + 1]
        third.close()

    run(go())


def test_origin_behind_a_trusted_tls_proxy_is_same_origin() -> None:
    """A browser on https://host reaches us through a TLS proxy: X-Forwarded-Proto decides, from a trusted proxy only."""
    trusted = start_server("--workers", "1", env={"VANGO_TRUSTED_PROXIES": "127.0.0.1"})
    untrusted = start_server("--workers", "1")

    async def go(srv: Server) -> int | None:
        host = srv.url.split("://", 1)[1]
        page = fetch_page(srv.url, "/counter")
        url = srv.url.replace("http://", "ws://") + "/_vango/ws"
        req = tornado.httpclient.HTTPRequest(url, headers={
            "Origin": f"https://{host}", "X-Forwarded-Proto": "https", "Cookie": page.cookie})
        ws = Raw(await tornado.websocket.websocket_connect(req))
        welcome = await ws.hello(page)
        ws.close()
        return None if welcome is not None and welcome[0] == protocol.WELCOME else ws.conn.close_code

    try:
        assert run(go(trusted)) is None
        assert run(go(untrusted)) == Close.FORBIDDEN_ORIGIN  # anyone could send that header
    finally:
        trusted.stop()
        untrusted.stop()
