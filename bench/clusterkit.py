"""What bench/cluster.py's measurements share: cores and pinning, the servers they start, the click load.

Servers go through bench/serverproc (port 0, per-IP limits lifted, stopped
by their PID); the load is bench/load's client pool whose processes also
report which worker each session landed on.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import time
from array import array
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import load  # noqa: E402  (server helpers and client phases of the load generator)
import serverproc  # noqa: E402  (the vango-mp process a benchmark starts)

from vango_mp.testing import TestClient  # noqa: E402

TARGETS = {
    "scaling_efficiency": 0.85,  # N workers >= 0.85 * N * one worker's events/s
    "global_p99_ms": 5.0,  # write on worker A -> patch applied on worker B
    "bus_overhead_pct": 5.0,  # |CPU per event with bus - lone worker| / lone worker
}


# ---------------------------------------------------------------- cores and servers


def host_cores() -> list[int]:
    """The cores this process may run on (a container's cpuset, not the host's count)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def pin(processes: list[psutil.Process], cores: list[int] | None) -> None:
    if not cores:
        return
    for p in processes:
        try:
            p.cpu_affinity(cores)
        except (psutil.NoSuchProcess, psutil.AccessDenied, AttributeError):
            pass


def want_pin(mode: str, ncores: int, server_cores: int) -> bool:
    """Pin the server to its own cores and the load generator to the rest?

    ``auto`` pins on a host of 4+ cores with one left over: on a small, shared
    host pinning only stops the scheduler from dodging a busy neighbour.
    """
    if mode == "no" or ncores <= server_cores:
        return False
    return mode == "yes" or ncores >= 4


def vango_cmd(workers: int) -> list[str]:
    return [*serverproc.vango_base(), "--workers", str(workers)]


def lone_worker_cmd() -> list[str]:
    """One worker in the ``vango-mp`` process: no supervisor, no bus, the same config precedence."""
    return [*serverproc.vango_base(), "--lone"]


def start(cmd: list[str], cores: list[int] | None) -> serverproc.Server:
    """Start a server (serverproc.start_server: port 0, per-IP limits lifted via env) and pin its tree."""
    server = serverproc.start_server(cmd)
    pin(server.processes(), cores)
    return server


def cpu_by_process(server: serverproc.Server) -> dict[int, float]:
    out: dict[int, float] = {}
    for p in server.processes():
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return out


# ---------------------------------------------------------------- client processes


def client_main(conn: Any, url: str, path: str, selector: str) -> None:
    """A load process (as load.client_main) that also reports which worker each session landed on."""
    gc.set_threshold(20000, 10, 10)
    asyncio.run(_client(conn, url, path, selector))


async def _client(conn: Any, url: str, path: str, selector: str) -> None:
    loop = asyncio.get_running_loop()
    async with TestClient(url, timeout=10.0) as client:
        pages: list[Any] = []
        while True:
            if not await loop.run_in_executor(None, conn.poll, load.CMD_TIMEOUT):
                return  # the coordinator is gone
            cmd, *args = conn.recv()
            if cmd == "open":
                errors = await load._open_pages(client, pages, path, args[0])
                conn.send(("opened", len(pages), errors, dict(Counter(p.worker for p in pages))))
            elif cmd == "go":
                conn.send(("done", await load._click_all(pages, selector, *args)))
            elif cmd == "close":
                await load._close_pages(pages)
                conn.send(("closed",))
                return


