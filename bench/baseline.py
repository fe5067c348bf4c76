"""vango-mp next to a bare Tornado WebSocket echo, on the same lean load, in one run.

Run ``python bench/baseline.py --help``; bench/README.md explains every figure.

Systems (``--systems``): ``echo`` (bench/echo_server.py: "click" ->
"Count: N"), ``vango`` (``vango-mp --workers 1``, the demo's ``/counter``),
and each ``-uvloop`` variant (the same server on uvloop). For each system, in
turn, with the same client (:mod:`bench.leanws`, which speaks each system's
own protocol as its browser client does):

1. *idle memory*: ``--idle`` connections (sessions) open and stay idle;
   (server RSS after − before) / N.
2. *load*, per ``--sessions`` value: N connections click flat out (click,
   await the answer, click again) for ``--seconds``; clicks/s, round trip
   p50/p99 and server CPU per click (psutil, server process tree).

``--rounds`` repeats the whole sequence (systems interleaved) and reports
medians. Prints vango's figures as ratios to the echo's (and each
``-uvloop`` variant's to its plain one); JSON to
``bench/results/baseline-<timestamp>.json``. Loopback only; only the server
PIDs started here are signalled.
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

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from bench import flame  # noqa: E402
from bench.leanws import EchoPeer, PageInfo, connect, failure_reason, fetch_page, open_vango  # noqa: E402
from bench.load import RESULTS, ClientPool, _host_busy, _pct, _split  # noqa: E402
from bench.load import finish_profiler, result_header, start_profiler, write_result  # noqa: E402
from bench.serverproc import Server, start_server, vango_base  # noqa: E402

SYSTEMS: dict[str, tuple[list[str], str]] = {
    "echo": ([sys.executable, str(ROOT / "bench" / "echo_server.py")], "echo"),
    "echo-uvloop": ([sys.executable, str(ROOT / "bench" / "echo_server.py"), "--uvloop"], "echo"),
    "vango": ([*vango_base(), "--workers", "1"], "vango"),
    "vango-uvloop": (["env", "VANGO_UVLOOP=1", *vango_base(), "--workers", "1"], "vango"),
}
CMD_TIMEOUT = 120.0
OPEN_CONCURRENCY = 32


# ---------------------------------------------------------------- client processes


def click_client(conn: Any, index: int, url: str, kind: str, path: str, selector: str) -> None:
    """A load process: opens connections of ``kind``, clicks on command, reports."""
    gc.set_threshold(20_000, 10, 10)
    asyncio.run(_click_client(conn, url, kind, path, selector))


async def _click_client(conn: Any, url: str, kind: str, path: str, selector: str) -> None:
    loop = asyncio.get_running_loop()
    host, port_text = url.split("://", 1)[1].rsplit(":", 1)
    port = int(port_text)
    page: PageInfo | None = fetch_page(url, path) if kind == "vango" else None
    hid = page.hid(selector.lstrip("#")) if page is not None else 0
    peers: list[Any] = []

    async def open_one(gate: asyncio.Semaphore, failures: Counter[str]) -> None:
        async with gate:
            try:
                if page is not None:
                    peers.append(await open_vango(host, port, page, None))
                else:
                    peers.append(await connect(lambda: EchoPeer(host, port), host, port, None, 10.0))
            except Exception as err:  # noqa: BLE001 - counted by reason
                failures[failure_reason(err)] += 1

    async def click_all(start: float, end: float, max_clicks: int) -> dict[str, Any]:
        await asyncio.sleep(max(0.0, start - time.monotonic()))
        lat = array("d")
        errors: Counter[str] = Counter()

        async def clicker(peer: Any) -> None:
            for _ in range(max_clicks):  # bounded in count as well as in time
                if time.monotonic() >= end:
                    return
                try:
                    lat.append(await peer.click(hid))
                except (asyncio.TimeoutError, ConnectionError) as err:
                    errors[failure_reason(err)] += 1
                    return

        await asyncio.gather(*(clicker(p) for p in peers))
        return {"latencies": lat.tobytes(), "errors": dict(errors), "finished": time.monotonic()}

    while True:
        if not await loop.run_in_executor(None, conn.poll, CMD_TIMEOUT):
            return
        cmd, *args = conn.recv()
        if cmd == "ready":
            conn.send({})
        elif cmd == "open":
            failures: Counter[str] = Counter()
            gate = asyncio.Semaphore(OPEN_CONCURRENCY)
            await asyncio.gather(*(open_one(gate, failures) for _ in range(args[0])))
            conn.send({"opened": len(peers), "failures": dict(failures)})
        elif cmd == "go":
            conn.send(await click_all(*args))
        elif cmd == "close":
            for peer in peers:
                peer.close()
            peers.clear()
            await asyncio.sleep(0.2)
            conn.send({})
            return


# ---------------------------------------------------------------- phases


def pool_for(server: Server, kind: str, procs: int, args: argparse.Namespace) -> ClientPool:
    pool = ClientPool(procs, server.url, kind, args.path, args.selector, target=click_client)
    pool.ask([("ready",)] * procs)
    return pool


def idle_memory(server: Server, kind: str, args: argparse.Namespace) -> dict[str, Any]:
    pool = pool_for(server, kind, 1, args)
    try:
        time.sleep(args.settle)
        before = server.memory()
        opened = pool.ask([("open", args.idle)])[0]
        time.sleep(args.settle)
        after = server.memory()
        n = opened["opened"]
        return {"sessions": n, "failures": opened["failures"],
                "rss_per_session_kib": (after["rss"] - before["rss"]) / n / 1024 if n else None}
    finally:
        pool.close()


def load(server: Server, kind: str, sessions: int, args: argparse.Namespace) -> dict[str, Any]:
    procs = max(1, min(args.procs, sessions))
    pool = pool_for(server, kind, procs, args)
    try:
        opened = pool.ask([("open", n) for n in _split(sessions, procs)])
        start = time.monotonic() + 0.3
        end = start + args.seconds
        for conn in pool.conns:
            conn.send(("go", start, end, args.max_clicks))
        time.sleep(max(0.0, start - time.monotonic()))
        cpu0, host0, t0 = server.cpu_seconds(), _host_busy(), time.monotonic()
        profilers = start_profilers(server, kind, sessions, args)
        replies = []
        for conn in pool.conns:
            if not conn.poll(args.seconds + 60):
                raise SystemExit("a load process never finished clicking")
            replies.append(conn.recv())
        cpu, host = server.cpu_seconds() - cpu0, _host_busy() - host0
        profile = finish_profilers(profilers)
        elapsed = max(r["finished"] for r in replies) - t0
        lat = array("d")
        errors: Counter[str] = Counter()
        for r in replies:
            lat.frombytes(r["latencies"])
            errors.update(r["errors"])
        ms = sorted(x * 1000 for x in lat)
        return {
            "sessions": sessions, "opened": sum(r["opened"] for r in opened), "procs": procs,
            "open_failures": {k: v for r in opened for k, v in r["failures"].items()},
            "clicks": len(ms), "elapsed_s": elapsed, "clicks_per_s": len(ms) / elapsed if elapsed > 0 else None,
            "rtt_ms": {"p50": _pct(ms, 50), "p99": _pct(ms, 99), "max": ms[-1] if ms else None},
            "server_cpu_us_per_click": cpu / len(ms) * 1e6 if ms and cpu > 0 else None,
            "server_cpu_util": cpu / elapsed if elapsed > 0 else None,
            "host_cpu_util": host / elapsed if elapsed > 0 else None, "errors": dict(errors),
            **({"profile": profile} if profile else {}),
        }
    finally:
        pool.close()


def start_profilers(server: Server, kind: str, sessions: int, args: argparse.Namespace) -> list[Any]:
    """With ``--profile``: py-spy on the vango server during its largest load phase; the collapsed stacks
    (summarised) and their flame graph (bench/flame.py) go to bench/results/."""
    if not args.profile or kind != "vango" or sessions != max(args.session_counts) or server.pid is None:
        return []
    return [start_profiler(server.pid, args.seconds, args.name, sessions)]


def finish_profilers(profilers: list[Any]) -> dict[str, Any] | None:
    if not profilers:
        return None
    summary = finish_profiler(profilers[0])
    stacks = Path(summary.get("path", ""))
    if stacks.is_file():
        svg = stacks.with_suffix(".svg")
        svg.write_text(flame.svg(stacks.read_text(), stacks.name))
        summary["flamegraph"] = str(svg)
    for title, key in (("by innermost vango_mp function (incl. what it called)", "vango_pct"),
                       ("by innermost frame", "self_pct")):
        print(f"  profile {title}:")
        for frame, pct in summary.get(key, [])[:12]:
            print(f"    {pct:5.1f}%  {frame}")
    return summary


def system(name: str) -> tuple[list[str], str]:
    """The command and protocol of ``name``; ``vango@DIR`` is vango-mp from another checkout (a before/after in one run)."""
    if name.startswith("vango@"):
        tree = Path(name[len("vango@"):]).resolve()
        script = f'cd "{tree}" && exec "{sys.executable}" -m supervisor --workers 1 "$@"'
        return ["bash", "-c", script, "vango"], "vango"
    return SYSTEMS[name]


def run_system(name: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd, kind = system(name)
    server = start_server(cmd)
    try:
        out: dict[str, Any] = {"system": name, "cmd": " ".join(cmd)}
        if args.idle:
            out["idle"] = idle_memory(server, kind, args)
        out["load"] = {str(n): load(server, kind, n, args) for n in args.session_counts}
        return out
    finally:
        server.stop()


# ---------------------------------------------------------------- report

FIGURES = (("server_cpu_us_per_click", "server CPU/click (us)"), ("clicks_per_s", "clicks/s"),
           ("rtt_p50", "round trip p50 (ms)"), ("rtt_p99", "round trip p99 (ms)"))


def medians(rounds: list[dict[str, Any]], name: str, sessions: list[int]) -> dict[str, Any]:
    """Per figure, the median over the rounds of ``name``."""
    runs = [r[name] for r in rounds]
    out: dict[str, Any] = {}
    idle = [r["idle"]["rss_per_session_kib"] for r in runs if r.get("idle", {}).get("rss_per_session_kib")]
    out["rss_per_session_kib"] = statistics.median(idle) if idle else None
    for n in sessions:
        phases = [r["load"][str(n)] for r in runs]
        row: dict[str, Any] = {}
        for key, _ in FIGURES:
            values = [(p["rtt_ms"][key[4:]] if key.startswith("rtt_") else p[key]) for p in phases]
            values = [v for v in values if v is not None]
            row[key] = statistics.median(values) if values else None
        out[str(n)] = row
    return out


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def report(summary: dict[str, Any], sessions: list[int]) -> dict[str, Any]:
    ratios: dict[str, Any] = {}
    pairs = [("vango", "echo"), ("vango-uvloop", "vango"), ("echo-uvloop", "echo"), ("vango-uvloop", "echo-uvloop")]
    pairs += [(n, "echo") for n in summary if n.startswith("vango@")] + [("vango", n) for n in summary
                                                                          if n.startswith("vango@")]
    for name, fig in summary.items():
        print(f"{name:>13}: memory/session {_f(fig['rss_per_session_kib'], '.1f')} KiB")
        for n in sessions:
            row = fig[str(n)]
            print(f"{'':>13}  N={n:<3} " + "  ".join(f"{label} {_f(row[key], '.2f' if 'ms' in label else '.0f')}"
                                                   for key, label in FIGURES))
    for a, b in pairs:
        if a in summary and b in summary:
            entry: dict[str, Any] = {"rss_per_session": ratio(summary[a]["rss_per_session_kib"],
                                                              summary[b]["rss_per_session_kib"])}
            print(f"{a} / {b}: memory/session x{_f(entry['rss_per_session'], '.2f')}")
            for n in sessions:
                entry[str(n)] = {key: ratio(summary[a][str(n)][key], summary[b][str(n)][key]) for key, _ in FIGURES}
                print(f"  N={n:<3} " + "  ".join(f"{label} x{_f(entry[str(n)][key], '.2f')}" for key, label in FIGURES))
            ratios[f"{a}/{b}"] = entry
    return ratios


def _f(value: float | None, fmt: str) -> str:
    return "?" if value is None else format(value, fmt)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python bench/baseline.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--systems", default="echo,vango", help=f"comma-separated, of {', '.join(SYSTEMS)}, or vango@DIR "
                                                          "(vango-mp from another checkout, e.g. the commit before)")
    p.add_argument("--sessions", default="1,50", help="N of the load phases (default 1,50)")
    p.add_argument("--seconds", type=float, default=5.0, help="length of each load phase (default 5)")
    p.add_argument("--max-clicks", type=int, default=1_000_000, help="clicks per connection at most")
    p.add_argument("--idle", type=int, default=500, help="connections of the idle memory phase (0 skips it)")
    p.add_argument("--rounds", type=int, default=1, help="repeat everything; medians are reported")
    p.add_argument("--procs", type=int, default=max(1, (os.cpu_count() or 2) - 1), help="client processes at most")
    p.add_argument("--settle", type=float, default=1.0)
    p.add_argument("--path", default="/counter")
    p.add_argument("--selector", default="#inc")
    p.add_argument("--profile", action="store_true", help="py-spy the vango servers during the largest load phase")
    p.add_argument("--results-dir", default=str(RESULTS))
    p.add_argument("--name", default="baseline")
    args = p.parse_args(argv)
    args.system_names = [s.strip() for s in args.systems.split(",") if s.strip()]
    args.session_counts = [int(x) for x in args.sessions.split(",") if x.strip()]
    unknown = {n for n in args.system_names if n not in SYSTEMS and not (n.startswith("vango@") and
                                                                         Path(n[6:], "supervisor").is_dir())}
    if unknown or not args.system_names:
        p.error(f"--systems: unknown {sorted(unknown)}")
    if not args.session_counts or min(args.session_counts) < 1 or not 0 < args.seconds <= 600 \
            or not 1 <= args.rounds <= 10:
        p.error("--sessions positive, --seconds in (0, 600], --rounds in [1, 10]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rounds: list[dict[str, Any]] = []
    for i in range(args.rounds):
        this: dict[str, Any] = {}
        for name in args.system_names:
            print(f"round {i + 1}/{args.rounds}: {name} ...", flush=True)
            this[name] = run_system(name, args)
        rounds.append(this)
    summary = {name: medians(rounds, name, args.session_counts) for name in args.system_names}
    print()
    ratios = report(summary, args.session_counts)
    result = {
        **result_header(args.name),
        "args": {k: v for k, v in vars(args).items()}, "rounds": rounds, "medians": summary, "ratios": ratios,
    }
    out = write_result(result, args.name, Path(args.results_dir))
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
