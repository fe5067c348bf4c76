"""``--dev --reload``: a real supervisor picks up an edited app module; a --dev stop does not wait on keep-alives."""

from __future__ import annotations

import http.client
import signal
import subprocess
import time
import uuid
from pathlib import Path

from tests.conftest import Server, start_server, vango_command

APP = '''
from vango_mp import App, component, h


@component
def Page():
    return h.p("{text}", id="ver")


app = App({{"/": Page}})
'''


def write_app(folder: Path, name: str, text: str) -> None:
    (folder / f"{name}.py").write_text(APP.format(text=text))


def wait_for_page(server: Server, needle: bytes, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    body = b""
    while time.monotonic() < deadline:
        body = server.get("/", timeout=2)[2]
        if needle in body:
            return
        time.sleep(0.05)
    raise AssertionError(f"{needle!r} not served within {timeout}s; last page: {body[:300]!r}\n{server.output()}")


def test_reload_serves_the_edited_module_imported_afresh(tmp_path: Path) -> None:
    """The app lives in the current directory (found as uvicorn finds it); each edit reaches the page."""
    name = f"hot_{uuid.uuid4().hex[:8]}"  # never importable from anywhere else
    write_app(tmp_path, name, "version one")
    server = start_server("--dev", "--reload", "--workers", "1", "--app", f"{name}:app", cwd=tmp_path)
    try:
        wait_for_page(server, b"version one")
        write_app(tmp_path, name, "version two")
        wait_for_page(server, b"version two")
        server.wait_output(r"--reload: .*changed; reloading the workers")
        # A broken edit: the new worker cannot import it, the old one serves on, the supervisor stays up.
        (tmp_path / f"{name}.py").write_text("def broken(:\n")
        server.wait_output(r"SyntaxError")
        assert b"version two" in server.get("/")[2]
        write_app(tmp_path, name, "version three")
        wait_for_page(server, b"version three")
        assert server.proc.poll() is None
    finally:
        server.stop()


def test_reload_needs_dev() -> None:
    proc = subprocess.run([*vango_command(), "--reload", "--bind", "127.0.0.1:0"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "--reload needs --dev" in proc.stderr


def test_dev_stop_with_open_keep_alive_connections_is_quick() -> None:
    """Idle keep-alive connections (a browser's) do not hold a --dev stop for the drain (5 s without --dev)."""
    server = start_server("--dev", "--workers", "2")
    conns = []
    try:
        for _ in range(6):  # spread over both workers by the kernel's hash
            conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
            conn.request("GET", "/counter")
            conn.getresponse().read()
            conns.append(conn)
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(3)  # generous: it takes about a tenth of a second
        assert server.proc.returncode == 0
    finally:
        for conn in conns:
            conn.close()
        server.stop()
