"""The one way to open a listening socket, shared by the supervisor and a lone worker.

Every worker slot binds its own SO_REUSEPORT socket to the same address and
the kernel hashes new connections over them (Linux only balances between
sockets of the same effective uid: SO_REUSEPORT hijacking protection).
"""

from __future__ import annotations

import socket

BACKLOG = 1024


def create_listener(host: str, port: int, backlog: int = BACKLOG) -> socket.socket:
    """A non-blocking SO_REUSEPORT listening socket on ``(host, port)``.

    Port 0 lets the kernel pick: bind the first slot to port 0 and the others
    to ``sock.getsockname()[1]``. An IPv6 literal (``::1``) opens an AF_INET6
    socket. Raises OSError (the socket is closed) when the address is taken or invalid.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock
