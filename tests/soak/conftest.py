"""Soak fixtures: the soak app's idle worker RSS, measured once, sizes every budget."""

from __future__ import annotations

import pytest

from tests.conftest import Server, start_server

MIB = 1024 * 1024

# Every soak session comes from 127.0.0.1: lift the per-IP limits meant for
# real clients; keep detached sessions hot (no cold tier) so memory tracks them.
BASE_ENV = {
    "VANGO_MAX_SESSIONS_PER_IP": "0",
    "VANGO_MAX_CONCURRENT_HANDSHAKES_PER_IP": "0",
    "VANGO_COLD_AFTER": "0",
    "VANGO_WORKER_HEARTBEAT": "250ms",  # the supervisor's view of RSS lags by one heartbeat
}
APP = ("--workers", "2", "--app", "bench.soak_app:app")


def worker_pids(server: Server, workers: int = 2, timeout: float = 10.0) -> dict[int, int]:
    """slot -> pid of every worker."""
    return server.per_worker("pid", workers, timeout)


def worker_rss(server: Server, workers: int = 2, timeout: float = 10.0) -> dict[int, int]:
    """slot -> RSS of every worker (bytes)."""
    return server.per_worker("rss_bytes", workers, timeout)


@pytest.fixture(scope="session")
def idle_owned() -> int:
    """The larger memory a worker of a fresh soak server owns (USS, bytes): what recycling judges."""
    server = start_server(*APP, env=BASE_ENV)
    try:
        return max(m["owned"] for m in server.per_worker("memory").values())
    finally:
        server.stop()


@pytest.fixture(scope="session")
def idle_rss() -> int:
    """The larger idle RSS of the two workers of a fresh soak server (bytes)."""
    server = start_server(*APP, env=BASE_ENV)
    try:
        return max(worker_rss(server).values())
    finally:
        server.stop()
