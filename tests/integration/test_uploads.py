"""Uploads over real sockets: limits and their messages, several files, progress, cancellation, temporary
files removed, and a worker's memory while 20 MB stream through it (tests/apps/accountapp.py, 2 workers)."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import Server, start_server
from vango_mp import protocol

from .accounts import Live, attrs, hid_of, login, open_live, page, stream_upload, texts, upload_headers

pytestmark = pytest.mark.timeout(120)
MB = 1024 * 1024


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uploads")


@pytest.fixture(scope="module")
def srv(tmp: Path) -> Iterator[Server]:
    server = start_server("--workers", "2", "--app", "tests.apps.accountapp:app", env={"TMPDIR": str(tmp)})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cookie(srv: Server) -> str:
    return login(srv, "bob", "builder")[0]


def leftovers(tmp: Path) -> list[str]:
    """Upload bodies still on disk (in any worker's directory)."""
    return sorted(str(p) for p in tmp.glob("vango-uploads-*/*"))


def wait_clean(tmp: Path, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while leftovers(tmp):
        assert time.monotonic() < deadline, f"temporary files left: {leftovers(tmp)}"
        time.sleep(0.02)


async def post(srv: Server, live: Live, element: str, files: list[tuple[str, str, bytes]],
               chunk: int = 64 * 1024, on_chunk=None) -> tuple[int, bytes]:
    body = b"".join(data for _, _, data in files)
    headers = upload_headers(live, [(name, mime, len(data)) for name, mime, data in files])
    chunks = [body[i:i + chunk] for i in range(0, len(body), chunk)]
    return await asyncio.to_thread(stream_upload, srv, f"/_vango/upload?hid={hid_of(live.page.html, element)}",
                                   headers, chunks, len(body), on_chunk)


def begin_upload(srv: Server, live: Live, name: str, size: int) -> http.client.HTTPConnection:
    """A raw upload of one ``size``-byte text file to the page's #files input: its headers sent, no body yet."""
    headers = upload_headers(live, [(name, "text/plain", size)])
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
    conn.putrequest("POST", f"/_vango/upload?hid={hid_of(live.page.html, 'files')}")
    for k, v in {**headers, "Content-Length": str(size)}.items():
        conn.putheader(k, v)
    conn.endheaders()
    return conn


def text_is(value: str):
    return lambda f: value in texts([f])


def test_several_files_at_once_arrive_whole(srv: Server, cookie: str, tmp: Path) -> None:
    async def run() -> None:
        live = await open_live(srv, "/files", cookie)
        status, body = await post(srv, live, "files", [("a.txt", "text/plain", b"alpha" * 1000),
                                                       ("b.png", "image/png", os.urandom(300_000)),
                                                       ("empty.txt", "text/plain", b"")])
        assert status == 200, body
        await live.frames_until(text_is("a.txt:text/plain:5000:5000;b.png:image/png:300000:300000;"
                                        "empty.txt:text/plain:0:0"))
        live.ws.close()

    asyncio.run(run())
    wait_clean(tmp)  # removed once the handler returned


@pytest.mark.parametrize("files, status, message", [
    ([("big.txt", "text/plain", 2 * MB)], 413, "big.txt is too large: 2097152 bytes (at most 1048576 bytes)"),
    ([("x.pdf", "application/pdf", 10)], 415, "x.pdf: type application/pdf is not allowed (allowed: text/plain, .png)"),
    ([(f"{n}.txt", "text/plain", 1) for n in range(4)], 413, "Too many files: 4 (at most 3)"),
])
def test_refusals_carry_their_message(srv: Server, cookie: str, tmp: Path, files, status, message) -> None:
    async def run() -> None:
        live = await open_live(srv, "/files", cookie)
        headers = upload_headers(live, files)
        length = sum(size for _, _, size in files)
        got = await asyncio.to_thread(stream_upload, srv, f"/_vango/upload?hid={hid_of(live.page.html, 'files')}",
                                      headers, [], length)  # refused before any of the body is read
        assert got[0] == status and message.encode() in got[1], got
        await live.frames_until(text_is(message))  # the component shows it too
        live.ws.close()

    asyncio.run(run())
    assert leftovers(tmp) == []


def test_an_upload_needs_the_csrf_token_and_the_sessions_browser(srv: Server, cookie: str) -> None:
    async def run() -> None:
        live = await open_live(srv, "/files", cookie)
        path = f"/_vango/upload?hid={hid_of(live.page.html, 'files')}"
        headers = upload_headers(live, [("a.txt", "text/plain", 3)])
        status, body = await asyncio.to_thread(stream_upload, srv, path, {**headers, "X-CSRF-Token": "forged"},
                                               [b"abc"], 3)
        assert status == 403 and b"CSRF" in body
        stranger, _ = page(srv, "/login")  # another browser: its own cookie and token, Bob's session id
        foreign = {**headers, "Cookie": stranger.cookie, "X-CSRF-Token": stranger.csrf}
        status, body = await asyncio.to_thread(stream_upload, srv, path, foreign, [b"abc"], 3)
        assert status == 403 and b"does not belong to your session" in body
        live.ws.close()

    asyncio.run(run())


def test_cancel_from_the_component_drops_the_body_and_its_files(srv: Server, cookie: str, tmp: Path) -> None:
    async def run() -> None:
        live = await open_live(srv, "/files", cookie)
        path = f"/_vango/upload?hid={hid_of(live.page.html, 'files')}"
        size = 1 * MB
        headers = upload_headers(live, [("slow.txt", "text/plain", size)])
        cancelled = asyncio.Event()
        loop = asyncio.get_running_loop()

        def chunks():
            yield b"x" * (size // 2)
            asyncio.run_coroutine_threadsafe(cancelled.wait(), loop).result(10)
            for _ in range(8):
                yield b"x" * (size // 16)

        sending = asyncio.ensure_future(asyncio.to_thread(stream_upload, srv, path, headers, chunks(), size))
        await live.frames_until(text_is("uploading"))
        await live.ws.send([protocol.EVENT, 1, hid_of(live.page.html, "cancel"), "click", None])
        await live.frames_until(text_is("Upload cancelled"))
        cancelled.set()
        status, _ = await sending
        assert status in (0, 409)  # the connection was dropped (or the rest refused)
        live.ws.close()

    asyncio.run(run())
    wait_clean(tmp)


def test_a_browser_that_goes_away_mid_upload_leaves_no_files(srv: Server, cookie: str, tmp: Path) -> None:
    async def run() -> None:
        live = await open_live(srv, "/files", cookie)
        conn = begin_upload(srv, live, "half.txt", MB)
        conn.send(b"y" * (MB // 2))
        await live.frames_until(text_is("uploading"))
        conn.close()  # the tab closed mid-body
        await live.frames_until(text_is("cancelled"))
        live.ws.close()

    asyncio.run(run())
    wait_clean(tmp)


def test_twenty_megabytes_stream_through_without_the_worker_holding_them(srv: Server, cookie: str,
                                                                          tmp: Path) -> None:
    data = os.urandom(20 * MB)
    workers = [p for p in psutil.Process(srv.pid).children() if p.is_running()]
    before = {p.pid: p.memory_info().rss for p in workers}
    peak = dict(before)

    def sample(i: int) -> None:
        if i % 16 == 0:  # every MiB of the body
            for p in workers:
                peak[p.pid] = max(peak[p.pid], p.memory_info().rss)

    async def run() -> None:
        live = await open_live(srv, "/profile", cookie)
        status, body = await post(srv, live, "avatar", [("big.png", "image/png", data)], on_chunk=sample)
        assert status == 200, body
        frames = await live.frames_until(text_is(hashlib.sha256(data).hexdigest()))
        assert str(len(data)) in texts(frames)  # #avatar-size: the stored size
        progress = [int(v) for v in attrs(frames, "value")]
        assert len(set(progress)) >= 5 and progress == sorted(progress) and progress[-1] == len(data), progress
        live.ws.close()

    asyncio.run(run())
    growth = {pid: peak[pid] - before[pid] for pid in before}
    print(f"RSS growth per process during a {len(data)} byte upload: {growth}")
    assert max(growth.values()) < len(data) // 4, growth  # streamed to disk: never the whole file in memory
    wait_clean(tmp)


def test_an_upload_received_by_another_worker_reaches_the_session(srv: Server, cookie: str, tmp: Path) -> None:
    async def run() -> None:
        live = await open_live(srv, "/files", cookie)
        path = f"/_vango/upload?hid={hid_of(live.page.html, 'files')}"

        def send(n: int) -> tuple[int, str]:
            conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
            try:
                body = f"try {n}".encode()
                conn.request("POST", path, body=body, headers=upload_headers(live, [(f"{n}.txt", "text/plain",
                                                                                      len(body))]))
                resp = conn.getresponse()
                resp.read()
                return resp.status, resp.headers["X-Vango-Worker"]
            finally:
                conn.close()

        for n in range(40):  # each connection lands on a worker the kernel picks
            status, worker = await asyncio.to_thread(send, n)
            assert status == 200
            if int(worker) != live.worker:
                break
        else:
            pytest.fail("no upload landed on the other worker")
        # Begin, progress and finish went over the bus to the session's worker; the handler ran there.
        await live.frames_until(text_is(f"{n}.txt:text/plain:{len(f'try {n}')}:{len(f'try {n}')}"))
        live.ws.close()

    asyncio.run(run())
    wait_clean(tmp)


def test_a_stalled_body_is_dropped_after_the_idle_timeout(srv: Server, cookie: str, tmp: Path) -> None:
    async def run() -> None:
        live = await open_live(srv, "/files", cookie)
        conn = begin_upload(srv, live, "stall.txt", MB)
        conn.send(b"z" * 1000)  # then nothing more: a stalled (or slowloris) client
        await live.frames_until(text_is("Upload stalled"), timeout=15)  # accountapp: IDLE_TIMEOUT 2 s
        conn.close()
        live.ws.close()

    asyncio.run(run())
    wait_clean(tmp)
