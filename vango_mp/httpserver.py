"""The worker's HTTP server: Tornado's, plus a drain for graceful stops."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import tornado.httpserver

from . import fdlimit

log = logging.getLogger("vango_mp.worker")


class DrainingHTTPServer(tornado.httpserver.HTTPServer):
    """Tornado's HTTPServer, counting its open HTTP connections so a graceful stop can drain them.

    ``close_all_connections`` cuts a connection even mid-request; a request
    accepted just before the stop would fail. Upgraded WebSockets leave the
    count (their HTTP connection closes on upgrade).
    """

    def initialize(self, *args: Any, **kwargs: Any) -> None:
        super().initialize(*args, **kwargs)
        self.open_connections = 0
        self._all_closed = asyncio.Event()

    def add_sockets(self, sockets: Any) -> None:
        """Tornado's, with an accept loop that rests through EMFILE instead of logging a traceback per try."""
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = fdlimit.add_accept_handler(sock, self._handle_connection)

    def handle_stream(self, stream: Any, address: tuple[Any, ...]) -> None:
        self.open_connections += 1
        self._all_closed.clear()
        super().handle_stream(stream, address)

    def on_close(self, server_conn: object) -> None:
        self.open_connections -= 1
        if not self.open_connections:
            self._all_closed.set()
        super().on_close(server_conn)

    async def drain(self, limit: float) -> None:
        """Wait until every HTTP connection has closed, at most ``limit`` seconds (idle keep-alives stay that long)."""
        if self.open_connections:
            log.info("graceful stop: waiting for %d HTTP connections", self.open_connections)
            try:
                await asyncio.wait_for(self._all_closed.wait(), limit)
            except asyncio.TimeoutError:
                log.info("graceful stop: %d HTTP connections still open, closing them", self.open_connections)
