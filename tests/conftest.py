"""Shared fixtures: real server processes on ephemeral ports, stopped by PID."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bench.serverproc import NotListening, wait_listening

ROOT = Path(__file__).resolve().parent.parent


def vango_command() -> list[str]:
    """The installed console script next to this interpreter, else the module."""
    script = Path(sys.executable).with_name("vango-mp")
    return [str(script)] if script.exists() else [sys.executable, "-m", "supervisor.cli"]


@dataclass
class Server:
    """A running ``vango-mp`` we started; ``url`` is its base URL."""

    proc: subprocess.Popen[str]
    host: str
    port: int
    lines: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(self.url + path)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def health(self) -> dict:
        import json

        return json.loads(self.get("/_vango/health")[2])

    def wait_health(self, predicate: "Callable[[dict], bool]", timeout: float = 10.0) -> dict:
        """Poll /_vango/health (any worker) until ``predicate`` holds."""
        deadline = time.monotonic() + timeout
        while True:
            health = self.health()
            if predicate(health):
                return health
            if time.monotonic() > deadline:
                raise AssertionError(f"health never satisfied the condition: {health}")
            time.sleep(0.02)

    def per_worker(self, key: str, workers: int = 2, timeout: float = 10.0) -> dict[int, Any]:
        """slot -> ``/_vango/health[key]`` of every worker (each request lands on some worker)."""
        seen: dict[int, Any] = {}
        deadline = time.monotonic() + timeout
        while len(seen) < workers:
            health = self.health()
            seen[health["worker"]] = health[key]
            if time.monotonic() > deadline:
                raise AssertionError(f"saw only workers {sorted(seen)} in {timeout}s")
        return seen

    def output(self) -> str:
        return "".join(self.lines)

    def wait_output(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            found = regex.search(self.output())
            if found:
                return found
            time.sleep(0.02)
        raise AssertionError(f"{pattern!r} not seen in server output:\n{self.output()}")

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def start_server(*args: str, env: dict[str, str] | None = None, timeout: float = 20.0,
                 command: list[str] | None = None, cwd: Path | None = None) -> Server:
    """Start ``vango-mp ARGS --bind 127.0.0.1:0`` (or ``command ARGS ...``) and wait until it is healthy."""
    cmd = [*(command or vango_command()), *args]
    if "--bind" not in args:
        cmd += ["--bind", "127.0.0.1:0"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, cwd=cwd or ROOT,
    )
    server = Server(proc, "127.0.0.1", 0)
    threading.Thread(target=_pump, args=(proc, server.lines), daemon=True).start()
    deadline = time.monotonic() + timeout
    try:
        server.host, server.port = wait_listening(proc, server.output, deadline)
    except NotListening as err:
        if proc.poll() is None:
            proc.kill()
        raise AssertionError(str(err)) from None
    while time.monotonic() < deadline:
        try:
            if server.get("/_vango/health", timeout=1)[0] == 200:
                return server
        except OSError:
            pass
        time.sleep(0.05)
    server.stop()
    raise AssertionError(f"server never became healthy:\n{server.output()}")


def _pump(proc: subprocess.Popen[str], lines: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)


def module_server(*args: str, env: dict[str, str] | None = None) -> Any:
    """A module-scoped fixture: ``start_server(*args, env=env)`` before the module's first test, stopped after its last.

    Bind it to the fixture's name in the test module: ``dev = module_server("--workers", "2", "--dev")``.
    """

    @pytest.fixture(scope="module")
    def fixture() -> Iterator[Server]:
        srv = start_server(*args, env=env)
        yield srv
        srv.stop()

    return fixture


server = module_server("--workers", "1")
"""One single-worker server for a test module."""

# `pytest --hypothesis-profile=mutation`: no shrinking, for quick mutation runs (a failure is all they need).
from hypothesis import Phase, settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("mutation", phases=[Phase.explicit, Phase.reuse, Phase.generate])
