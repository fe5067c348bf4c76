"""An attached live socket keeps little: callback reading, the upgrade's HTTP objects dropped, a compact dict.

One worker's Tornado application served in this process on 127.0.0.1
(ephemeral port), driven by the protocol-level test client offering
permessage-deflate like a browser; the handler objects are then inspected.
"""

from __future__ import annotations

import asyncio
import gc
import secrets
import socket
import sys
from typing import Any

import pytest
import tornado.httpserver
import tornado.netutil

from vango_mp.demo import app
from vango_mp.live import LiveSocket
from vango_mp.settings import Settings
from vango_mp.testing import TestClient
from vango_mp.worker import Worker
from vango_mp.wsout import SmallQueue
from vango_mp.wsread import LeanProtocol13


def _sockets() -> list[LiveSocket]:
    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, LiveSocket) and o.session is not None]


def _server_coroutines() -> int:
    """Suspended coroutines of a live socket (its handler's or its protocol's); the client's own are not counted."""
    n = 0
    for o in gc.get_objects():
        frame = getattr(o, "cr_frame", None) if asyncio.iscoroutine(o) else None
        owner = frame.f_locals.get("self") if frame is not None else None
        if isinstance(owner, LiveSocket) or isinstance(getattr(owner, "handler", None), LiveSocket):
            n += 1
    return n


def test_an_attached_socket_is_lean_and_still_works() -> None:
    async def main() -> None:
        worker = Worker(Settings(), 0, app, secrets.token_bytes(32))
        [sock] = tornado.netutil.bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
        server = tornado.httpserver.HTTPServer(worker.application())
        server.add_sockets([sock])
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        try:
            async with TestClient(base, compression=True, timeout=10) as client:
                pages = [await client.open("/counter") for _ in range(3)]
                live = _sockets()
                assert len(live) == 3
                for ws in live:
                    assert type(ws.ws_connection) is LeanProtocol13
                    assert ws.request is live[0].request  # one stand-in for the upgrade requests, shared
                    assert ws.request.path == "/_vango/ws" and "Cookie" not in ws.request.headers
                    assert sys.getsizeof(vars(ws)) <= 272  # rebuilt: not the 1,584-byte table, nor 832 or 464
                    assert "finish" not in vars(ws) and isinstance(ws, LiveSocket)
                    with pytest.raises(RuntimeError, match="not supported for Web Sockets"):
                        ws.finish()  # disabled by its class now, as Tornado disables it per instance
                    assert "owner" not in vars(ws) and ws.owner is worker.owner  # a class attribute (serving)
                    assert "_status_code" not in vars(ws) and ws.get_status() == 101  # the class's value
                    assert sys.getsizeof(vars(ws.ws_connection)) <= 296  # still a shared-key dict
                    stream = ws.ws_connection.stream
                    assert type(stream._write_futures) is SmallQueue
                    assert ws._counted.done() and ws._counted.result() is True
                    assert ws.ws_connection._compressor is None  # permessage-deflate offered, declined
                    assert ws.ws_connection.params is live[0].ws_connection.params  # one per worker
                assert _server_coroutines() == 0
                for page in pages:  # events and patches still flow, in order
                    await page.click("#inc")
                    await page.click("#inc")
                assert all("2" in page.text("#count") for page in pages)
                await pages[0].close()
                deadline = asyncio.get_running_loop().time() + 5
                while len(_sockets()) != 2:
                    assert asyncio.get_running_loop().time() < deadline, "the closed socket's session stayed bound"
                    await asyncio.sleep(0.01)
        finally:
            server.stop()
            for session in list(worker.owner.sessions.values()) if hasattr(worker.owner, "sessions") else []:
                session.release()

    asyncio.run(main())


def test_heartbeat_slims_a_stream_that_was_busy_at_attach() -> None:
    class Conn:
        stream: Any

        def is_closing(self) -> bool:
            return False

    import tornado.iostream

    a, b = socket.socketpair()

    async def main() -> None:
        ws = LiveSocket.__new__(LiveSocket)
        conn = Conn()
        conn.stream = tornado.iostream.IOStream(a)
        ws.ws_connection = conn  # type: ignore[assignment]
        ws.last_seen = 0.0
        pinged: list[bool] = []
        ws.ping = lambda data=b"": pinged.append(True)  # type: ignore[method-assign]
        ws.heartbeat(now=1.0, read_timeout=10.0)
        assert pinged == [True] and type(conn.stream._write_futures) is SmallQueue
        conn.stream.close()
        b.close()

    asyncio.run(main())
