"""sd_notify without libsystemd: one datagram to ``$NOTIFY_SOCKET``.

See sd_notify(3). The socket path may start with ``@`` for the Linux abstract
namespace (replaced by a NUL byte). When ``NOTIFY_SOCKET`` is unset every call
is a no-op. We remove the variable from our environment on construction so
that workers (which inherit it across fork) never notify by mistake; with
``NotifyAccess=main`` systemd would ignore them anyway.

The watchdog interval comes from ``WATCHDOG_USEC`` (honoured only when
``WATCHDOG_PID`` is unset or is our pid); pings are due at half of it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import MutableMapping

log = logging.getLogger("vango_mp.supervisor")


class Notifier:
    """Send state changes to the service manager; failures are logged once, never raised."""

    def __init__(self, env: MutableMapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.address = self._address(env.pop("NOTIFY_SOCKET", ""))
        self.watchdog_interval = self._watchdog_interval(env)
        self.last_watchdog = 0.0
        self.last_status = ""
        self.failed = False
        self.sock: socket.socket | None = None
        if self.address:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self.sock.setblocking(False)

    @staticmethod
    def _address(path: str) -> str | None:
        if not path:
            return None
        # Abstract namespace: "@name" means "\0name" (no file on disk).
        return "\0" + path[1:] if path.startswith("@") else path

    @staticmethod
    def _watchdog_interval(env: MutableMapping[str, str]) -> float | None:
        usec, pid = env.pop("WATCHDOG_USEC", ""), env.pop("WATCHDOG_PID", "")
        if not usec.isdigit() or (pid and pid != str(os.getpid())):
            return None
        return int(usec) / 1e6 / 2  # ping at half the timeout, as systemd advises

    @property
    def enabled(self) -> bool:
        return self.sock is not None

    def send(self, *fields: str) -> None:
        """Send ``KEY=VALUE`` lines in one datagram."""
        if self.sock is None or not fields:
            return
        try:
            self.sock.sendto("\n".join(fields).encode(), self.address)
        except OSError as exc:
            if not self.failed:  # a dead manager should not flood the log
                log.warning("sd_notify to %r failed: %s", self.address, exc)
            self.failed = True

    def ready(self, status: str = "") -> None:
        self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def reloading(self) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def status(self, text: str) -> None:
        """Send STATUS= only when it changed."""
        if text != self.last_status:
            self.last_status = text
            self.send(f"STATUS={text}")

    def watchdog(self, now: float) -> None:
        """WATCHDOG=1 when due; the caller decides whether we are healthy."""
        if self.watchdog_interval is None or now - self.last_watchdog < self.watchdog_interval:
            return
        self.last_watchdog = now
        self.send("WATCHDOG=1")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
