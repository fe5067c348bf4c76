"""The real ``vango-mp`` supervisor with the real workers and demo app.

Every test starts its own server on an ephemeral port, waits on deadlines
(never fixed sleeps) and signals only processes it started: the supervisor
it spawned and that supervisor's children.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import ROOT, Server, _pump, vango_command
from vango_mp import protocol

from .rawws import Raw, fetch_page

pytestmark = pytest.mark.timeout(120)

STUB = str(Path(__file__).with_name("stub_worker.py"))
_LISTEN = re.compile(r"listening on http://\[?([\w.:]+?)\]?:(\d+)")
_started: list[Server] = []


# ---------------------------------------------------------------- helpers

def wait_for(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except (OSError, psutil.Error):  # a process exiting mid-check: look again
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def launch(*args: str, env: dict[str, str] | None = None, stub: bool = False,
           wait: bool = True, timeout: float = 30.0) -> Server:
    """Start vango-mp (or the supervisor with the stub worker) on 127.0.0.1:0.

    With ``wait``, return once the log says where it listens and that every
    worker reported ready over the bus.
    """
    cmd = [sys.executable, STUB] if stub else vango_command()
    cmd += [*args, "--bind", "127.0.0.1:0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})}, cwd=ROOT)
    server = Server(proc, "127.0.0.1", 0)
    _started.append(server)
    threading.Thread(target=_pump, args=(proc, server.lines), daemon=True).start()
    if wait:
        server.port = int(server.wait_output(_LISTEN.pattern, timeout).group(2))
        server.wait_output(r"all \d+ workers ready", timeout)
    return server


def workers_of(server: Server) -> dict[int, int]:
    """{pid: slot} of the supervisor's live workers, from its log and its children."""
    children = set()
    for child in psutil.Process(server.pid).children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                children.add(child.pid)
        except psutil.NoSuchProcess:
            continue
    spawned = {int(pid): int(slot) for pid, slot in re.findall(r"spawned worker pid (\d+) in slot (\d+)", server.output())}
    return {pid: slot for pid, slot in spawned.items() if pid in children}


def pid_in_slot(server: Server, slot: int) -> int:
    return wait_for(lambda: next((p for p, s in workers_of(server).items() if s == slot), None),
                    what=f"a worker in slot {slot}")


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def gone(pids: list[int]) -> bool:
    return not any(alive(p) for p in pids)


def get(server: Server, path: str) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection (so SO_REUSEPORT may pick any slot)."""
    return server.get(path, timeout=5)


@pytest.fixture(autouse=True)
def cleanup() -> Iterator[None]:
    """Stop every server this test started; SIGKILL leftovers among *their* workers only."""
    yield
    while _started:
        server = _started.pop()
        pids = list(workers_of(server)) if server.proc.poll() is None else []
        server.stop()
        for pid in pids:
            if not gone([pid]):
                os.kill(pid, signal.SIGKILL)


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


def hid_of(html: str, element_id: str) -> int:
    tag = re.search(rf'<[^>]*id="{element_id}"[^>]*>', html)
    assert tag, element_id
    return int(re.search(r'data-hid="(\d+)"', tag.group(0)).group(1))  # type: ignore[union-attr]


class LiveSession:
    """A protocol-level session on /counter or /global."""

    def __init__(self, ws: Raw, welcome: list[Any], page: Any, path: str) -> None:
        self.ws, self.page, self.path = ws, page, path
        self.sid, self.seq, self.worker = welcome[1], welcome[2], welcome[4]
        self.texts: list[str] = []

    @classmethod
    async def open(cls, url: str, path: str) -> LiveSession:
        page = fetch_page(url, path)
        ws = await Raw.connect(url, cookie=page.cookie)
        welcome = await ws.hello(page)
        assert welcome[0] == protocol.WELCOME, welcome
        return cls(ws, welcome, page, path)

    async def click(self, element_id: str) -> None:
        await self.ws.send([protocol.EVENT, 1, hid_of(self.page.html, element_id), "click", None])

    async def read_until(self, pattern: str, timeout: float = 10.0) -> str:
        """Read frames until a SET_TEXT/FULL payload matches ``pattern``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frame = await self.ws.recv(max(0.05, deadline - time.monotonic()))
            if frame is None:
                raise AssertionError("socket closed")
            self.seq = frame[1] if frame[0] in (protocol.PATCHES, protocol.FULL) else self.seq
            found = re.search(pattern, json.dumps(frame, default=str))
            if found:
                return found.group(0)
        raise AssertionError(f"{pattern!r} never arrived")


