"""The bare Tornado WebSocket echo: the floor of this stack (issue 15's baseline).

``/ws`` answers each "click" with "Count: N" (a counter per connection);
``/_vango/health`` answers 200 so bench/serverproc.py's ``start_server`` can wait
for it. Same Tornado and Python as the server under test, one process, no
GC tuning, no vango code. ``--uvloop`` runs it on uvloop.

    python bench/echo_server.py --bind 127.0.0.1:0 [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import logging

import tornado.web
import tornado.websocket


class Echo(tornado.websocket.WebSocketHandler):
    """One connection: "click" -> "Count: N"."""

    count = 0

    def on_message(self, message: str | bytes) -> None:
        if message == "click":
            self.count += 1
            self.write_message(f"Count: {self.count}")


class Health(tornado.web.RequestHandler):
    def get(self) -> None:
        self.finish({"status": "ok"})


async def serve(host: str, port: int) -> None:
    app = tornado.web.Application([(r"/ws", Echo), (r"/_vango/health", Health)])
    server = app.listen(port, host, backlog=4096)
    bound = next(iter(server._sockets.values())).getsockname()[1]
    print(f"echo listening on http://{host}:{bound}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bind", default="127.0.0.1:0")
    p.add_argument("--uvloop", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    host, _, port = args.bind.rpartition(":")
    factory = None
    if args.uvloop:
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(host, int(port)))


if __name__ == "__main__":
    main()
