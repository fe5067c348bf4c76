"""Where CPU per event goes as workers are added: supervisor, workers, load generator, kernel, context switches.

For each ``--workers-list`` value N: ``vango-mp --workers N`` with 32·N
``/counter`` sessions (bench/load.py's load processes, one per worker) is
first left idle for ``--idle`` seconds (what the supervisor's hub,
heartbeats and timers cost with nothing to do), then clicked flat out for
``--seconds`` after ``--warmup``. Per event it prints the CPU µs of the
supervisor, the workers (user and system apart), the load processes and
everything else on the host, and the context switches (voluntary and
involuntary, server and load) and host-wide interrupts/softirq time —
the terms that can make a worker's event dearer when more run at once.
``--pin auto`` puts the server on the first N cores and the load on the
others where there are 2·N cores (on 2 cores: only N=1).

    python bench/scaling_account.py --workers-list 1,2 --seconds 8

Writes bench/results/scaling-account-<timestamp>.json. Loopback only;
only the server PID started here is signalled.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.load import RESULTS, ClientPool  # noqa: E402
from bench.serverproc import server_command, start_server  # noqa: E402


def proc_stats(pids: list[int]) -> dict[str, float]:
    """Summed user/system CPU seconds and context switches of ``pids``."""
    out = {"user": 0.0, "system": 0.0, "vol": 0.0, "invol": 0.0}
    for pid in pids:
        try:
            p = psutil.Process(pid)
            t, c = p.cpu_times(), p.num_ctx_switches()
        except psutil.NoSuchProcess:
            continue
        out["user"] += t.user
        out["system"] += t.system
        out["vol"] += c.voluntary
        out["invol"] += c.involuntary
    return out


def host_stats() -> dict[str, float]:
    t = psutil.cpu_times()
    s = psutil.cpu_stats()
    busy = t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0) + getattr(t, "steal", 0.0)
    return {"busy": busy, "softirq": getattr(t, "softirq", 0.0), "ctx": float(s.ctx_switches),
            "interrupts": float(s.interrupts), "soft_interrupts": float(s.soft_interrupts)}


def snapshot(sup: int, workers: list[int], load: list[int]) -> dict[str, Any]:
    return {"t": time.monotonic(), "sup": proc_stats([sup]), "workers": proc_stats(workers),
            "load": proc_stats(load), "host": host_stats()}


def delta(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"seconds": b["t"] - a["t"]}
    for k in ("sup", "workers", "load", "host"):
        out[k] = {f: b[k][f] - a[k][f] for f in a[k]}
    return out


def run(n: int, args: argparse.Namespace) -> dict[str, Any]:
    server = start_server([*server_command(None)[:-1], str(n)])
    pool = None
    try:
        sup = server.pid
        assert sup is not None
        workers = [p.pid for p in psutil.Process(sup).children(recursive=True)]
        pool = ClientPool(n, server.url, "/counter", "#inc", False)
        opened, errors = pool.open(32 * n)
        load = [p.pid for p in pool.procs]
        pinned = _pin(args.pin, n, [sup, *workers], load)
        time.sleep(0.5)
        a = snapshot(sup, workers, load)
        time.sleep(args.idle)
        idle = delta(a, snapshot(sup, workers, load))
        if args.warmup > 0:
            _click(pool, args.warmup)
        a = snapshot(sup, workers, load)
        events = _click(pool, args.seconds)
        busy = delta(a, snapshot(sup, workers, load))
        return {"workers": n, "pinned": pinned, "sessions": opened, "open_errors": errors[:5], "idle": idle, "load": busy,
                "events": events, "worker_pids": workers}
    finally:
        if pool is not None:
            pool.close()
        server.stop()


def _pin(mode: str, n: int, server: list[int], load: list[int]) -> bool:
    """Server tree on the first N cores, load processes on the others (``auto``: when there are 2·N cores)."""
    cpus = sorted(os.sched_getaffinity(0))
    if mode == "no" or (mode == "auto" and len(cpus) < 2 * n) or len(cpus) <= n:
        return False
    for pids, cores in ((server, cpus[:n]), (load, cpus[n:])):
        for pid in pids:
            try:
                psutil.Process(pid).cpu_affinity(cores)
            except psutil.NoSuchProcess:
                pass
    return True


def _click(pool: ClientPool, seconds: float) -> int:
    start = time.monotonic() + 0.2
    replies = pool.ask([("go", start, start + seconds, 1_000_000)] * len(pool.conns), timeout=seconds + 60)
    return sum(len(r[1]["latencies"]) // 8 for r in replies)  # an array('d') of round trips, as bytes


def report(rows: list[dict[str, Any]]) -> None:
    print(f"\nhost: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the end")
    print("per event (load phase); idle = the same server with its sessions open and nobody clicking")
    head = ("W", "pin", "ev/s", "sup us", "wrk usr", "wrk sys", "load us", "other us", "softirq us",
            "srv vcs", "srv ivcs", "load cs", "host cs", "idle srv ms/s")
    print("  ".join(f"{h:>9}" for h in head))
    for r in rows:
        d, ev = r["load"], max(1, r["events"])
        idle_srv = (r["idle"]["sup"]["user"] + r["idle"]["sup"]["system"] + r["idle"]["workers"]["user"]
                    + r["idle"]["workers"]["system"]) / r["idle"]["seconds"] * 1e3
        sup = (d["sup"]["user"] + d["sup"]["system"]) / ev * 1e6
        wu, ws = d["workers"]["user"] / ev * 1e6, d["workers"]["system"] / ev * 1e6
        load = (d["load"]["user"] + d["load"]["system"]) / ev * 1e6
        other = max(0.0, d["host"]["busy"] - d["host"]["softirq"] - sum(d[k]["user"] + d[k]["system"]
                                                                        for k in ("sup", "workers", "load"))) / ev * 1e6
        vals = (r["workers"], "yes" if r["pinned"] else "no", ev / d["seconds"], sup, wu, ws, load, other, d["host"]["softirq"] / ev * 1e6,
                d["workers"]["vol"] / ev, d["workers"]["invol"] / ev, (d["load"]["vol"] + d["load"]["invol"]) / ev,
                d["host"]["ctx"] / ev, idle_srv)
        print("  ".join(f"{v:>9.2f}" if isinstance(v, float) else f"{v:>9}" for v in vals))
    print("us = CPU microseconds per event; cs = context switches per event (vcs voluntary: waits in epoll; "
          "ivcs involuntary: preempted by another runnable process)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python bench/scaling_account.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--workers-list", default="1,2")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--pin", choices=("auto", "yes", "no"), default="auto",
                   help="server on the first N cores, load on the rest (auto: when there are 2N cores)")
    p.add_argument("--idle", type=float, default=5.0, help="idle phase before the clicks (hub, heartbeats)")
    args = p.parse_args(argv)
    counts = [int(x) for x in args.workers_list.split(",") if x.strip()]
    if not counts or min(counts) < 1 or max(counts) > 64 or not 0 < args.seconds <= 120 or not 0 <= args.idle <= 120:
        p.error("--workers-list in 1..64, --seconds in (0, 120], --idle in [0, 120]")
    rows = [run(n, args) for n in counts]
    report(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"scaling-account-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"host_cpus": os.cpu_count(), "rows": rows}, indent=2))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
