"""bench/serverproc.wait_listening: how benchmarks and the tests' start_server learn a server's port."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from bench.serverproc import NotListening, wait_listening


def _run(code: str) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    return proc, []


def _output(proc: subprocess.Popen[str], lines: list[str]) -> str:
    if not lines and proc.poll() is not None:
        assert proc.stdout is not None
        lines.append(proc.stdout.read())
    return "".join(lines)


def test_the_listening_line_gives_host_and_port() -> None:
    proc, lines = _run("print('vango-mp: listening on http://127.0.0.1:43210', flush=True)")
    proc.wait(10)
    assert wait_listening(proc, lambda: _output(proc, lines), time.monotonic() + 5) == ("127.0.0.1", 43210)


def test_a_server_that_exits_first_is_reported_with_its_code_and_output() -> None:
    proc, lines = _run("print('bad config'); raise SystemExit(3)")
    proc.wait(10)
    with pytest.raises(NotListening, match=r"(?s)server exited 3:.*bad config"):
        wait_listening(proc, lambda: _output(proc, lines), time.monotonic() + 5)


def test_a_silent_server_is_reported_at_the_deadline() -> None:
    proc, lines = _run("import time; time.sleep(30)")
    try:
        started = time.monotonic()
        with pytest.raises(NotListening, match="never said where it listens"):
            wait_listening(proc, lambda: "".join(lines), started + 0.3)
        assert proc.poll() is None  # the caller decides what to do with it
    finally:
        proc.kill()
        proc.wait(5)
