"""The real supervisor and bus with a minimal stub worker (tests/integration/stub_worker.py).

These pin the supervisor's own behaviour independently of the app worker:
readiness and the sd_notify sequence, hung-worker detection, sequenced
global writes through the hub, rolling reload under load.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .test_supervisor import alive, cleanup, get, gone, launch, pid_in_slot, wait_for, workers_of  # noqa: F401

pytestmark = pytest.mark.timeout(120)


class FakeNotifySocket:
    """A datagram socket standing in for systemd's; collects every message."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.1)
        self.messages: list[str] = []
        self.times: list[float] = []  # monotonic arrival time of each message
        self.running = True
        self.thread = threading.Thread(target=self.collect, daemon=True)
        self.thread.start()

    def collect(self) -> None:
        while self.running:
            try:
                data = self.sock.recv(4096).decode()
                self.times.append(time.monotonic())
                self.messages.append(data)
            except (TimeoutError, socket.timeout):
                continue

    def first_lines(self) -> list[str]:
        """The first line of each datagram, WATCHDOG/STATUS-only ones left out."""
        return [m.splitlines()[0] for m in self.messages if not m.startswith(("STATUS=", "WATCHDOG=1"))]

    def close(self) -> None:
        self.running = False
        self.thread.join(2)
        self.sock.close()


@pytest.fixture()
def notify_socket(tmp_path: Path) -> Iterator[tuple[str, FakeNotifySocket]]:
    path = str(tmp_path / "notify.sock")
    fake = FakeNotifySocket(path)
    yield path, fake
    fake.close()


@pytest.mark.parametrize("stub", [False, True], ids=["real-worker", "stub-worker"])
def test_sd_notify_sequence(notify_socket: tuple[str, FakeNotifySocket], stub: bool) -> None:
    path, fake = notify_socket
    server = launch("--workers", "2", stub=stub, env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
    wait_for(lambda: "READY=1" in fake.first_lines(), what="READY=1")
    ready_at = fake.messages.index(next(m for m in fake.messages if m.startswith("READY=1")))
    assert "2/2 workers ready" in fake.messages[ready_at]  # only once *every* worker is ready
    wait_for(lambda: "WATCHDOG=1" in fake.messages, what="watchdog pings")
    server.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: fake.first_lines().count("READY=1") == 2, timeout=30, what="READY=1 after reload")
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(10) == 0
    assert fake.first_lines() == ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"]
    reloading = next(m for m in fake.messages if m.startswith("RELOADING=1"))
    assert reloading.splitlines()[1].startswith("MONOTONIC_USEC=")
    assert any(m.startswith("STATUS=") for m in fake.messages)


def test_sd_notify_abstract_socket() -> None:
    name = f"vango-test-{os.getpid()}-{id(object())}"
    fake = FakeNotifySocket("\0" + name)
    try:
        launch("--workers", "1", stub=True, env={"NOTIFY_SOCKET": "@" + name})
        wait_for(lambda: "READY=1" in fake.first_lines(), what="READY=1 on the abstract socket")
    finally:
        fake.close()


def test_watchdog_stops_while_a_worker_hangs_and_the_worker_is_replaced(
        notify_socket: tuple[str, FakeNotifySocket]) -> None:
    path, fake = notify_socket
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000", "VANGO_HEARTBEAT_TIMEOUT": "2s",
           "VANGO_WORKER_HEARTBEAT": "100ms", "VANGO_ABORT_TIMEOUT": "1s"}
    server = launch("--workers", "1", stub=True, env=env)
    hung = pid_in_slot(server, 0)
    wait_for(lambda: fake.messages.count("WATCHDOG=1") >= 3, what="watchdog pings")
    threading.Thread(target=lambda: _ignore(get, server, "/hang"), daemon=True).start()
    server.wait_output(rf"worker pid {hung} \(slot 0\) missed its heartbeats: SIGABRT", timeout=10)
    wait_for(lambda: pid_in_slot(server, 0) != hung, timeout=10, what="a replacement in slot 0")
    # Pings are due every 0.1 s; a silent worker stops them well before the
    # 2 s heartbeat timeout, so the hang shows as one long gap.
    pings = [t for m, t in zip(fake.messages, fake.times) if m == "WATCHDOG=1"]
    assert max(b - a for a, b in zip(pings, pings[1:])) > 0.9
    wait_for(lambda: json.loads(get(server, "/")[2])["slot"] == 0, what="slot 0 serving again")


def _ignore(fn: object, *args: object) -> None:
    try:
        fn(*args)  # type: ignore[operator]
    except OSError:
        pass


