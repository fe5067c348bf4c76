"""Self-pipe for signals, after trio's ``_wakeup_socketpair.py``.

A signal handler may run between any two bytecodes of the supervisor loop, so
it must not log, allocate much or touch shared state. Ours only appends the
signal number to a deque (atomic under the GIL). The interpreter additionally
writes the signal number into the *wakeup fd* at C level, which makes the
selector in ``Arbiter.wait`` return at once instead of after its timeout.

The pair is non-blocking with tiny buffers: if many signals arrive while the
loop is busy the write side fills up and further bytes are dropped (CPython
ignores ``EAGAIN`` on the wakeup fd when ``warn_on_full_buffer=False``), which
is harmless because the deque, not the pipe, carries the signal numbers; the
pipe only wakes the loop. Linux rounds SO_SNDBUF/SO_RCVBUF up to a few KiB.

Availability: Unix.
"""

from __future__ import annotations

import collections
import logging
import signal
import socket
from types import FrameType

log = logging.getLogger("vango_mp.supervisor")


class WakeupSignals:
    """Queue the given signals and wake a selector when one arrives."""

    def __init__(self, signals: list[signal.Signals]) -> None:
        self.queue: collections.deque[int] = collections.deque()
        self.read_sock, self.write_sock = socket.socketpair()
        for sock in (self.read_sock, self.write_sock):
            sock.setblocking(False)
            # Small buffers: we only need "at least one byte is pending".
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
        self.old_fd = signal.set_wakeup_fd(self.write_sock.fileno(), warn_on_full_buffer=False)
        if self.old_fd != -1:
            log.warning("signal wakeup fd was already set (%d); replacing it", self.old_fd)
        self.signals = list(signals)
        self.old_handlers = {sig: signal.signal(sig, self._handle) for sig in self.signals}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        """Only queue the number: no logging, no work (see module docstring)."""
        self.queue.append(signum)

    def fileno(self) -> int:
        return self.read_sock.fileno()

    def drain(self) -> None:
        """Empty the pipe until it would block; the deque keeps the numbers."""
        try:
            while self.read_sock.recv(4096):
                pass
        except BlockingIOError:
            pass

    def pop_all(self) -> list[int]:
        """Signals received since the last call, in arrival order."""
        out = []
        while self.queue:
            out.append(self.queue.popleft())
        return out

    def close(self) -> None:
        """Restore the previous handlers and wakeup fd."""
        for sig, old in self.old_handlers.items():
            signal.signal(sig, old)
        signal.set_wakeup_fd(self.old_fd)
        self.read_sock.close()
        self.write_sock.close()

    def reset_in_child(self) -> None:
        """In a forked worker: default handlers, no wakeup fd, sockets closed.

        The child inherits our Python-level handlers and the wakeup fd, which
        would write the worker's signals into the supervisor's pipe.
        """
        signal.set_wakeup_fd(-1)
        for sig in self.signals:
            signal.signal(sig, signal.SIG_DFL)
        self.read_sock.close()
        self.write_sock.close()