class Pool(load.ClientPool):
    """load.ClientPool with :func:`client_main`, pinned to ``cores`` when given."""

    def __init__(self, procs: int, url: str, cores: list[int] | None,
                 path: str = "/counter", selector: str = "#inc") -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.conns, self.procs = [], []
        for _ in range(procs):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=client_main, args=(child, url, path, selector), daemon=True)
            p.start()
            self.conns.append(parent)
            self.procs.append(p)
        pin([psutil.Process(p.pid) for p in self.procs], cores)

    def open_counted(self, sessions: int) -> tuple[int, list[str], dict[int, int]]:
        replies = self.ask([("open", n) for n in load._split(sessions, len(self.conns))])
        workers: Counter[int] = Counter()
        for r in replies:
            workers.update(r[3])
        return sum(r[1] for r in replies), [e for r in replies for e in r[2]], dict(sorted(workers.items()))

    def click(self, seconds: float, max_clicks: int) -> list[dict[str, Any]]:
        start = time.monotonic() + 0.3
        for conn in self.conns:
            conn.send(("go", start, start + seconds, max_clicks))
        replies = []
        for conn in self.conns:
            if not conn.poll(seconds + 60):
                raise SystemExit("a load process never finished clicking")
            replies.append(conn.recv()[1])
        return replies


def run_clicks(cmd: Any, server_cores: Any, procs: int, client_cores: Any, sessions: int,
               args: Any) -> tuple[dict[str, Any], Any]:
    """Start a server, click against it from a client pool, stop both; the row and the (stopped) server."""
    server = start(cmd, server_cores)
    try:
        pool = Pool(procs, server.url, client_cores)
        try:
            return measure_clicks(server, pool, sessions, args), server
        finally:
            pool.close()
    finally:
        server.stop()


def measure_clicks(server: serverproc.Server, pool: Pool, sessions: int, args: argparse.Namespace) -> dict[str, Any]:
    """Open ``sessions``, click for ``--warmup`` s (discarded), then for ``--seconds`` s (measured)."""
    opened, errors, workers = pool.open_counted(sessions)
    if not opened:
        return {"sessions": sessions, "opened": 0, "open_errors": errors, "events": 0}
    if args.warmup > 0:
        pool.click(args.warmup, args.max_clicks)
    procs = len(pool.procs)
    start = time.monotonic() + 0.3
    for conn in pool.conns:
        conn.send(("go", start, start + args.seconds, args.max_clicks))
    time.sleep(max(0.0, start - time.monotonic()))
    per0, ccpu0, host0, t0 = cpu_by_process(server), pool.cpu_seconds(), load._host_busy(), time.monotonic()
    replies = []
    for conn in pool.conns:
        if not conn.poll(args.seconds + 60):
            raise SystemExit("a load process never finished clicking")
        replies.append(conn.recv()[1])
    per1, ccpu1, host1 = cpu_by_process(server), pool.cpu_seconds(), load._host_busy()
    elapsed = max(r["finished"] for r in replies) - t0
    lat = array("d")
    for r in replies:
        lat.frombytes(r["latencies"])
    deltas = {pid: per1[pid] - per0.get(pid, 0.0) for pid in per1}
    server_cpu = sum(deltas.values())
    client_cpu = ccpu1 - ccpu0
    out = load.summarize(sessions, procs, opened, errors, replies, lat, elapsed, server_cpu, client_cpu)
    events = out["events"]
    top = server.pid
    out["sessions_per_worker"] = workers
    out["top_cpu_s"] = deltas.get(top, 0.0) if top is not None else 0.0  # supervisor (or the lone worker)
    out["children_cpu_s"] = server_cpu - out["top_cpu_s"]  # the workers under a supervisor
    out["client_cpu_us_per_event"] = client_cpu / events * 1e6 if events else None
    out["other_cpu_util"] = max(0.0, (host1 - host0) - server_cpu - client_cpu) / elapsed if elapsed > 0 else 0.0
    out["host_busy_util"] = (host1 - host0) / elapsed if elapsed > 0 else 0.0
    return out



# ---------------------------------------------------------------- figures


def latency_stats(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    return {"p50": load._pct(ordered, 50), "p90": load._pct(ordered, 90), "p99": load._pct(ordered, 99),
            "max": ordered[-1] if ordered else None, "mean": statistics.fmean(ordered) if ordered else None}


def num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def cores_text(cores: list[int] | None) -> str:
    return ",".join(map(str, cores or []))

