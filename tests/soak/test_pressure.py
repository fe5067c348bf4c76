"""The memory-pressure soak, short variant: two workers, a small budget, waves of sessions.

The budget is sized from the measured idle RSS so that pressure really
happens: soft limit = idle RSS + 20 MiB per worker, a hundred-odd sessions
of bench/soak_app.py (256 KiB each). Cycles of fill, squeeze, critical,
recover and verify (bench/soak_scenario.py) run for CYCLE_SECONDS; what each
invariant means is in bench/soak_checks.py.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from bench.soak_driver import MIB, Fleet, RssSampler, per_worker, wait_until
from bench.soak_scenario import Cycle, Limits, check, run_cycle
from tests.conftest import start_server

from .conftest import APP, BASE_ENV, worker_pids

pytestmark = [pytest.mark.soak, pytest.mark.timeout(180)]

HEADROOM = 20 * MIB  # per worker, between idle RSS and the soft limit
INTERVAL = 0.1
CYCLE_SECONDS = 20.0
MAX_CYCLES = 8


def test_memory_pressure_soak(idle_rss: int) -> None:
    share = int((idle_rss + HEADROOM) / 0.8)
    server = start_server(
        *APP, "--memory-budget", str(2 * share), "--memory-interval", f"{INTERVAL}s",
        "--max-detached", "10000", "--resume-window", "5m",
        env={**BASE_ENV, "VANGO_MEMORY_RECYCLE_AFTER": "0"},
    )
    sampler = RssSampler(server.pid)
    try:
        pids = worker_pids(server)
        limits = Limits.from_health(server.health())
        assert limits.share == share and limits.interval == INTERVAL
        sampler.start()
        fleet, cycles, problems = asyncio.run(drive(server.url, sampler, limits))
        sampler.stop()
        assert worker_pids(server) == pids, "a worker was replaced"
        health = server.health()
        metrics = server.get("/_vango/metrics")[2].decode()
    finally:
        sampler.stop()
        output = server.output()
        server.stop()
    assert "crashed" not in output and "SIGKILL" not in output, output[-3000:]
    outcomes = fleet.outcomes()
    assert all(c.evictions and all(n > 0 for n in c.evictions.values()) for c in cycles), "no memory evictions"
    assert all(c.refused > 0 for c in cycles), "a cycle never had a new session refused"
    assert any(c.closed for c in cycles), "no worker ever closed attached sessions at critical"
    assert all(c.accepted_after_recovery == 6 for c in cycles), "new sessions refused after recovery"
    assert all(c.oversized_detached is not None and c.oversized_detached.status == "evicted" for c in cycles)
    assert outcomes.get("evicted", 0) > 0 and outcomes.get("lost", 0) == 0, outcomes
    assert not problems, "\n".join(problems[:20])
    memory = health["memory"]
    assert {"level", "rss", "budget", "share", "soft", "hard", "critical", "refusing"} <= memory.keys()
    assert memory["budget"] == 2 * share and memory["hard"] == limits.hard
    assert health["evictions"].get("memory_low", 0) + health["evictions"].get("memory_high", 0) > 0
    assert isinstance(health["refusals"], dict)  # this worker's, by reason; the metrics have every worker's
    for name in ("vango_evictions_total", "vango_memory_level", "vango_memory_share_bytes", "vango_rss_bytes",
                 'vango_refusals_total{reason="server_busy"'):
        assert name in metrics, name


async def drive(url: str, sampler: RssSampler, limits: Limits) -> tuple[Fleet, list[Cycle], list[str]]:
    async with Fleet(url) as fleet:
        await wait_until(lambda: _both_reporting(fleet), 10, "both workers in /_vango/metrics")
        cycles: list[Cycle] = []
        deadline = time.monotonic() + CYCLE_SECONDS
        while time.monotonic() < deadline and len(cycles) < MAX_CYCLES:
            cycles.append(await run_cycle(fleet, timeout=30))
        return fleet, cycles, check(fleet, cycles, sampler, limits)


async def _both_reporting(fleet: Fleet) -> bool:
    return len(per_worker(await fleet.metrics(), "vango_rss_bytes")) == 2
