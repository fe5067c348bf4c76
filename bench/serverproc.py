"""The vango-mp server process a benchmark starts and measures: its command, start, health, PIDs.

Every benchmark starts ``vango-mp ... --bind 127.0.0.1:0`` through
:func:`start_server` (the per-IP limits lifted for a load generator that
comes from one address), learns its port from its output, and stops only
the process group it started (:meth:`Server.stop`).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
_LISTEN = re.compile(r"listening on (?:https?://)?\[?([\w.:]+?)\]?:(\d+)")


@dataclass
class Server:
    """The server under test: one we started (``proc``) or one at ``--url``."""

    url: str
    pid: int | None
    proc: subprocess.Popen[str] | None = None
    cmd: list[str] = field(default_factory=list)
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=200))

    def processes(self) -> list[psutil.Process]:
        """The server's process tree (supervisor and workers), empty when unknown."""
        if self.pid is None:
            return []
        try:
            top = psutil.Process(self.pid)
            return [top, *top.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def output(self) -> str:
        """What the server printed (all of it with ``start_server(keep_all_output=True)``, else the last lines)."""
        return "".join(self.lines)

    @property
    def known(self) -> bool:
        return self.pid is not None

    def cpu_seconds(self) -> float:
        return sum(self.cpu_split())

    def cpu_split(self) -> tuple[float, float]:
        """User and system CPU seconds of the tree (system: the kernel's share, loopback TCP mostly)."""
        user, system = self._summed(psutil.Process.cpu_times, "user", "system")
        return user, system

    def memory(self) -> dict[str, int]:
        """Summed RSS and USS of the tree (USS: pages only these processes map)."""
        rss, uss = self._summed(psutil.Process.memory_full_info, "rss", "uss")
        return {"rss": int(rss), "uss": int(uss)}

    def _summed(self, read: Callable[[psutil.Process], Any], *fields: str) -> list[float]:
        """``fields`` of ``read(process)`` summed over the tree (a process gone meanwhile counts nothing)."""
        totals = [0.0] * len(fields)
        for p in self.processes():
            try:
                info = read(p)
            except psutil.NoSuchProcess:
                continue
            for i, name in enumerate(fields):
                totals[i] += getattr(info, name)
        return totals

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # this PID only; its workers die with it (parent-death signal)
            self.proc.wait(5)


def vango_script() -> list[str] | None:
    """The ``vango-mp`` console script of this interpreter's environment, else the one on PATH.

    This environment's first: a ``vango-mp`` on PATH may be another (older) install.
    """
    for candidate in (str(Path(sys.executable).with_name("vango-mp")), shutil.which("vango-mp")):
        if candidate and Path(candidate).exists():
            return [candidate]
    return None


def vango_base() -> list[str]:
    """The ``vango-mp`` command: this environment's script, else the supervisor package run as a module."""
    return vango_script() or [sys.executable, "-m", "supervisor"]


def server_command(override: str | None) -> list[str]:
    if override:
        return override.split()
    return [*vango_base(), "--workers", "1"]


def start_server(cmd: list[str], timeout: float = 30.0, *, lift_ip_limits: bool = True,
                 keep_all_output: bool = False) -> Server:
    """Start ``cmd --bind 127.0.0.1:0``, learn its port from its output, wait for health.

    ``lift_ip_limits``: every bench session comes from 127.0.0.1, so the per-IP
    limits (sessions, concurrent handshakes) meant for real clients are off
    unless a bench tests them. ``keep_all_output``: keep every line it prints
    (a fuzzer reads the whole log), not the last 200.
    """
    env = dict(os.environ)
    if lift_ip_limits:
        env.update(VANGO_MAX_SESSIONS_PER_IP="0", VANGO_MAX_CONCURRENT_HANDSHAKES_PER_IP="0")
    full = [*cmd, "--bind", "127.0.0.1:0"]
    proc = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            cwd=ROOT, start_new_session=True)
    server = Server("", proc.pid, proc, full, deque(maxlen=None if keep_all_output else 200))
    threading.Thread(target=_pump, args=(proc, server.lines), daemon=True).start()
    deadline = time.monotonic() + timeout
    try:
        host, port = wait_listening(proc, server.output, deadline)
    except NotListening as err:
        server.stop()
        raise SystemExit(str(err)) from None
    server.url = f"http://{host}:{port}"
    _wait_healthy(server, deadline)
    return server


class NotListening(Exception):
    """A server started here exited, or never said where it listens, before the deadline."""


def wait_listening(proc: subprocess.Popen[str], output: Callable[[], str], deadline: float) -> tuple[str, int]:
    """(host, port) from the "listening on" line of a starting server's ``output()``, read until ``deadline``
    (tests/conftest.py starts its servers through this too)."""
    while time.monotonic() < deadline:
        found = _LISTEN.search(output())
        if found:
            return found.group(1), int(found.group(2))
        if proc.poll() is not None:
            raise NotListening(f"server exited {proc.returncode}:\n{output()}")
        time.sleep(0.02)
    raise NotListening(f"server never said where it listens:\n{output()}")


def _pump(proc: subprocess.Popen[str], lines: deque[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)


def _wait_healthy(server: Server, deadline: float) -> None:
    import urllib.request

    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(server.url + "/_vango/health", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    server.stop()
    raise SystemExit(f"server never became healthy:\n{''.join(server.lines)}")


def check_local(url: str) -> int:
    """Refuse anything but a local URL; return its port."""
    netloc = url.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = netloc.rpartition(":")
    host = host.strip("[]")
    if host not in ("127.0.0.1", "localhost", "::1") or not port.isdigit():
        raise SystemExit(f"--url must be http://127.0.0.1:PORT (got {url}): this bench sends local traffic only")
    return int(port)


def find_listener(port: int) -> int | None:
    """The PID at the top of the process tree listening on ``port`` (the supervisor), if visible."""
    try:
        pids = {c.pid for c in psutil.net_connections("tcp")
                if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid}
    except psutil.AccessDenied:
        return None
    for pid in pids:
        try:
            if psutil.Process(pid).ppid() not in pids:
                return pid
        except psutil.NoSuchProcess:
            continue
    return None


