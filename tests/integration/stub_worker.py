"""A minimal worker ``serve()`` for testing the supervisor and bus alone.

Run as ``python tests/integration/stub_worker.py [vango-mp flags]``: the real
``vango-mp`` CLI and supervisor, with this serve() in place of
``vango_mp.worker.serve``. Endpoints: ``/`` (slot and pid), ``/incr``
(global counter +1, answered once the hub sequenced it), ``/count``, ``/hang`` (blocks the
IOLoop, so heartbeats stop).

A slow boot: while the file named by ``STUB_HOLD_BOOT`` exists, a worker that
starts joins the bus (and heartbeats) but neither accepts nor reports ready;
it writes ``<that file>.<pid>.held`` once it is holding.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from typing import Any

import tornado.httpserver
import tornado.web

from vango_mp import globals as vglobals
from vango_mp.bus import BusClient

COUNT = vglobals.GlobalSignal("stub.count", 0)


class Base(tornado.web.RequestHandler):
    def initialize(self, slot: int) -> None:
        self.slot = slot

    def set_default_headers(self) -> None:
        self.set_header("X-Vango-Worker", str(self.settings["slot"]))


class Index(Base):
    def get(self) -> None:
        self.finish(json.dumps({"slot": self.slot, "pid": os.getpid()}))


class Incr(Base):
    async def get(self) -> None:
        seq = await COUNT.incr()
        self.finish(json.dumps({"seq": seq}))


class Hang(Base):
    def get(self) -> None:
        time.sleep(3600)  # blocks the IOLoop: heartbeats stop


class Count(Base):
    def get(self) -> None:
        self.finish(json.dumps({"count": COUNT.get(), "slot": self.slot}))


def serve(settings: Any, slot: int, sock: socket.socket, *, bus_path: str | None, secret: bytes, app: object) -> None:
    fail_flag = os.environ.get("STUB_FAIL_IF_EXISTS")
    if fail_flag and os.path.exists(fail_flag):  # lets a test break the next boot
        raise RuntimeError("stub worker told to fail at boot")
    asyncio.run(_serve(settings, slot, sock, bus_path))


async def _serve(settings: Any, slot: int, sock: socket.socket, bus_path: str | None) -> None:
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    args = {"slot": slot}
    app = tornado.web.Application([("/", Index, args), ("/incr", Incr, args), ("/count", Count, args),
                                   ("/hang", Hang, args)], slot=slot)
    server = tornado.httpserver.HTTPServer(app)
    client = None
    if bus_path:  # connect first: no request may see globals before the snapshot
        client = BusClient(bus_path, slot=slot, pid=os.getpid(), heartbeat=settings.worker_heartbeat,
                           on_lost=lambda: done.done() or done.set_result(None))
        await client.connect()
        client.on("memory.pressure", lambda body, peer: None)  # the supervisor's broadcast; nothing to evict here
        vglobals.install_backend(vglobals.BusBackend(client))
    hold = os.environ.get("STUB_HOLD_BOOT")
    if hold and os.path.exists(hold):  # booting slowly: not accepting, not ready
        with open(f"{hold}.{os.getpid()}.held", "w"):
            pass
        while os.path.exists(hold) and not done.done():
            await asyncio.sleep(0.02)
    server.add_sockets([sock])
    if client is not None:
        client.ready()

    def graceful() -> None:
        server.stop()
        loop.call_later(0.2, lambda: done.done() or done.set_result(None))

    loop.add_signal_handler(signal.SIGTERM, graceful)
    loop.add_signal_handler(signal.SIGQUIT, lambda: done.done() or done.set_result(None))
    await done


if __name__ == "__main__":
    from supervisor.cli import main

    sys.exit(main(sys.argv[1:], serve=serve))
