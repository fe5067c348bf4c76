"""Open files at the edge: raise the limit, budget the live sockets, keep accepting through EMFILE.

Every attached session holds exactly one file descriptor, its WebSocket.
At start a worker raises its soft ``RLIMIT_NOFILE`` to the hard limit and
works out how many live sockets it can hold: the limit, less what is open
already (listener, bus, store, logs, stdio) and a reserve for what comes and
goes (page loads, keep-alive connections, sockets being refused). Sockets
past that capacity are refused right after the upgrade with 1013 "server
busy" (``vango_refusals_total{reason="fd_limit"}``), while existing sessions
go on untouched: the client backs off and retries, as for any 1013.

Should the descriptors run out anyway (a flood of plain connections), the
accept loop pauses instead of spinning on ``EMFILE`` with a traceback per
try: connections wait in the listen backlog until descriptors free up
(``vango_accept_paused_total``, one warning per episode).
"""

from __future__ import annotations

import errno
import logging
import os
import resource
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tornado.ioloop import IOLoop

from . import metrics

log = logging.getLogger("vango_mp.fdlimit")

MIN_RESERVE = 16
RESERVE_SHARE = 16  # auto reserve: 1/16 of the limit (at least MIN_RESERVE)
ACCEPT_BATCH = 128  # connections accepted per readiness event (as Tornado: fairness across workers)
PAUSE_MIN, PAUSE_MAX = 0.01, 1.0  # seconds the accept loop rests when descriptors ran out (doubling)
_EXHAUSTED = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


def raise_open_files_limit() -> tuple[int, int, int]:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit; (soft before, soft now, hard).

    An unlimited hard limit is capped at the kernel's ``nr_open`` (setrlimit
    refuses more). A refusal leaves the soft limit as it was.
    """
    before, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:
        target = _nr_open()
    if target > before:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as err:
            log.warning("could not raise the open files limit from %d to %d: %s", before, target, err)
            return before, before, hard
    return before, max(before, target), hard


def _nr_open() -> int:
    try:
        with open("/proc/sys/fs/nr_open") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1 << 20


def open_fds() -> int:
    """Descriptors this process holds now (``/proc/self/fd``; 0 where there is no procfs)."""
    try:
        return len(os.listdir("/proc/self/fd")) - 1  # less the directory listing itself
    except OSError:
        return 0


@dataclass(slots=True)
class SocketBudget:
    """How many live sockets (WebSockets, handshaking or attached) this worker may hold, and how many it does."""

    capacity: int  # 0 = unlimited
    limit: int = 0  # the soft open-files limit it was worked out from
    reserve: int = 0  # descriptors kept for everything else
    sockets: int = 0

    def take(self) -> bool:
        """Count one more live socket; False (nothing counted) at capacity."""
        if self.capacity and self.sockets >= self.capacity:
            return False
        self.sockets += 1
        return True

    def give(self) -> None:
        self.sockets -= 1

    def report(self) -> dict[str, int]:
        return {"capacity": self.capacity, "sockets": self.sockets, "open_files_limit": self.limit,
                "reserve": self.reserve}


def plan(reserve: int = 0) -> SocketBudget:
    """Raise the limit and work out this worker's socket capacity; logged once.

    ``reserve`` (0 = auto: 1/16 of the limit, at least 16) is kept on top of
    the descriptors open now.
    """
    before, soft, hard = raise_open_files_limit()
    if soft == resource.RLIM_INFINITY:
        return SocketBudget(0)
    held = open_fds()
    spare = reserve if reserve > 0 else max(MIN_RESERVE, soft // RESERVE_SHARE)
    capacity = max(1, soft - held - spare)
    log.info("open files limit %d (soft was %d, hard %s): capacity %d live sessions (%d open now, reserve %d)",
             soft, before, "unlimited" if hard == resource.RLIM_INFINITY else hard, capacity, held, spare)
    return SocketBudget(capacity, soft, held + spare)


def add_accept_handler(sock: socket.socket, callback: Callable[[socket.socket, Any], None]) -> Callable[[], None]:
    """Tornado's ``netutil.add_accept_handler``, resting instead of failing when descriptors run out.

    Returns the function that stops accepting (as Tornado's does).
    """
    loop = IOLoop.current()
    state: dict[str, Any] = {"removed": False, "pause": PAUSE_MIN, "timer": None, "paused": 0}

    def accept(fd: Any, events: int) -> None:
        for _ in range(ACCEPT_BATCH):
            if state["removed"]:
                return
            try:
                conn, address = sock.accept()
            except BlockingIOError:
                break
            except ConnectionAbortedError:
                continue
            except OSError as err:
                if err.errno not in _EXHAUSTED:
                    raise
                rest(err)
                return
            callback(conn, address)
        if state["paused"]:
            log.warning("accepting connections again after %d pauses for lack of file descriptors", state["paused"])
            state["paused"], state["pause"] = 0, PAUSE_MIN

    def rest(err: OSError) -> None:
        name = errno.errorcode.get(err.errno or 0, str(err.errno))
        metrics.inc("vango_accept_paused_total", errno=name)
        if not state["paused"]:
            log.warning("accept: %s (%s); pausing accept until descriptors free up (connections wait in the backlog)",
                        os.strerror(err.errno or 0), name)
        state["paused"] += 1
        loop.remove_handler(sock)
        state["timer"] = loop.call_later(state["pause"], resume)
        state["pause"] = min(PAUSE_MAX, state["pause"] * 2)

    def resume() -> None:
        state["timer"] = None
        if not state["removed"]:
            loop.add_handler(sock, accept, IOLoop.READ)

    def remove() -> None:
        if state["timer"] is not None:
            loop.remove_timeout(state["timer"])
            state["timer"] = None
        else:
            loop.remove_handler(sock)
        state["removed"] = True

    loop.add_handler(sock, accept, IOLoop.READ)
    return remove
