"""Memory-pressure soak: the tests/soak scenario for as long as asked, with a CSV time series and a plot.

    python bench/soak.py --minutes 10            # PNG too when matplotlib is installed (the `plot` extra)

It starts ``vango-mp --workers N --app bench.soak_app:app`` twice: once to
measure the workers' idle RSS, then with a budget sized from it (soft limit
= idle RSS + ``--headroom-mib`` per worker), and runs memory-pressure cycles
(bench/soak_scenario.py: fill, squeeze, critical, recover, verify) until
the time is up. Every ``--sample`` seconds it writes one CSV row per worker:
RSS (from /proc), sessions attached/detached, memory evictions so far,
pressure level, whether it refuses new sessions, and the client's running
totals. The summary (JSON next to the CSV, and printed) gives peak RSS
against the hard limit, sessions served, evictions by reason, sessions
closed at critical, refusals, sessions lost (must be 0) and every
invariant violation found (bench/soak_checks.py).

Traffic goes to 127.0.0.1 only; the only processes signalled are the
servers started here, by PID; every loop is bounded by ``--minutes``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from bench.soak_driver import MIB, Fleet, RssSampler, per_worker, wait_until  # noqa: E402
from bench.soak_scenario import Cycle, Limits, check_memory, check_sessions, run_cycle  # noqa: E402
from bench.serverproc import _LISTEN, Server, start_server, vango_script  # noqa: E402
from vango_mp.testing import VangoTestError  # noqa: E402

RESULTS = ROOT / "bench" / "results"
COLUMNS = ["t_s", "worker", "rss_mib", "level", "attached", "detached", "evictions", "refusing",
           "opened", "refused", "evicted", "closed", "lost"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=2.0, help="how long to run cycles (bound)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--headroom-mib", type=float, default=20.0, help="per worker, idle RSS to soft limit")
    p.add_argument("--interval", default="100ms", help="--memory-interval of the server")
    p.add_argument("--sample", type=float, default=1.0, help="seconds between CSV rows")
    p.add_argument("--cold-after", default="0", help="cold_after of the server (0: detached sessions stay hot)")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--no-plot", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["PYTHONPATH"] = f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}".rstrip(os.pathsep)
    os.environ.update({"VANGO_COLD_AFTER": args.cold_after, "VANGO_WORKER_HEARTBEAT": "250ms"})
    base = [*vango_command(), "--workers", str(args.workers), "--app", "bench.soak_app:app"]
    idle = measure_idle(base, args.workers)
    share = int((idle + args.headroom_mib * MIB) / 0.8)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    args.out.mkdir(parents=True, exist_ok=True)
    csv_path = args.out / f"soak-{stamp}.csv"
    log_path = csv_path.with_suffix(".log")
    server = start_logged([*base, "--memory-budget", str(share * args.workers), "--memory-interval", args.interval],
                          log_path)
    try:
        summary = asyncio.run(soak(server, args, csv_path))
    finally:
        server.stop()
    summary.update({"idle_rss_mib": round(idle / MIB, 1), "csv": str(csv_path), "log": str(log_path),
                    "started": stamp, "workers": args.workers, "minutes": args.minutes})
    if not args.no_plot:
        summary["png"] = plot(csv_path, summary)
    (args.out / f"soak-{stamp}.json").write_text(json.dumps(summary, indent=2))
    report(summary)
    return 0 if not summary["violations"] and not summary["lost"] else 1


def vango_command() -> list[str]:
    """The installed console script (see :func:`bench.serverproc.vango_script`), else the module."""
    return vango_script() or [sys.executable, "-m", "supervisor.cli"]


def start_logged(cmd: list[str], log_path: Path, timeout: float = 30.0) -> Server:
    """Start ``cmd --bind 127.0.0.1:0`` with its whole log in ``log_path``; wait until it is healthy."""
    env = {**os.environ, "VANGO_MAX_SESSIONS_PER_IP": "0", "VANGO_MAX_CONCURRENT_HANDSHAKES_PER_IP": "0"}
    full = [*cmd, "--bind", "127.0.0.1:0"]
    with log_path.open("w") as log:
        proc = subprocess.Popen(full, stdout=log, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT,
                                start_new_session=True)
    server = Server("", proc.pid, proc, full)
    deadline = time.monotonic() + timeout
    while not server.url:
        found = _LISTEN.search(log_path.read_text())
        if found:
            server.url = f"http://{found.group(1)}:{found.group(2)}"
        elif proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise SystemExit(f"server did not start; see {log_path}")
        else:
            time.sleep(0.05)
    while True:
        try:
            fetch_json(server.url + "/_vango/health")
            return server
        except OSError:
            if time.monotonic() > deadline:
                server.stop()
                raise SystemExit(f"server never became healthy; see {log_path}") from None
            time.sleep(0.1)


def measure_idle(base: list[str], workers: int) -> int:
    """The larger idle RSS of the workers of a fresh server."""
    server = start_server(base)
    try:
        seen: dict[int, int] = {}
        deadline = time.monotonic() + 15
        while len(seen) < workers and time.monotonic() < deadline:
            health = fetch_json(server.url + "/_vango/health")
            seen[health["worker"]] = health["rss_bytes"]
        return max(seen.values())
    finally:
        server.stop()


def fetch_json(url: str) -> Any:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


async def soak(server: Server, args: argparse.Namespace, csv_path: Path) -> dict[str, Any]:
    assert server.pid is not None
    limits = Limits.from_health(fetch_json(server.url + "/_vango/health"))
    sampler = RssSampler(server.pid)
    sampler.start()
    cycles: list[Cycle] = []
    problems: list[str] = []
    deadline = time.monotonic() + args.minutes * 60
    try:
        async with Fleet(server.url) as fleet:
            await wait_until(lambda: _reporting(fleet, args.workers), 15, "every worker in /_vango/metrics")
            writer = asyncio.ensure_future(write_series(fleet, csv_path, args.sample, deadline))
            while time.monotonic() < deadline:
                try:
                    cycles.append(await run_cycle(fleet, timeout=60))
                except VangoTestError as err:  # a phase that never finished: report it, go on
                    problems.append(f"cycle {len(cycles) + 1}: {err}")
                    continue
                problems += check_sessions(fleet, cycles[-1:])
                fleet.prune()  # settled sessions were checked: a long run must not keep them all
            await writer
            problems += check_memory(fleet, sampler, limits)
            return summarize(fleet, cycles, sampler, limits, await fleet.metrics(), problems)
    finally:
        sampler.stop()


async def _reporting(fleet: Fleet, workers: int) -> bool:
    return len(per_worker(await fleet.metrics(), "vango_rss_bytes")) >= workers


async def write_series(fleet: Fleet, path: Path, period: float, deadline: float) -> None:
    """One CSV row per worker every ``period`` seconds until ``deadline`` (figures as /_vango/metrics has them)."""
    start = time.monotonic()
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(COLUMNS)
        while time.monotonic() < deadline:
            rows = await fleet.metrics()
            evictions = per_worker(rows, "vango_evictions_total")
            totals = fleet.outcomes()
            for worker, level in sorted(per_worker(rows, "vango_memory_level").items()):
                out.writerow([
                    round(time.monotonic() - start, 2), worker,
                    round(per_worker(rows, "vango_rss_bytes").get(worker, 0) / MIB, 2), int(level),
                    int(per_worker(rows, "vango_sessions", state="attached").get(worker, 0)),
                    int(per_worker(rows, "vango_sessions", state="detached").get(worker, 0)),
                    int(evictions.get(worker, 0)), int(per_worker(rows, "vango_memory_refusing").get(worker, 0)),
                    fleet.opened, len(fleet.refusals), totals.get("evicted", 0), totals.get("closed", 0),
                    totals.get("lost", 0),
                ])
            fh.flush()
            await asyncio.sleep(period)


def summarize(fleet: Fleet, cycles: list[Cycle], sampler: RssSampler, limits: Limits,
              rows: dict[str, dict[str, float]], problems: list[str]) -> dict[str, Any]:
    peaks = sampler.peak()
    runs = sampler.runs_above(limits.hard)
    evictions: dict[str, float] = {}
    for labels, value in rows.get("vango_evictions_total", {}).items():
        reason = dict(p.split("=", 1) for p in labels.split(",") if p).get("reason", "")
        evictions[reason] = evictions.get(reason, 0.0) + value
    outcomes = fleet.outcomes()
    return {
        "budget_mib": round(limits.budget / MIB, 1), "share_mib": round(limits.share / MIB, 1),
        "soft_mib": round(limits.soft / MIB, 1), "hard_mib": round(limits.hard / MIB, 1),
        "critical_mib": round(limits.critical / MIB, 1),
        "peak_rss_mib": {str(pid): round(v / MIB, 1) for pid, v in peaks.items()},
        "peak_over_hard": round(max(peaks.values()) / limits.hard, 3) if peaks else None,
        "longest_above_hard_s": round(max((e - s for _, s, e, _ in runs), default=0.0), 3),
        "worker_pids": sorted(sampler.pids),
        "cycles": len(cycles),
        "sessions_served": fleet.opened,
        "resumes": fleet.resumed,
        "refusals": len(fleet.refusals),
        "evictions": {k: int(v) for k, v in sorted(evictions.items())},
        "evicted_seen_by_clients": outcomes.get("evicted", 0),
        "closed_at_critical": outcomes.get("closed", 0),
        "lost": outcomes.get("lost", 0),
        "clock": {"monotonic": time.monotonic(), "wall": time.time()},  # to find a violation's time in the log
        "violations": problems[:50],
        "violation_count": len(problems),
    }


def plot(csv_path: Path, summary: dict[str, Any]) -> str | None:
    """A PNG of the time series next to the CSV; None (and a note) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed (pip install 'vango-mp[plot]'): no PNG", file=sys.stderr)
        return None
    series: dict[str, dict[str, list[float]]] = {}
    with csv_path.open() as fh:
        for row in csv.DictReader(fh):
            s = series.setdefault(row["worker"], {k: [] for k in ("t", "rss", "attached", "detached", "evictions")})
            s["t"].append(float(row["t_s"]))
            s["rss"].append(float(row["rss_mib"]))
            for key in ("attached", "detached", "evictions"):
                s[key].append(float(row[key]))
    fig, (ax_rss, ax_sessions, ax_evict) = plt.subplots(3, 1, figsize=(11, 9), sharex=True)
    for worker, s in sorted(series.items()):
        ax_rss.plot(s["t"], s["rss"], label=f"worker {worker}")
        ax_sessions.plot(s["t"], s["attached"], label=f"attached w{worker}")
        ax_sessions.plot(s["t"], s["detached"], linestyle="--", label=f"detached w{worker}")
        ax_evict.plot(s["t"], s["evictions"], label=f"worker {worker}")
    for name, style in (("soft_mib", ":"), ("hard_mib", "--"), ("critical_mib", "-.")):
        ax_rss.axhline(summary[name], color="grey", linestyle=style, label=name.replace("_mib", ""))
    ax_rss.set_ylabel("RSS (MiB)")
    ax_sessions.set_ylabel("sessions")
    ax_evict.set_ylabel("evictions (cumulative)")
    ax_evict.set_xlabel("seconds")
    for ax in (ax_rss, ax_sessions, ax_evict):
        ax.legend(loc="upper left", fontsize="small")
        ax.grid(alpha=0.3)
    fig.suptitle(f"vango-mp memory soak: {summary['sessions_served']} sessions, {summary['lost']} lost")
    fig.tight_layout()
    png = csv_path.with_suffix(".png")
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return str(png)


def report(s: dict[str, Any]) -> None:
    print(f"budget {s['budget_mib']} MiB for {s['workers']} workers (idle RSS {s['idle_rss_mib']} MiB each); "
          f"per worker soft {s['soft_mib']}, hard {s['hard_mib']}, critical {s['critical_mib']} MiB")
    print(f"peak RSS {s['peak_rss_mib']} MiB = {s['peak_over_hard']}x hard; "
          f"longest stretch above hard {s['longest_above_hard_s']} s")
    print(f"{s['cycles']} cycles in {s['minutes']} min: {s['sessions_served']} sessions served, "
          f"{s['resumes']} resumes, {s['refusals']} refused (server busy)")
    print(f"evictions by reason {s['evictions']}; {s['closed_at_critical']} closed at critical")
    print(f"lost sessions: {s['lost']}; invariant violations: {s['violation_count']}")
    for v in s["violations"][:10]:
        print("  ", v)
    print(f"CSV {s['csv']}" + (f", plot {s['png']}" if s.get("png") else "") + f", server log {s['log']}")


if __name__ == "__main__":
    sys.exit(main())
