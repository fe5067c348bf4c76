"""A minimal worker ``serve()`` for testing the supervisor and bus alone.

Run as ``python tests/integration/stub_worker.py [vango-mp flags]``: the real
``vango-mp`` CLI and supervisor, with this serve() in place of
``vango_mp.worker.serve``. Endpoints: ``/`` (slot and pid), ``/incr``
(global counter +1, answered once the hub sequenced it), ``/count``, ``/hang`` (blocks the
IOLoop, so heartbeats stop), ``/relay?mib=N&size=S&to=K`` (N MiB of random
bytes to slot K -- default the other of two -- through the hub, in S MiB bus
requests, one at a time; ``wait=0``: all at once, answered before they
arrive), ``/deaf?slot=K`` (slot K stops reading its bus socket, so the hub
queues what it sends there; 409 from another slot).

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


class Relay(Base):
    async def get(self) -> None:
        client = self.settings["bus"]
        total, size = int(self.get_argument("mib")), int(self.get_argument("size", "4"))
        target = int(self.get_argument("to", str(1 - self.slot)))
        if target == self.slot:
            self.set_status(409)
            return
        sends = [client.request(target, "stub.sink", os.urandom(size * 1024 * 1024), timeout=60)
                 for _ in range(total // size)]
        if self.get_argument("wait", "1") == "0":
            for send in sends:
                asyncio.ensure_future(send).add_done_callback(lambda f: f.cancelled() or f.exception())
            self.finish(json.dumps({"sent": 0, "slot": self.slot}))
            return
        sent = 0
        for send in sends:
            sent += await send
        self.finish(json.dumps({"sent": sent, "slot": self.slot}))


class Deaf(Base):
    def get(self) -> None:
        if int(self.get_argument("slot")) != self.slot:
            self.set_status(409)
            return
        self.settings["bus"].writer.transport.pause_reading()
        self.finish(json.dumps({"deaf": self.slot}))


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
    client = None
    if bus_path:  # connect first: no request may see globals before the snapshot
        client = BusClient(bus_path, slot=slot, pid=os.getpid(), heartbeat=settings.worker_heartbeat,
                           on_lost=lambda: done.done() or done.set_result(None))
        client.on("stub.sink", lambda body, peer: len(body))
        await client.connect()
        client.on("memory.pressure", lambda body, peer: None)  # the supervisor's broadcast; nothing to evict here
        vglobals.install_backend(vglobals.BusBackend(client))
    hold = os.environ.get("STUB_HOLD_BOOT")
    if hold and os.path.exists(hold):  # booting slowly: not accepting, not ready
        with open(f"{hold}.{os.getpid()}.held", "w"):
            pass
        while os.path.exists(hold) and not done.done():
            await asyncio.sleep(0.02)
    app = tornado.web.Application([("/", Index, args), ("/incr", Incr, args), ("/count", Count, args),
                                   ("/hang", Hang, args), ("/relay", Relay, args), ("/deaf", Deaf, args)], slot=slot, bus=client)
    server = tornado.httpserver.HTTPServer(app)
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