# ---------------------------------------------------------------- tests

def test_both_workers_serve() -> None:
    server = launch("--workers", "2")
    seen: set[str] = set()
    wait_for(lambda: seen.add(get(server, "/counter")[1]["X-Vango-Worker"]) or seen == {"0", "1"},
             what="responses from both slots")
    assert sorted(workers_of(server).values()) == [0, 1]


def test_sigkilled_worker_respawns_into_its_slot_and_spares_other_sessions() -> None:
    server = launch("--workers", "2")

    async def go() -> None:
        sessions: dict[int, LiveSession] = {}
        for _ in range(40):
            s = await LiveSession.open(server.url, "/counter")
            sessions.setdefault(s.worker, s)
            if len(sessions) == 2:
                break
        assert set(sessions) == {0, 1}
        survivor = sessions[0]
        await survivor.click("inc")
        await survivor.read_until(r"Count: 1")
        victim = pid_in_slot(server, 1)
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: pid_in_slot(server, 1) != victim, what="slot 1 respawned")
        await survivor.click("inc")  # untouched: same socket, same state
        await survivor.read_until(r"Count: 2")
        wait_for(lambda: json.loads(get(server, "/_vango/health")[2])["worker"] == 1, what="slot 1 serving")

    run(go())


def test_term_stops_gracefully_with_exit_0_and_no_process_left() -> None:
    server = launch("--workers", "2", "--graceful-timeout", "5s")
    pids = list(workers_of(server))
    assert len(pids) == 2
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(10) == 0
    assert time.monotonic() - started < 5 + 2
    wait_for(lambda: gone(pids), timeout=2, what="workers gone")


def test_quit_stops_at_once() -> None:
    server = launch("--workers", "2")
    pids = list(workers_of(server))
    server.proc.send_signal(signal.SIGQUIT)
    assert server.proc.wait(5) == 0
    wait_for(lambda: gone(pids), timeout=2, what="workers gone")


def test_sigkilled_supervisor_takes_its_workers_along() -> None:
    server = launch("--workers", "2")
    pids = list(workers_of(server))
    server.proc.kill()
    server.proc.wait(5)
    wait_for(lambda: gone(pids), timeout=2, what="orphaned workers gone")


def test_crash_intensity_stops_the_supervisor_with_exit_1() -> None:
    server = launch("--workers", "1", env={"VANGO_CRASH_PERIOD": "60s", "VANGO_CRASH_INTENSITY": "3"})
    killed: list[int] = []
    while server.proc.poll() is None and len(killed) < 10:
        pid = wait_for(lambda: next((p for p in workers_of(server) if p not in killed), None)
                       or server.proc.poll() is not None, what="a fresh worker")
        if pid is True:
            break
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)
    assert server.proc.wait(10) == 1
    assert len(killed) == 4  # more than 3 crashes in 60 s
    assert "crashed 4 times" in server.output()


def test_ttin_adds_and_ttou_removes_a_worker_never_below_one() -> None:
    server = launch("--workers", "1")
    server.proc.send_signal(signal.SIGTTIN)
    wait_for(lambda: sorted(workers_of(server).values()) == [0, 1], what="a second slot")
    seen: set[str] = set()
    wait_for(lambda: seen.add(get(server, "/")[1]["X-Vango-Worker"]) or seen == {"0", "1"},
             what="both slots serving")
    server.proc.send_signal(signal.SIGTTOU)
    wait_for(lambda: sorted(workers_of(server).values()) == [0], what="back to one slot")
    server.proc.send_signal(signal.SIGTTOU)
    server.wait_output("TTOU ignored")
    assert sorted(workers_of(server).values()) == [0]


