"""Several machines on one Redis: Redis operations per click, cross-machine resume, global propagation.

Starts a ``redis-server`` on an ephemeral port and two supervisors (two
"machines", ``--workers`` each) sharing it, then measures:

1. **Redis operations per click** on the hot path: ``MONITOR`` records every
   command Redis runs (inside Lua scripts too) while ``--clicks`` clicks go to
   live sessions on machine A; the background traffic (each worker's PING,
   each machine's heartbeat ``SET vango:m:*`` + ``PEXPIRE vango:census:m:*``)
   is left out. Target 0: a live
   session's events never touch Redis. For contrast, the commands one global
   write costs are counted the same way.
2. **Cross-machine resume** p50/p99: ``--samples`` sessions live on A
   (clicked, then disconnected) resume on B -- time from the reconnect to the
   resumed page (WELCOME, caught up): a live hand-over through Redis. Then
   the same from checkpoints, after machine A stopped (its sessions wait in
   Redis).
3. **Cross-machine global propagation** p50/p99: a click on A's page
   increments a global; time until B's page shows the new value.

Prints the figures and writes JSON under bench/results/.

    python bench/redis_cluster.py --samples 200 --clicks 500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from tests.conftest import Server, start_server  # noqa: E402
from tests.integration.redisserver import RedisServer, redis_server  # noqa: E402
from vango_mp.testing import Page, TestClient  # noqa: E402

APP = "tests.apps.clusterapp:app"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summary(ms: list[float]) -> dict[str, float]:
    return {"n": len(ms), "p50_ms": round(pct(ms, 50), 3), "p99_ms": round(pct(ms, 99), 3),
            "mean_ms": round(statistics.fmean(ms), 3)}


class Monitor:
    """Counts the commands Redis runs (MONITOR), without the background PINGs and heartbeats."""

    def __init__(self, redis: RedisServer) -> None:
        self.redis = redis
        self.counts: Counter[str] = Counter()
        self.recording = False
        self._conn = redis.client().monitor().__enter__()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                cmd = self._conn.next_command()["command"]
            except Exception:
                return
            if not self.recording:
                continue
            word = cmd.split(" ", 1)[0].upper()
            target = cmd.split(" ")[1].strip('"') if " " in cmd else ""
            if word == "PING" or (word, target.split(":")[1] if target.count(":") else "") in (
                    ("SET", "m"), ("PEXPIRE", "census")):  # each machine's heartbeat, every second
                continue
            self.counts[word] += 1

    def measure(self) -> "_Window":
        return _Window(self)


class _Window:
    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def __enter__(self) -> Counter[str]:
        self.monitor.counts.clear()
        self.monitor.recording = True
        return self.monitor.counts

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.3)  # MONITOR lines still on their way
        self.monitor.recording = False


async def ops_per_click(a: Server, monitor: Monitor, clicks: int) -> dict[str, object]:
    client = TestClient(a.url)
    pages = [await client.open("/counter") for _ in range(10)]
    for page in pages:
        await page.click("#inc")  # warm: every session rendered and checkpoint-dirty before we count
    with monitor.measure() as counts:
        for n in range(clicks):
            await pages[n % len(pages)].click("#inc")
    per_click = dict(counts)
    shared = await client.open("/shared")
    await asyncio.sleep(0.5)  # its lease (written behind) lands before we count
    writes = 50
    with monitor.measure() as counts:
        for _ in range(writes):
            await shared.click("#add")
    per_write = {k: v / writes for k, v in counts.items()}
    for page in [*pages, shared]:
        await page.disconnect()
    return {"clicks": clicks, "redis_commands_during_clicks": per_click,
            "redis_ops_per_click": sum(per_click.values()) / clicks,
            "redis_commands_per_global_write": per_write}


async def detached_counters(a: Server, samples: int) -> list[Page]:
    """``samples`` /counter sessions on A, each clicked once and then detached."""
    ca = TestClient(a.url)
    pages = []
    for _ in range(samples):
        page = await ca.open("/counter")
        await page.click("#inc")
        await page.disconnect()
        pages.append(page)
    return pages


async def time_resumes(pages: list[Page], b: Server) -> list[float]:
    """Resume each page on B (its count must have come along); milliseconds per resume."""
    cb = TestClient(b.url)
    ms = []
    for page in pages:
        page.client = cb
        start = time.perf_counter()
        await page.resume()
        ms.append((time.perf_counter() - start) * 1000)
        assert page.text("#count") == "Count: 1", page.text("#count")
        await page.disconnect()
    return ms


async def resume_across(a: Server, b: Server, samples: int) -> tuple[list[float], list[Page]]:
    """Live hand-over: sessions on A (detached, live) resume on B."""
    pages = await detached_counters(a, samples)
    return await time_resumes(pages, b), pages


async def resume_from_checkpoints(a: Server, b: Server, samples: int) -> list[float]:
    """Sessions of a stopped A resume on B from their checkpoints in Redis."""
    pages = await detached_counters(a, samples)
    a.stop()  # a full stop: every session is written to Redis
    return await time_resumes(pages, b)


async def propagation(a: Server, b: Server, samples: int) -> list[float]:
    pa = await TestClient(a.url).open("/shared")
    pb = await TestClient(b.url).open("/shared")
    value = int(pa.text("#shared"))
    ms = []
    for _ in range(samples):
        value += 1
        start = time.perf_counter()
        await pa.click("#add", wait=False)
        await pb.wait_for_text("#shared", str(value), timeout=10)
        ms.append((time.perf_counter() - start) * 1000)
        await pa.wait_for_text("#shared", str(value), timeout=10)
    await pa.disconnect()
    await pb.disconnect()
    return ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--clicks", type=int, default=500)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vango-bench-redis-"))
    redis = redis_server(tmp)
    env = {"VANGO_STORE_URL": redis.url, "VANGO_PERSISTENCE_SECRET": secrets.token_hex(32),
           "VANGO_PERSIST_INTERVAL": "30s", "VANGO_MAX_SESSIONS_PER_IP": "0"}  # every session from 127.0.0.1
    machines: list[Server] = []
    try:
        for _ in range(2):
            machines.append(start_server("--workers", str(args.workers), "--app", APP, env=env))
        a, b = machines
        monitor = Monitor(redis)
        ops = asyncio.run(ops_per_click(a, monitor, args.clicks))
        live, _ = asyncio.run(resume_across(a, b, args.samples))
        prop = asyncio.run(propagation(a, b, args.samples))
        stored = asyncio.run(resume_from_checkpoints(a, b, args.samples))
    finally:
        for machine in machines:
            machine.stop()
        redis.stop()
    result = {
        "bench": "redis_cluster", "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "machines": 2,
        "workers_per_machine": args.workers, **ops,
        "resume_other_machine_live": summary(live),
        "resume_other_machine_from_checkpoint": summary(stored),
        "global_propagation_across_machines": summary(prop),
    }
    print(f"Redis ops per click (hot path, target 0): {ops['redis_ops_per_click']:.3f} "
          f"over {args.clicks} clicks {ops['redis_commands_during_clicks'] or ''}")
    print(f"Redis commands per global write: {ops['redis_commands_per_global_write']}")
    for key in ("resume_other_machine_live", "resume_other_machine_from_checkpoint",
                "global_propagation_across_machines"):
        s = result[key]
        print(f"{key}: p50 {s['p50_ms']:.2f} ms, p99 {s['p99_ms']:.2f} ms (n={s['n']})")
    out = BENCH / "results" / f"redis_cluster-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(BENCH.parent)}")


if __name__ == "__main__":
    main()