def test_global_increments_from_both_workers_lose_nothing() -> None:
    server = launch("--workers", "2", stub=True)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        seqs = list(pool.map(lambda _: json.loads(get(server, "/incr")[2])["seq"], range(200)))
    assert sorted(seqs) == list(range(1, 201))
    seen: dict[int, int] = {}

    def both_agree() -> bool:
        data = json.loads(get(server, "/count")[2])
        seen[data["slot"]] = data["count"]
        return seen == {0: 200, 1: 200}

    wait_for(both_agree, what="both workers at 200")


def test_respawned_worker_gets_the_global_snapshot() -> None:
    server = launch("--workers", "1", stub=True)
    for _ in range(5):
        get(server, "/incr")
    victim = pid_in_slot(server, 0)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: pid_in_slot(server, 0) != victim, what="respawn")
    assert json.loads(wait_for(lambda: get(server, "/count")[2]))["count"] == 5


def test_hup_under_load_fails_no_request() -> None:
    server = launch("--workers", "2", stub=True)
    before = set(workers_of(server))
    failures: list[str] = []
    done = [0]
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                assert get(server, "/")[0] == 200
                done[0] += 1
            except (OSError, AssertionError) as exc:
                failures.append(repr(exc))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: done[0] > 20, what="load running")
        server.proc.send_signal(signal.SIGHUP)
        server.wait_output("rolling reload complete", timeout=30)
        wait_for(lambda: not set(workers_of(server)) & before, what="old workers gone")
        n = done[0]
        wait_for(lambda: done[0] > n + 20, what="load continuing")
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert failures == []


def test_reload_keeps_the_old_worker_accepting_until_the_new_one_is_ready(tmp_path: Path) -> None:
    """The successor boots slowly (it holds before accepting and reporting ready, see
    stub_worker.py): all that time the old worker must go on answering, promptly; it is
    stopped only once the successor reported ready."""
    hold = tmp_path / "hold-boot"
    server = launch("--workers", "1", stub=True, env={"STUB_HOLD_BOOT": str(hold)})
    old = pid_in_slot(server, 0)

    def answer() -> int:
        """The pid that answers "/"; a request left queued (nobody accepting) times out."""
        return json.loads(server.get("/", timeout=2)[2])["pid"]

    assert answer() == old
    hold.touch()
    server.proc.send_signal(signal.SIGHUP)
    held = wait_for(lambda: list(tmp_path.glob("hold-boot.*.held")), what="the successor holding its boot")
    new = int(held[0].name.split(".")[1])
    assert new != old and new in workers_of(server)
    # The supervisor steps a reload every 0.1 s: a second of it stopping nothing is ten turns.
    window = time.monotonic() + 1.0
    answered = 0
    while time.monotonic() < window:
        try:
            pid = answer()
        except OSError as exc:
            raise AssertionError(f"request {answered + 1} failed while the successor was booting: {exc!r}\n"
                                 f"{server.output()[-2000:]}") from None
        assert pid == old, f"answered by {pid} while the successor {new} was not ready"
        answered += 1
    assert answered >= 10 and alive(old)
    hold.unlink()  # the successor now accepts and reports ready: only then the old one stops
    wait_for(lambda: answer() == new, what="the successor serving")
    wait_for(lambda: gone([old]), what="the old worker gone")
    server.wait_output("rolling reload complete", timeout=10)
    assert answer() == new


def test_bus_eof_and_parent_death_stop_stub_workers() -> None:
    server = launch("--workers", "2", stub=True)
    pids = list(workers_of(server))
    server.proc.kill()
    server.proc.wait(5)
    wait_for(lambda: gone(pids), timeout=2, what="workers gone")


def test_failed_replacement_aborts_the_reload_and_keeps_the_old_workers(tmp_path: Path,
        notify_socket: tuple[str, FakeNotifySocket]) -> None:
    path, fake = notify_socket
    flag = tmp_path / "fail"
    server = launch("--workers", "2", stub=True, env={"STUB_FAIL_IF_EXISTS": str(flag), "NOTIFY_SOCKET": path})
    before = set(workers_of(server))
    flag.write_text("1")
    server.proc.send_signal(signal.SIGHUP)
    server.wait_output("reload aborted: replacement in slot 0 exited")
    assert set(workers_of(server)) == before  # still serving on the old code
    assert get(server, "/")[0] == 200
    wait_for(lambda: fake.first_lines()[-2:] == ["RELOADING=1", "READY=1"], what="READY=1 after the failed reload")
