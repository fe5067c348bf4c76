"""Cluster benchmarks: scaling over workers, global-signal propagation, bus overhead.

Run ``python bench/cluster.py --help``; bench/README.md ("bench/cluster.py")
explains every figure. Three parts, each against servers started here (one
per measurement, so no run inherits another's sessions):

* ``scaling`` -- events/s and server CPU per event on ``/counter`` (every
  session clicking ``#inc`` flat out) for each ``--workers-list`` value, side
  by side, as ratios to one worker; with the load generator's own CPU use, and
  a target check (N workers >= 0.85 * N * one worker's events/s) that is only
  given where the host has a core for the load generator beside N workers.
* ``globals`` -- ``vango-mp --workers 2``: one ``/global`` session on worker A,
  one on worker B; a ``#global-inc`` click from A, then the time until
  ``#global-count`` shows the new value on B (and on A). p50/p99 over
  ``--samples``; target p99 <= 5 ms.
* ``bus`` -- server CPU per click with the bus (``vango-mp --workers 1``:
  supervisor, hub and one worker) against a lone worker without one
  (``vango-mp --lone``), alternated A B A B ...; target < 5 %.

Every loop is bounded in count and time; traffic goes to 127.0.0.1 only;
only PIDs started here are ever signalled; figures go to
``bench/results/cluster-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import load  # noqa: E402  (server helpers and client phases of the load generator)
from cluster_globals import globals_latency, report_globals  # noqa: E402
from clusterkit import (TARGETS, cores_text, num, host_cores, lone_worker_cmd, run_clicks,  # noqa: E402
                        vango_cmd, want_pin)

PARTS = ("scaling", "globals", "bus")
QUIET_OTHER = 0.1  # cores busy outside this bench below which a bus-overhead run counts as quiet


# ---------------------------------------------------------------- (a) scaling


def scaling(args: argparse.Namespace) -> dict[str, Any]:
    cores = host_cores()
    rows = []
    for n in args.workers_list:
        pinned = want_pin(args.pin, len(cores), n)  # N cores for the server, the rest for the load generator
        server_cores, client_cores = (cores[:n], cores[n:]) if pinned else (None, None)
        procs = args.procs or (max(1, min(n + 1, len(cores) - n)) if len(cores) > n else n)
        sessions = max(procs, args.sessions_per_worker * n)
        layout = f"pinned: server cores {cores_text(server_cores)}, clients {cores_text(client_cores)}" if pinned else "unpinned"
        print(f"scaling: {n} worker(s), {sessions} sessions over {procs} client process(es), {layout},"
              f" {args.seconds:g} s ...", flush=True)
        row, server = run_clicks(vango_cmd(n), server_cores, procs, client_cores, sessions, args)
        row.update(workers=n, pinned=pinned, server_cores=server_cores, client_cores=client_cores,
                   cmd=" ".join(server.cmd))
        rows.append(row)
    base = next((r for r in rows if r["workers"] == 1 and r.get("events")), None)
    for r in rows:
        r["verdict"] = scaling_verdict(r, base, len(cores))
        if base and r.get("events"):
            r["events_ratio"] = r["events_per_s"] / base["events_per_s"]
            r["cpu_per_event_ratio"] = r["server_cpu_us_per_event"] / base["server_cpu_us_per_event"]
            # What N workers would do on N free cores if CPU per event held: a projection, not a measurement.
            r["projected_ratio_if_cores"] = r["workers"] / r["cpu_per_event_ratio"]
    return {"cores": len(cores), "rows": rows}


def scaling_verdict(row: dict[str, Any], base: dict[str, Any] | None, ncores: int) -> str:
    n = row["workers"]
    if n == 1:
        return "baseline"
    if ncores < n + 1:
        return f"n/a (only {ncores} cores)"
    if base is None or not row.get("events"):
        return "n/a (no baseline)"
    need = TARGETS["scaling_efficiency"] * n * base["events_per_s"]
    if row["events_per_s"] >= need:
        return "PASS"
    if (row["client_cpu_util"] or 0) >= 0.9 * row["procs"]:
        return "n/a (client-bound: load processes saturated)"
    return "MISS"


def report_scaling(res: dict[str, Any]) -> None:
    print(f"\n(a) scaling on /counter, {res['cores']} cores available"
          f" (target: N workers >= {TARGETS['scaling_efficiency']} * N * one worker's events/s)")
    print(f"{'workers':>7} {'sess':>5} {'procs':>5} {'pin':>3} {'events/s':>9} {'xW1':>5} {'srv us/ev':>9} {'xW1':>5}"
          f" {'cli us/ev':>9} {'util srv':>8} {'cli':>5} {'other':>5} {'host':>5}  sessions/worker  verdict")
    for r in res["rows"]:
        if not r.get("events"):
            print(f"{r['workers']:>7} no events: {r.get('open_errors') or r.get('click_errors')}")
            continue
        print(f"{r['workers']:>7} {r['opened']:>5} {r['procs']:>5} {'yes' if r['pinned'] else 'no':>3}"
              f" {r['events_per_s']:>9.0f} {num(r.get('events_ratio'), '.2f'):>5}"
              f" {r['server_cpu_us_per_event']:>9.1f} {num(r.get('cpu_per_event_ratio'), '.2f'):>5}"
              f" {r['client_cpu_us_per_event']:>9.1f} {r['server_cpu_util']:>8.2f} {r['client_cpu_util']:>5.2f}"
              f" {r['other_cpu_util']:>5.2f} {r['host_busy_util']:>5.2f}  {r['sessions_per_worker']}  {r['verdict']}"
              + (f"  errors {r['click_errors']}" if r["click_errors"] else ""))
    for r in res["rows"]:
        if r["workers"] > 1 and r.get("events_ratio") is not None:
            print(f"{r['workers']} workers / 1 worker: events/s x{r['events_ratio']:.2f},"
                  f" server CPU per event x{r['cpu_per_event_ratio']:.2f};"
                  f" projection if each worker had a free core: x{r['projected_ratio_if_cores']:.2f}"
                  f" (= N / CPU-per-event ratio; not measured)")
    print("util = CPU seconds per wall second (1.00 = one core); host = every process on the host."
          " When host ~ cores, the load generator and the server share them and events/s is a host figure.")


# ---------------------------------------------------------------- (c) bus overhead


def bus_overhead(args: argparse.Namespace) -> dict[str, Any]:
    cores = host_cores()
    pinned = want_pin(args.pin, len(cores), 1)
    server_cores, client_cores = (cores[:1], cores[1:]) if pinned else (None, None)
    sessions = args.bus_sessions  # both kinds read VANGO_*: serverproc.start_server lifts the per-IP limits
    procs = 1 if args.bus_sessions <= 64 else 2  # 32 handshakes in flight per load process
    kinds = {"bus": vango_cmd(1), "lone": lone_worker_cmd()}
    runs = []
    for i in range(args.rounds):
        for kind in ("bus", "lone"):  # A B A B ...: drift hits both alike
            print(f"bus: round {i + 1}/{args.rounds} {kind:4s} ({' '.join(kinds[kind])}), {sessions} sessions,"
                  f" {args.seconds:g} s{', pinned' if pinned else ''} ...", flush=True)
            row, server = run_clicks(kinds[kind], server_cores, procs, client_cores, sessions, args)
            row.update(kind=kind, round=i + 1, cmd=" ".join(server.cmd))
            runs.append(row)
    out: dict[str, Any] = {"pinned": pinned, "sessions": sessions, "procs": procs, "runs": runs}
    for kind in ("bus", "lone"):
        mine = [r for r in runs if r["kind"] == kind and r.get("events")]
        events = sum(r["events"] for r in mine)
        per_run = [r["server_cpu_us_per_event"] for r in mine]
        out[kind] = {
            "runs": len(mine), "events": events,
            "server_cpu_us_per_event": sum(r["server_cpu_s"] for r in mine) / events * 1e6 if events else None,
            "worker_cpu_us_per_event": (sum((r["children_cpu_s"] if kind == "bus" else r["top_cpu_s"]) for r in mine)
                                        / events * 1e6) if events else None,
            "supervisor_cpu_us_per_event": (sum(r["top_cpu_s"] for r in mine) / events * 1e6
                                            if events and kind == "bus" else 0.0),
            "per_run_us": per_run,
            "spread_pct": (max(per_run) - min(per_run)) / statistics.fmean(per_run) * 100 if len(per_run) > 1 else None,
            "events_per_s": statistics.fmean(r["events_per_s"] for r in mine) if mine else None,
        }
    # Pair each bus run with the lone run right after it: drift between pairs cancels.
    pairs = [(x, y) for x, y in zip(runs[::2], runs[1::2]) if x.get("events") and y.get("events")]
    out["pair_diff_pct"] = [(x["server_cpu_us_per_event"] - y["server_cpu_us_per_event"])
                            / y["server_cpu_us_per_event"] * 100 for x, y in pairs]
    if out["pair_diff_pct"]:
        out["pair_diff_median_pct"] = statistics.median(out["pair_diff_pct"])
    # CPU per event grows when a neighbour shares the cores (caches, SMT siblings): the pairs
    # where neither run saw one are the cleanest comparison this host can give.
    out["quiet_pair_diff_pct"] = [d for d, (x, y) in zip(out["pair_diff_pct"], pairs)
                                  if max(x["other_cpu_util"], y["other_cpu_util"]) < QUIET_OTHER]
    b, lone = out["bus"]["server_cpu_us_per_event"], out["lone"]["server_cpu_us_per_event"]
    if b and lone:
        out["diff_pct"] = (b - lone) / lone * 100
        out["worker_diff_pct"] = (out["bus"]["worker_cpu_us_per_event"] - out["lone"]["worker_cpu_us_per_event"]) \
            / out["lone"]["worker_cpu_us_per_event"] * 100
        out["verdict"] = "PASS" if abs(out["diff_pct"]) < TARGETS["bus_overhead_pct"] else "MISS"
    else:
        out["verdict"] = "n/a"
    return out


def report_bus(res: dict[str, Any]) -> None:
    print(f"\n(c) bus overhead on /counter clicks, {res['sessions']} sessions, runs alternated"
          f" {' '.join(r['kind'] for r in res['runs'])}{' (server on its own core)' if res['pinned'] else ''}")
    for kind, label in (("bus", "vango-mp --workers 1 (bus)"), ("lone", "vango-mp --lone")):
        k = res[kind]
        if not k["events"]:
            print(f"{label}: no events")
            continue
        runs = ", ".join(f"{r['server_cpu_us_per_event']:.1f} (other {r['other_cpu_util']:.2f})"
                         for r in res["runs"] if r["kind"] == kind and r.get("events"))
        print(f"{label:28s} {k['server_cpu_us_per_event']:6.1f} us/event (worker {k['worker_cpu_us_per_event']:.1f}"
              f" + supervisor {k['supervisor_cpu_us_per_event']:.1f})  {k['events_per_s']:.0f} events/s"
              f"  spread {num(k['spread_pct'], '.1f')} %")
        print(f"  runs, us/event: [{runs}]")
    if "diff_pct" in res:
        spread = max(res["bus"]["spread_pct"] or 0, res["lone"]["spread_pct"] or 0)
        pairs = ", ".join(f"{d:+.1f}" for d in res["pair_diff_pct"])
        print(f"per pair (bus run vs the lone run after it): [{pairs}] %, median {res['pair_diff_median_pct']:+.1f} %")
        quiet = res["quiet_pair_diff_pct"]
        print(f"quiet pairs (other < {QUIET_OTHER} core in both runs): "
              + (f"[{', '.join(f'{d:+.1f}' for d in quiet)}] %, median {statistics.median(quiet):+.1f} %"
                 if quiet else "none: a neighbour was busy throughout"))
        print(f"difference: {res['diff_pct']:+.1f} % (worker process alone: {res['worker_diff_pct']:+.1f} %)"
              f"   target |diff| < {TARGETS['bus_overhead_pct']:g} %  {res['verdict']}"
              + (f"   (run-to-run spread {spread:.1f} % is not below the difference: more --rounds)"
                 if spread >= abs(res["diff_pct"]) else ""))


# ---------------------------------------------------------------- main



def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python bench/cluster.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts to run (default {','.join(PARTS)})")
    p.add_argument("--seconds", type=float, default=5.0, help="measured click phase, per run (default 5)")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured clicking before each phase (default 1)")
    p.add_argument("--max-clicks", type=int, default=1_000_000, help="clicks per session per phase at most")
    p.add_argument("--pin", choices=("auto", "yes", "no"), default="auto",
                   help="pin the server to its own cores and the load generator to the rest"
                        " (default auto: on hosts of 4+ cores, where a core is left for the load generator)")
    g = p.add_argument_group("scaling")
    g.add_argument("--workers-list", default="1,2", help="worker counts to compare (default 1,2; 1,2,4,8 on a big host)")
    g.add_argument("--sessions-per-worker", type=int, default=32, help="sessions per worker (default 32)")
    g.add_argument("--procs", type=int, default=0,
                   help="load processes (default: min(N+1, cores-N) when cores > N, else N)")
    g = p.add_argument_group("globals")
    g.add_argument("--samples", type=int, default=500, help="propagation samples (default 500)")
    g.add_argument("--warmup-samples", type=int, default=20, help="discarded first samples (default 20)")
    g.add_argument("--gap-ms", type=float, default=2.0, help="pause between samples (default 2 ms)")
    g.add_argument("--global-workers", type=int, default=2, help="workers of that server (default 2)")
    g.add_argument("--max-seconds", type=float, default=60.0, help="bound on the quiet sampling (default 60 s)")
    g.add_argument("--global-background", type=int, default=32,
                   help="then sample again while this many /counter sessions click flat out for --seconds"
                        " (default 32; 0 skips)")
    g = p.add_argument_group("bus")
    g.add_argument("--rounds", type=int, default=3, help="A B pairs (default 3: A B A B A B)")
    g.add_argument("--bus-sessions", type=int, default=50, help="sessions per run, < 100 (default 50)")
    p.add_argument("--name", default="cluster", help="results file prefix")
    p.add_argument("--results-dir", default=str(load.RESULTS), help="where the JSON goes (default bench/results)")
    args = p.parse_args(argv)
    args.parts = [x.strip() for x in args.only.split(",") if x.strip()]
    args.workers_list = [int(x) for x in args.workers_list.split(",") if x.strip()]
    if not set(args.parts) <= set(PARTS) or not args.parts:
        p.error(f"--only takes {', '.join(PARTS)}")
    if not args.workers_list or min(args.workers_list) < 1 or max(args.workers_list) > 64:
        p.error("--workers-list: integers in 1..64")
    if not 0 < args.seconds <= 120 or not 0 <= args.warmup <= 30:
        p.error("--seconds in (0, 120], --warmup in [0, 30]")
    if not 1 <= args.samples <= 100_000 or not 1 <= args.rounds <= 20 or not 1 <= args.bus_sessions <= 99:
        p.error("--samples in 1..100000, --rounds in 1..20, --bus-sessions in 1..99")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result: dict[str, Any] = {
        "name": args.name, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "argv": sys.argv,
        "host": {"cores": len(host_cores()), "cpu_count": os.cpu_count(), "python": platform.python_version(),
                 "platform": platform.platform(), "load_before": os.getloadavg()},
        "targets": TARGETS,
    }
    t0 = time.monotonic()
    if "scaling" in args.parts:
        result["scaling"] = scaling(args)
    if "globals" in args.parts:
        result["globals"] = globals_latency(args)
    if "bus" in args.parts:
        result["bus"] = bus_overhead(args)
    result["wall_s"] = time.monotonic() - t0
    out = load.write_result(result, args.name, Path(args.results_dir))
    print(f"\nhost: {result['host']['cores']} cores, load average before {result['host']['load_before'][0]:.2f}")
    if "scaling" in result:
        report_scaling(result["scaling"])
    if "globals" in result:
        report_globals(result["globals"])
    if "bus" in result:
        report_bus(result["bus"])
    print(f"\nresults: {out}  ({result['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
