"""One command, a short run of every benchmark, one Markdown report with JSON and PNG plots.

    python bench/report.py                 # ~4 min on 2 cores
    python bench/report.py --scale 3       # longer phases, more sessions (3x)

Writes ``bench/results/report-<timestamp>/``: ``report.md`` (the figures and
the plots), ``report.json`` (every number), and PNGs (matplotlib, the
``bench`` / ``plot`` extra: ``pip install 'vango-mp[plot]'``):

- ``latency_cdf.png``: client round trips per click (event sent -> PATCHES
  applied) as measured by the test client, and the server's own
  ``vango_event_latency_seconds`` / ``vango_handshake_seconds`` /
  ``vango_resume_seconds`` / ``vango_navigation_seconds`` histograms read
  back from ``/_vango/metrics`` (a Prometheus histogram *is* a CDF);
- ``memory_per_session.png``: worker RSS against attached sessions (the
  slope is the memory of one session);
- ``scaling.png``: events/s against workers (``bench/cluster.py --only
  scaling``);
- ``soak.png``: RSS of each worker against its soft, hard and critical
  limits during a short memory-pressure soak (``bench/soak.py``).

Every server it starts listens on 127.0.0.1 and is stopped by its own PID.
Figures from a 2-core shared host are for comparing runs, not absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from tests.conftest import Server, start_server  # noqa: E402
from vango_mp.testing import TestClient  # noqa: E402

MIB = 1024 * 1024
SERVER_HISTOGRAMS = ("vango_event_latency_seconds", "vango_handshake_seconds", "vango_resume_seconds",
                     "vango_navigation_seconds")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python bench/report.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=float, default=1.0, help="multiplies sessions and durations (default 1)")
    p.add_argument("--out", type=Path, default=None, help="report directory (default bench/results/report-<ts>)")
    p.add_argument("--skip", default="", help="comma-separated phases to skip: latency,memory,scaling,soak")
    return p.parse_args(argv)


# -- phases ------------------------------------------------------------------------


async def drive_latency(url: str, sessions: int, clicks: int) -> dict[str, list[float]]:
    """Client-side round trips (ms): clicks, live navigations, reconnect-resumes."""
    out: dict[str, list[float]] = {"click": [], "navigation": [], "resume": []}

    async def one(i: int) -> None:
        async with TestClient(url) as c:
            page = await c.open("/counter")
            for _ in range(clicks):
                t = time.perf_counter()
                await page.click("#inc")
                out["click"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            await page.click_link("Todos")
            out["navigation"].append((time.perf_counter() - t) * 1000)
            await page.disconnect()
            t = time.perf_counter()
            await page.resume()
            out["resume"].append((time.perf_counter() - t) * 1000)

    await asyncio.gather(*(one(i) for i in range(sessions)))
    return out


def scrape(srv: Server) -> list[tuple[str, dict[str, str], float]]:
    body = srv.get("/_vango/metrics")[2].decode()
    return [(s.name, s.labels, s.value) for fam in text_string_to_metric_families(body) for s in fam.samples]


def histogram_cdf(rows: list[tuple[str, dict[str, str], float]], name: str) -> list[tuple[float, float]]:
    """(upper bound in ms, fraction of observations at or below it), summed over workers and labels."""
    buckets: dict[float, float] = {}
    for n, labels, v in rows:
        if n == name + "_bucket":
            le = float(labels["le"])
            buckets[le] = buckets.get(le, 0.0) + v
    total = buckets.get(float("inf"), 0.0)
    if not total:
        return []
    return [(le * 1000, c / total) for le, c in sorted(buckets.items()) if le != float("inf")]


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100 * len(s))) - 1))]


def latency_phase(scale: float) -> dict[str, Any]:
    sessions, clicks = max(2, int(10 * scale)), max(5, int(30 * scale))
    srv = start_server("--workers", "2", env={"VANGO_MAX_SESSIONS_PER_IP": "0",
                                              "VANGO_MAX_CONCURRENT_HANDSHAKES_PER_IP": "0"})
    try:
        client = asyncio.run(drive_latency(srv.url, sessions, clicks))
        rows = scrape(srv)
    finally:
        srv.stop()
    return {
        "sessions": sessions, "clicks_per_session": clicks,
        "client_ms": {k: {"n": len(v), "p50": pct(v, 50), "p90": pct(v, 90), "p99": pct(v, 99),
                          "max": max(v) if v else None, "samples": [round(x, 3) for x in sorted(v)]}
                      for k, v in client.items()},
        "server_cdf_ms": {name: histogram_cdf(rows, name) for name in SERVER_HISTOGRAMS},
    }


async def open_idle(url: str, n: int, held: list[Any]) -> None:
    client = TestClient(url)
    held.append(client)
    for _ in range(n):
        held.append(await client.open("/counter"))


def rss_total(srv: Server) -> float:
    return sum(v for n, labels, v in scrape(srv) if n == "vango_rss_bytes")


def memory_phase(scale: float) -> dict[str, Any]:
    steps = [0, *(int(x * scale) for x in (50, 100, 200))]
    srv = start_server("--workers", "1", env={"VANGO_MAX_SESSIONS_PER_IP": "0",
                                              "VANGO_MAX_CONCURRENT_HANDSHAKES_PER_IP": "0",
                                              "VANGO_MEMORY_INTERVAL": "0.5s"})
    points: list[tuple[int, float]] = []
    try:
        async def run() -> None:
            held: list[Any] = []
            opened = 0
            for target in steps:
                await open_idle(srv.url, target - opened, held)
                opened = target
                await asyncio.sleep(1.5)  # two memory samples
                points.append((opened, rss_total(srv) / MIB))
            for item in held:
                if isinstance(item, TestClient):
                    await item.aclose()

        asyncio.run(run())
    finally:
        srv.stop()
    (n0, r0), (n1, r1) = points[0], points[-1]
    return {"points": points, "kib_per_session": round((r1 - r0) * 1024 / max(1, n1 - n0), 1)}


def newest(pattern: str, since: float) -> Path | None:
    found = [p for p in (ROOT / "bench" / "results").glob(pattern) if p.stat().st_mtime >= since]
    return max(found, key=lambda p: p.stat().st_mtime, default=None)


def scaling_phase(scale: float) -> dict[str, Any]:
    t0 = time.time()
    cmd = [sys.executable, str(ROOT / "bench" / "cluster.py"), "--only", "scaling", "--workers-list", "1,2",
           "--seconds", str(max(2, int(3 * scale))), "--name", "report-cluster"]
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    path = newest("report-cluster-*.json", t0)
    rows = json.loads(path.read_text())["scaling"]["rows"] if path else []
    return {"json": str(path), "rows": [{k: r.get(k) for k in ("workers", "sessions", "events_per_s",
                                                                 "server_cpu_us_per_event", "events_ratio")}
                                        for r in rows]}


def soak_phase(scale: float, out: Path) -> dict[str, Any]:
    soak_dir = out / "soak"
    cmd = [sys.executable, str(ROOT / "bench" / "soak.py"), "--minutes", f"{0.5 * scale:g}", "--out", str(soak_dir),
           "--no-plot"]
    done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
    summary = json.loads(next(soak_dir.glob("soak-*.json")).read_text())
    series: dict[str, list[tuple[float, float]]] = {}
    with open(summary["csv"]) as fh:
        for row in csv.DictReader(fh):
            series.setdefault(row["worker"], []).append((float(row["t_s"]), float(row["rss_mib"])))
    keep = ("soft_mib", "hard_mib", "critical_mib", "share_mib", "peak_over_hard", "sessions_served", "evictions",
            "refusals", "lost", "violation_count")
    return {"exit": done.returncode, "summary": {k: summary.get(k) for k in keep}, "series": series}


# -- plots and the report --------------------------------------------------------------


def plot_all(result: dict[str, Any], out: Path) -> dict[str, str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no PNGs (pip install 'vango-mp[plot]')", file=sys.stderr)
        return {}
    made: dict[str, str] = {}
    if "latency" in result:
        fig, ax = plt.subplots(figsize=(7, 4))
        for name, stats in result["latency"]["client_ms"].items():
            xs = stats["samples"]
            if xs:
                ax.step(xs, [(i + 1) / len(xs) for i in range(len(xs))], where="post", label=f"client {name}")
        for name, cdf in result["latency"]["server_cdf_ms"].items():
            if cdf:
                ax.plot([x for x, _ in cdf], [y for _, y in cdf], "o--", ms=3,
                        label="server " + name.removeprefix("vango_").removesuffix("_seconds"))
        ax.set(xscale="log", xlabel="milliseconds", ylabel="fraction at or below", title="Latency CDFs")
        ax.grid(alpha=.3)
        ax.legend(fontsize=7)
        made["latency_cdf"] = _save(fig, out / "latency_cdf.png")
    if "memory" in result:
        pts = result["memory"]["points"]
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-")
        ax.set(xlabel="attached sessions", ylabel="worker RSS (MiB)",
               title=f"Memory per session: {result['memory']['kib_per_session']} KiB")
        ax.grid(alpha=.3)
        made["memory_per_session"] = _save(fig, out / "memory_per_session.png")
    if result.get("scaling", {}).get("rows"):
        rows = result["scaling"]["rows"]
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot([r["workers"] for r in rows], [r["events_per_s"] or 0 for r in rows], "o-")
        ax.set(xlabel="workers", ylabel="events/s", title="Scaling over workers", xticks=[r["workers"] for r in rows])
        ax.grid(alpha=.3)
        made["scaling"] = _save(fig, out / "scaling.png")
    if "soak" in result:
        s = result["soak"]
        fig, ax = plt.subplots(figsize=(7, 4))
        for worker, pts in sorted(s["series"].items()):
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=f"worker {worker} RSS")
        for key, style in (("soft_mib", ":"), ("hard_mib", "--"), ("critical_mib", "-.")):
            if s["summary"].get(key):
                ax.axhline(s["summary"][key], linestyle=style, color="gray", label=key.removesuffix("_mib"))
        ax.set(xlabel="seconds", ylabel="MiB", title="Soak: RSS against limits")
        ax.grid(alpha=.3)
        ax.legend(fontsize=7)
        made["soak"] = _save(fig, out / "soak.png")
    return made


def _save(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path.name


def markdown(result: dict[str, Any], pngs: dict[str, str]) -> str:
    h = result["host"]
    lines = [f"# vango-mp benchmark report ({result['time']})", "",
             f"Host: {h['cores']} cores, Python {h['python']}, {h['platform']}; load average before "
             f"{h['load_before']:.2f}. Scale {result['scale']:g}; wall {result['wall_s']:.0f} s.", ""]
    if "latency" in result:
        lat = result["latency"]
        lines += ["## Latency", "", f"{lat['sessions']} sessions on 2 workers, {lat['clicks_per_session']} clicks "
                  "each, then one live navigation and one reconnect-resume each.", "",
                  "| client round trip | n | p50 ms | p90 ms | p99 ms | max ms |", "|---|---|---|---|---|---|"]
        for name, st in lat["client_ms"].items():
            lines.append(f"| {name} | {st['n']} | {_f(st['p50'])} | {_f(st['p90'])} | {_f(st['p99'])} | {_f(st['max'])} |")
        lines += ["", "Server-side histograms from `/_vango/metrics` are in the plot and `report.json`.", ""]
        lines += _img(pngs, "latency_cdf")
    if "memory" in result:
        mem = result["memory"]
        lines += ["## Memory per session", "",
                  f"Worker RSS grows by **{mem['kib_per_session']} KiB per attached /counter session** "
                  f"({', '.join(f'{n}: {r:.1f} MiB' for n, r in mem['points'])}).", ""]
        lines += _img(pngs, "memory_per_session")
    if result.get("scaling", {}).get("rows"):
        lines += ["## Scaling", "", "| workers | sessions | events/s | server CPU µs/event | ratio to 1 |",
                  "|---|---|---|---|---|"]
        for r in result["scaling"]["rows"]:
            lines.append(f"| {r['workers']} | {r['sessions']} | {_f(r['events_per_s'], 0)} | "
                         f"{_f(r['server_cpu_us_per_event'], 0)} | {_f(r.get('events_ratio'))} |")
        lines += ["", "On a host with fewer free cores than workers plus load generators the ratio is bound by "
                  "the host, not the server (see bench/README.md).", ""]
        lines += _img(pngs, "scaling")
    if "soak" in result:
        s = result["soak"]["summary"]
        lines += ["## Soak (memory pressure)", "",
                  f"Limits per worker: soft {s['soft_mib']} MiB, hard {s['hard_mib']} MiB, critical "
                  f"{s['critical_mib']} MiB. Peak RSS / hard: {s['peak_over_hard']}. Sessions served "
                  f"{s['sessions_served']}, refusals {s['refusals']}, evictions {s['evictions']}, lost {s['lost']}, "
                  f"violations {s['violation_count']}.", ""]
        lines += _img(pngs, "soak")
    return "\n".join(lines) + "\n"


def _f(v: Any, digits: int = 2) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def _img(pngs: dict[str, str], key: str) -> list[str]:
    return [f"![{key}]({pngs[key]})", ""] if key in pngs else []


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    skip = {s for s in args.skip.split(",") if s}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = args.out or ROOT / "bench" / "results" / f"report-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    os.environ["PYTHONPATH"] = f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}".rstrip(os.pathsep)
    t0 = time.monotonic()
    result: dict[str, Any] = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "scale": args.scale,
        "host": {"cores": len(os.sched_getaffinity(0)), "python": platform.python_version(),
                 "platform": platform.platform(), "load_before": os.getloadavg()[0]},
    }
    phases = (("latency", lambda: latency_phase(args.scale)), ("memory", lambda: memory_phase(args.scale)),
              ("scaling", lambda: scaling_phase(args.scale)), ("soak", lambda: soak_phase(args.scale, out)))
    for name, run in phases:
        if name in skip:
            continue
        print(f"report: {name} ...", flush=True)
        result[name] = run()
    result["wall_s"] = time.monotonic() - t0
    pngs = plot_all(result, out)
    result["png"] = pngs
    (out / "report.json").write_text(json.dumps(result, indent=2, default=str))
    (out / "report.md").write_text(markdown(result, pngs))
    print(f"report: {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