def test_usr1_reopens_the_log_file(tmp_path: Path) -> None:
    log = tmp_path / "vango.log"
    server = launch("--workers", "1", "--log-file", str(log), wait=False, env={"VANGO_ACCESS_LOG": "true"})
    wait_for(lambda: "all 1 workers ready" in log.read_text(), what="ready in the log file")
    log.rename(tmp_path / "vango.log.1")
    server.proc.send_signal(signal.SIGUSR1)
    wait_for(lambda: log.exists() and "reopened log files" in log.read_text(), what="a reopened log")
    server.port = int(_LISTEN.search((tmp_path / "vango.log.1").read_text()).group(2))  # type: ignore[union-attr]
    # The worker reopened its copy too (a bus Order): its access log lands in the new file.
    wait_for(lambda: get(server, "/counter") and "GET /counter" in log.read_text(), what="worker logs in the new file")


class Load:
    """Concurrent GET /counter, each on a fresh connection to 127.0.0.1, from a thread of its own.

    Bounded: at most ``limit`` requests; every one is checked (200 and the page),
    and timed, so a test can count those that finished inside a window.
    """

    def __init__(self, port: int, concurrency: int = 16, limit: int = 40_000) -> None:
        self.port, self.concurrency, self.limit = port, concurrency, limit
        self.done: list[float] = []  # monotonic end time of each good request
        self.failures: list[str] = []
        self.started = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self.run()), daemon=True)

    async def one(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(b"GET /counter HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            reply = await reader.read()
        finally:
            writer.close()
        if not reply.startswith(b"HTTP/1.1 200 ") or b"Count: 0" not in reply:
            raise AssertionError(reply[:200])

    async def worker(self) -> None:
        while not self.stop.is_set() and self.started < self.limit:
            self.started += 1
            try:
                await asyncio.wait_for(self.one(), 10)
                self.done.append(time.monotonic())
            except Exception as exc:  # noqa: BLE001 - every failure is the finding
                self.failures.append(repr(exc))

    async def run(self) -> None:
        await asyncio.gather(*(self.worker() for _ in range(self.concurrency)))

    def between(self, start: float, end: float) -> int:
        return sum(start <= t <= end for t in self.done)


class SlowClient:
    """A connection parked on one worker with half a request sent (found via /_vango/health on it).

    A stopping worker drains its HTTP connections: it stays up, not accepting,
    until this request is finished — the slow clients a real reload meets.
    """

    def __init__(self, server: Server) -> None:
        self.conn = socket.create_connection((server.host, server.port), timeout=10)
        self.conn.sendall(b"GET /_vango/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head, body = self.read_reply()
        self.pid = json.loads(body)["pid"]
        self.conn.sendall(b"GET /counter HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n")  # no blank line yet

    def read_reply(self) -> tuple[bytes, bytes]:
        data = b""
        while b"\r\n\r\n" not in data:
            data += self.conn.recv(65536)
        head, body = data.split(b"\r\n\r\n", 1)
        length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))  # type: ignore[union-attr]
        while len(body) < length:
            body += self.conn.recv(65536)
        return head, body

    def finish(self) -> bytes:
        self.conn.sendall(b"\r\n")
        reply = b""
        while chunk := self.conn.recv(65536):
            reply += chunk
        self.conn.close()
        return reply


def test_hup_reloads_every_slot_with_zero_failed_requests() -> None:
    """Thousands of requests, 16 at a time, through a reload of several seconds: none fails.

    Each old worker meets a slow client when it stops: it drains until that
    request is finished, which the test does only after ``hold`` seconds and
    ``per_slot`` more answered requests. So the reload stays in flight long
    enough for the load to cross every step of it, slot after slot: successor
    booting, both accepting, old one no longer accepting but draining, exiting.
    """
    hold, per_slot = 1.5, 250  # well inside a worker's 5 s drain limit even on a loaded machine
    server = launch("--workers", "2", "--graceful-timeout", "10s")
    before = workers_of(server)
    slow: dict[int, SlowClient] = {}
    deadline = time.monotonic() + 10
    while len(slow) < len(before):  # one parked request on each worker
        assert time.monotonic() < deadline, f"no connection reached every worker: {sorted(slow)}"
        client = SlowClient(server)
        if client.pid in slow:
            client.finish()
        else:
            slow[client.pid] = client
    assert set(slow) == set(before)
    replies: dict[int, bytes] = {}

    def release(pid: int) -> None:
        """Once its worker is draining, keep it so for ``hold`` s and ``per_slot`` requests, then finish."""
        try:
            server.wait_output(rf"\[{pid}\] .*graceful stop: waiting for \d+ HTTP connections", timeout=60)
            since, mark = time.monotonic(), len(load.done)
            wait_for(lambda: time.monotonic() - since >= hold and len(load.done) - mark >= per_slot,
                     timeout=60, what=f"{per_slot} requests while worker {pid} drains")
            replies[pid] = slow[pid].finish()
        except Exception as exc:  # noqa: BLE001 - reported by the test thread
            replies[pid] = repr(exc).encode()

    load = Load(server.port)
    load.thread.start()
    releasers = [threading.Thread(target=release, args=(pid,), daemon=True) for pid in slow]
    try:
        wait_for(lambda: len(load.done) > 200, what="load running")
        hup = time.monotonic()
        server.proc.send_signal(signal.SIGHUP)
        for t in releasers:
            t.start()
        server.wait_output("rolling reload complete", timeout=60)
        wait_for(lambda: not (set(workers_of(server)) & set(before)), what="old workers gone")
        complete = time.monotonic()
        served = len(load.done)
        wait_for(lambda: len(load.done) > served + 500, timeout=20, what="load continuing on the new workers")
    finally:
        load.stop.set()
        load.thread.join(30)
        for t in releasers:
            t.join(10)
    assert load.failures == [], (len(load.failures), load.failures[:5])
    window, during = complete - hup, load.between(hup, complete)
    assert window >= len(before) * hold, f"the reload took only {window:.2f} s"
    assert during >= len(before) * per_slot, f"only {during} requests finished in the {window:.1f} s of the reload"
    # A worker drains for at most 5 s (worker.DRAIN_LIMIT), then cuts what is left.
    assert all(r.startswith(b"HTTP/1.1 200 ") and b"Count: 0" in r for r in replies.values()), \
        (f"a parked request was not answered (load ran at {during / window:.0f} requests/s)", replies)
    assert sorted(workers_of(server).values()) == [0, 1]


def test_a_request_under_way_when_its_worker_stops_is_still_answered() -> None:
    """The stopping worker stops accepting, then drains: a half-sent request still gets its response."""
    server = launch("--workers", "1", "--graceful-timeout", "5s")
    (old,) = workers_of(server)
    with socket.create_connection((server.host, server.port), timeout=10) as conn:
        conn.sendall(b"GET /counter HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n")
        wait_for(lambda: "Count: 0" in get(server, "/counter")[2].decode(), what="the old worker serving")
        server.proc.send_signal(signal.SIGHUP)
        server.wait_output(rf"\[{old}\] INFO vango_mp.worker: graceful stop: waiting for 1 HTTP connections", timeout=30)
        conn.sendall(b"\r\n")
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert b"Count: 0" in reply
    server.wait_output("rolling reload complete", timeout=30)


def test_hup_keeps_open_sessions_with_their_state() -> None:
    server = launch("--workers", "2", "--graceful-timeout", "5s")

    async def go() -> None:
        s = await LiveSession.open(server.url, "/counter")
        for n in (1, 2, 3):
            await s.click("inc")
            await s.read_until(rf"Count: {n}")
        server.proc.send_signal(signal.SIGHUP)
        code, _ = await s.ws.closed(timeout=30)
        assert code == 1001  # going away: reconnect and resume
        ws = await Raw.connect(server.url, cookie=s.page.cookie)
        welcome = await ws.hello(s.page, sid=s.sid, last_seq=s.seq)
        assert welcome is not None, (ws.conn.close_code, ws.conn.close_reason, server.output()[-4000:])
        assert welcome[0] == protocol.WELCOME and welcome[3] is True, welcome
        s.ws = ws
        await s.click("inc")
        await s.read_until(r"Count: 4")

    run(go())
