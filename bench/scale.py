"""Idle live sessions by the thousand: ramp in steps, and per step record what holds.

Run ``python bench/scale.py --help``; bench/README.md explains every figure.

Client processes of lean raw-WebSocket peers (:mod:`bench.leanws`), each
peer from its own loopback source address (127.0.0.x, ``--sources``), open
idle sessions on ``--path`` (``/global``) in ``--steps``. After each step:

- **failures by reason** (close code and reason, errno, timeout, EOF) for
  the sessions of the step, and sessions dropped since;
- **open rate**: sessions opened per second of the step;
- **server RSS per session**: (RSS of the server tree − before any session) / sessions;
- **click round trip on an idle page**: one extra session on ``/counter``
  clicks ``#inc`` ``--clicks`` times, one at a time;
- **global write reach**: one extra session on ``/global`` clicks
  ``#global-inc``; the time until every idle session has its PATCHES frame
  (max, p50, p99, missing), and the server CPU it cost per session.

Bounded in count (``--steps`` at most 1,000,000 sessions) and time
(``--budget`` seconds; a step that would start past it is skipped); loopback
only; only the server PID started here is ever signalled. JSON goes to
``bench/results/scale-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import sys
import time
from array import array
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from bench.leanws import (VangoPeer, check_loopback, failure_reason, fetch_page, open_vango,  # noqa: E402
                          source_address)
from bench.load import RESULTS, ClientPool, _pct, _split  # noqa: E402
from bench.load import finish_profiler, result_header, start_profiler, write_result  # noqa: E402
from bench.serverproc import Server, check_local, find_listener, start_server, vango_base  # noqa: E402
from vango_mp.fdlimit import raise_open_files_limit  # noqa: E402

MAX_SESSIONS = 1_000_000
OPEN_CONCURRENCY = 64  # handshakes in flight per client process
CMD_TIMEOUT = 600.0


# ---------------------------------------------------------------- client processes


def scale_client(conn: Any, index: int, url: str, path: str, sources: int, procs: int, timeout: float) -> None:
    """A client process: holds its share of idle sessions, reports on command."""
    raise_open_files_limit()
    gc.set_threshold(50_000, 20, 20)
    asyncio.run(_scale_client(conn, index, url, path, sources, procs, timeout))


async def _scale_client(conn: Any, index: int, url: str, path: str, sources: int, procs: int,
                        timeout: float) -> None:
    loop = asyncio.get_running_loop()
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    page = fetch_page(url, path)
    peers: list[VangoPeer] = []
    dropped: Counter[str] = Counter()
    arrivals = array("d")
    armed: dict[str, Any] = {"on": False, "done": None, "want": 0}
    attempted = [0]
    rss_before = psutil.Process().memory_info().rss  # before any peer: what a peer costs the client

    def arrived(peer: VangoPeer) -> None:
        if armed["on"] and not peer.seen:
            peer.seen = True
            arrivals.append(peer.patched_at)
            if len(arrivals) >= armed["want"] and armed["done"] is not None and not armed["done"].done():
                armed["done"].set_result(None)

    async def open_some(n: int) -> dict[str, Any]:
        failures: Counter[str] = Counter()
        gate = asyncio.Semaphore(OPEN_CONCURRENCY)
        base = attempted[0]
        attempted[0] += n
        t0 = time.monotonic()

        async def one(k: int) -> None:
            async with gate:
                try:
                    # Peers of all processes interleave over the source addresses.
                    peer = await open_vango(host, int(port), page, source_address((base + k) * procs + index, sources),
                                            timeout)
                except Exception as err:  # noqa: BLE001 - every failure is counted by its reason
                    failures[failure_reason(err)] += 1
                    return
                peer.seen = False
                peer.on_patch = arrived
                peer.on_drop = lambda reason: dropped.update([reason])
                peers.append(peer)

        await asyncio.gather(*(one(k) for k in range(n)))
        used = {p.transport.get_extra_info("sockname")[0] for p in peers if p.transport is not None}
        return {"opened": len(peers), "failures": dict(failures), "seconds": time.monotonic() - t0,
                "sources": sorted(used), "rss": psutil.Process().memory_info().rss, "rss_before": rss_before}

    while True:
        if not await loop.run_in_executor(None, conn.poll, CMD_TIMEOUT):
            return
        cmd, *args = conn.recv()
        if cmd == "ready":
            conn.send({"ready": True})
        elif cmd == "open":
            conn.send(await open_some(args[0]))
        elif cmd == "arm":
            arrivals = array("d")
            for peer in peers:
                peer.seen = False
            armed.update(on=True, want=len(peers), done=loop.create_future())
            conn.send({"armed": len(peers), "dropped": dict(dropped)})
        elif cmd == "collect":
            if len(arrivals) < armed["want"]:
                try:
                    await asyncio.wait_for(armed["done"], max(0.0, args[0] - time.monotonic()))
                except asyncio.TimeoutError:
                    pass
            armed["on"] = False
            conn.send({"arrivals": arrivals.tobytes(), "want": armed["want"]})
        elif cmd == "close":
            for peer in peers:
                peer.close()
            await asyncio.sleep(0.2)
            conn.send({"closed": len(peers)})
            return


# ---------------------------------------------------------------- the coordinator


async def idle_click(peer: VangoPeer, hid: int, clicks: int) -> dict[str, Any]:
    lat = sorted([await peer.click(hid) * 1000 for _ in range(clicks)])
    return {"clicks": clicks, "p50_ms": _pct(lat, 50), "max_ms": lat[-1]}


async def global_write(pool: ClientPool, server: Server, writer: VangoPeer, hid: int, total: int,
                       wait: float) -> dict[str, Any]:
    """Click ``#global-inc`` once; when each idle session got its PATCHES frame."""
    armed = await asyncio.to_thread(pool.ask, [("arm",)] * len(pool.conns))
    user0, sys0 = server.cpu_split()
    t0 = time.monotonic()
    await writer.click(hid, timeout=wait)
    replies = await asyncio.to_thread(pool.ask, [("collect", t0 + wait)] * len(pool.conns), CMD_TIMEOUT)
    user, system = server.cpu_split()
    user, system = user - user0, system - sys0
    cpu = user + system
    times = array("d")
    for r in replies:
        times.frombytes(r["arrivals"])
    ms = sorted((t - t0) * 1000 for t in times)
    return {
        "sessions": total, "reached": len(ms), "missing": sum(r["want"] for r in replies) - len(ms),
        "last_ms": ms[-1] if ms else None, "p50_ms": _pct(ms, 50), "p99_ms": _pct(ms, 99),
        "server_cpu_s": cpu, "server_cpu_us_per_session": cpu / len(ms) * 1e6 if ms and cpu > 0 else None,
        "server_user_us_per_session": user / len(ms) * 1e6 if ms else None,
        "server_sys_us_per_session": system / len(ms) * 1e6 if ms else None,
        "dropped_before": {k: v for r in armed for k, v in r["dropped"].items()},
    }


