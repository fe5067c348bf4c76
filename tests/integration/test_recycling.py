"""Memory recycling decides on what a worker owns, and never storms.

A fresh worker's RSS is mostly the preloaded app it shares with the template
and its siblings; what it owns (USS) is a few MiB. A limit between the two
must recycle nobody. A limit below what any worker owns recycles each slot at
most once per ``recycle_min_interval``, and the interval doubles while every
successor is over the limit from birth. Real processes, ephemeral ports,
waits on conditions with deadlines.
"""

from __future__ import annotations

import datetime
import re
import signal
from pathlib import Path

import pytest

from tests.conftest import Server

from .test_supervisor import cleanup, get, launch, wait_for  # noqa: F401

pytestmark = pytest.mark.timeout(120)

MIB = 1024 * 1024
_RECYCLED = re.compile(r"^(\S+ \S+) \[\d+\] WARNING vango_mp.supervisor.memory: recycling worker pid (\d+)", re.M)


def recycles(server: Server) -> list[tuple[datetime.datetime, int]]:
    """(log time, pid) of every 'recycling worker' line so far."""
    return [(datetime.datetime.strptime(at, "%Y-%m-%d %H:%M:%S,%f"), int(pid))
            for at, pid in _RECYCLED.findall(server.output())]


def memory_checks(server: Server) -> dict[str, float]:
    """worker slot -> memory checks it has done (``vango_memory_checks_total``, every worker)."""
    text = get(server, "/_vango/metrics")[2].decode()
    checks: dict[str, float] = {}
    for labels, value in re.findall(r"^vango_memory_checks_total\{([^}]*)\} (\S+)$", text, re.M):
        slot = re.search(r'worker="(\d+)"', labels).group(1)  # type: ignore[union-attr]
        checks[slot] = checks.get(slot, 0.0) + float(value)
    return checks


def test_a_limit_between_a_fresh_workers_owned_memory_and_its_rss_recycles_nobody(tmp_path: Path) -> None:
    config = tmp_path / "vango.toml"
    config.write_text('memory_interval = "100ms"\nmemory_recycle_after = "200ms"\nrecycle_min_interval = 0\n')
    server = launch("--workers", "2", "--config", str(config), env={"VANGO_WORKER_HEARTBEAT": "100ms"})
    fresh = server.per_worker("memory", 2)
    owned = max(m["owned"] for m in fresh.values())
    rss = min(m["rss"] for m in fresh.values())
    limit = (owned + rss) // 2
    assert owned + 4 * MIB < limit < rss - 4 * MIB, f"a fresh worker owns {owned // MIB} of {rss // MIB} MiB"
    # A HUP applies the limit; every worker is then a fresh successor forked by the template,
    # with the new settings (a worker-side one changes too: the template got them with the request).
    config.write_text(config.read_text().replace('"100ms"', '"150ms"') + f"max_worker_rss = {limit}\n")
    server.proc.send_signal(signal.SIGHUP)
    server.wait_output("rolling reload complete", timeout=60)
    assert {m["interval"] for m in server.per_worker("memory", 2).values()} == {0.15}
    for _ in range(20):
        assert get(server, "/counter")[0] == 200
    # 30 memory checks per worker (3 s of 100 ms heartbeats): a worker judged on RSS is due after 200 ms.
    wait_for(lambda: recycles(server) or (len(c := memory_checks(server)) == 2 and min(c.values()) >= 30),
             timeout=30, what="30 memory checks per worker")
    assert recycles(server) == [], f"recycled with a {limit // MIB} MiB limit: fresh workers own {owned // MIB} MiB"


def test_a_limit_below_any_worker_recycles_each_slot_at_most_once_per_doubling_interval() -> None:
    env = {"VANGO_MEMORY_RECYCLE_AFTER": "100ms", "VANGO_RECYCLE_MIN_INTERVAL": "1s",
           "VANGO_WORKER_HEARTBEAT": "100ms"}
    server = launch("--workers", "1", "--max-worker-rss", "1MiB", stub=True, env=env)  # every worker is over it
    wait_for(lambda: len(recycles(server)) >= 3, timeout=30, what="three recycles")
    (t1, p1), (t2, p2), (t3, p3) = recycles(server)[:3]
    assert len({p1, p2, p3}) == 3
    # At most one recycle per interval: 1 s, doubled because each successor was over from birth.
    assert (t2 - t1).total_seconds() >= 2.0 - 0.05, (t1, t2)
    assert (t3 - t2).total_seconds() >= 4.0 - 0.05, (t2, t3)
    out = server.output()
    assert re.search(rf"successor in slot 0, pid {p2}, owns \d+ MiB, already above the 1 MiB limit.*every 2s", out)
    assert re.search(rf"worker pid {p2} \(slot 0\) is due for recycling, but slot 0 was recycled", out)
    assert "crashed" not in out