async def ramp(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    host, port = server.url.split("://", 1)[1].rsplit(":", 1)
    check_loopback(host)
    counter = fetch_page(server.url, "/counter")
    board = fetch_page(server.url, args.path)
    clicker = await open_vango(host, int(port), counter, None)
    writer = await open_vango(host, int(port), board, None)
    inc, global_inc = counter.hid("inc"), board.hid(args.global_id)
    await asyncio.sleep(args.settle)
    base = server.memory()
    pool = ClientPool(args.procs, server.url, args.path, args.sources, args.procs, args.timeout, target=scale_client)
    await asyncio.to_thread(pool.ask, [("ready",)] * args.procs)  # started, imported, page fetched
    steps: list[dict[str, Any]] = []
    started = time.monotonic()
    total = 0
    try:
        for target in args.step_counts:
            if time.monotonic() - started > args.budget:
                steps.append({"target": target, "skipped": "budget spent"})
                break
            t0 = time.monotonic()
            replies = await asyncio.to_thread(pool.ask, [("open", n) for n in _split(target - total, args.procs)],
                                              CMD_TIMEOUT)
            wall = time.monotonic() - t0
            failures: Counter[str] = Counter()
            for r in replies:
                failures.update(r["failures"])
            opened = sum(r["opened"] for r in replies)
            sources = {a for r in replies for a in r["sources"]}
            step: dict[str, Any] = {
                "target": target, "sessions": opened, "new": opened - total, "failures": dict(failures),
                "open_seconds": wall, "open_rate_per_s": (opened - total) / wall if wall > 0 else None,
                "source_addresses": len(sources),
                "client_rss_per_peer_kib": sum(r["rss"] - r["rss_before"] for r in replies) / opened / 1024
                if opened else None,
            }
            total = opened
            await asyncio.sleep(args.settle)
            mem = server.memory()
            if server.known and opened:
                step["rss_bytes"] = mem["rss"]
                step["rss_per_session_kib"] = (mem["rss"] - base["rss"]) / (opened + 2) / 1024
                step["uss_per_session_kib"] = (mem["uss"] - base["uss"]) / (opened + 2) / 1024
            step["idle_click"] = await idle_click(clicker, inc, args.clicks)
            last = target == args.step_counts[-1]
            spy = start_profiler(server.pid, 600, "scale", opened) if args.profile and last else None
            writes = [await global_write(pool, server, writer, global_inc, opened, args.reach_timeout)
                      for _ in range(args.writes)]
            if spy is not None:
                spy[0].send_signal(signal.SIGINT)  # py-spy writes what it has and exits
                step["profile"] = finish_profiler(spy)
            step["global_writes"] = writes
            # the write of median CPU stands for the step (one noisy write does not); the least CPU is
            # the write the shared host disturbed least
            by_cpu = sorted(writes, key=lambda w: w["server_cpu_s"])
            step["global_write"], step["best_global_write"] = by_cpu[len(writes) // 2], by_cpu[0]
            steps.append(step)
            print(line(step), flush=True)
            if failures and args.stop_on_failure:
                break
    finally:
        await asyncio.to_thread(pool.close)
        clicker.close()
        writer.close()
    return {"base_memory": base, "steps": steps, "seconds": time.monotonic() - started}


def line(step: dict[str, Any]) -> str:
    gw, ic, best = step["global_write"], step["idle_click"], step["best_global_write"]
    kib = step.get("rss_per_session_kib")
    us = gw["server_cpu_us_per_session"]
    return (f"{step['sessions']:>8} sessions  open {step['open_rate_per_s'] or 0:7.0f}/s"
            f"  failures {step['failures'] or 0}  RSS/session {'?' if kib is None else f'{kib:.1f}'} KiB"
            f"  idle click p50 {ic['p50_ms']:.2f} ms max {ic['max_ms']:.2f} ms"
            f"  global write: last {gw['last_ms'] or 0:.0f} ms p99 {gw['p99_ms'] or 0:.0f} ms"
            f" missing {gw['missing']}  {'?' if us is None else f'{us:.0f}'} us CPU/session"
            f" (user {gw.get('server_user_us_per_session') or 0:.0f}, sys {gw.get('server_sys_us_per_session') or 0:.0f})"
            + (f"; best of {len(step['global_writes'])}: {best['server_cpu_us_per_session']:.0f} us, last {best['last_ms'] or 0:.0f} ms"
               if len(step["global_writes"]) > 1 and best["server_cpu_us_per_session"] is not None else ""))


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python bench/scale.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="a running server (127.0.0.1 only) instead of starting one")
    p.add_argument("--server-pid", type=int, help="with --url: the server's top PID (default: found by port)")
    p.add_argument("--workers", type=int, default=1, help="workers of the server started here (default 1)")
    p.add_argument("--steps", default="1000,2000,3000,4000,5000", help="cumulative session counts")
    p.add_argument("--procs", type=int, default=0, help="client processes (default: CPUs - 1, at least 1)")
    p.add_argument("--sources", type=int, default=64, help="loopback source addresses to spread over")
    p.add_argument("--path", default="/global", help="the page idle sessions sit on")
    p.add_argument("--global-id", default="global-inc", help="element on --path whose click writes the global")
    p.add_argument("--clicks", type=int, default=20, help="idle-page clicks per step")
    p.add_argument("--writes", type=int, default=1, help="global writes per step (the median is reported)")
    p.add_argument("--profile", action="store_true", help="py-spy the server during the last step's writes")
    p.add_argument("--settle", type=float, default=1.0, help="seconds before memory is sampled")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds for one session to open")
    p.add_argument("--reach-timeout", type=float, default=60.0, help="seconds a global write may take to reach all")
    p.add_argument("--budget", type=float, default=900.0, help="no step starts after this many seconds")
    p.add_argument("--stop-on-failure", action="store_true", help="stop after the first step with failures")
    p.add_argument("--results-dir", default=str(RESULTS))
    p.add_argument("--name", default="scale")
    args = p.parse_args(argv)
    args.step_counts = sorted({int(x) for x in args.steps.split(",") if x.strip()})
    if not args.step_counts or args.step_counts[0] < 1 or args.step_counts[-1] > MAX_SESSIONS:
        p.error(f"--steps: positive counts up to {MAX_SESSIONS}")
    if not 1 <= args.writes <= 100:
        p.error("--writes must be 1..100")
    args.procs = args.procs or max(1, (os.cpu_count() or 2) - 1)
    args.sources = max(1, min(args.sources, 254 * 250))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_open_files_limit()
    if args.url:
        pid = args.server_pid or find_listener(check_local(args.url))
        server = Server(args.url.rstrip("/"), pid, cmd=["(external)", args.url])
    else:
        server = start_server([*vango_base(), "--workers", str(args.workers)])
    print(f"server at {server.url} (pid {server.pid}); steps {args.step_counts} over {args.procs} client process(es)",
          flush=True)
    result: dict[str, Any] = {
        **result_header(args.name),
        "server": {"url": server.url, "cmd": " ".join(server.cmd), "pid": server.pid},
        "args": {k: v for k, v in vars(args).items() if k != "step_counts"},
    }
    try:
        result.update(asyncio.run(ramp(server, args)))
    finally:
        server.stop()
    out = write_result(result, args.name, Path(args.results_dir))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
