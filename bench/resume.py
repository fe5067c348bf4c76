"""Resume latency, same worker vs other worker, with many detached sessions present.

Starts ``vango-mp --workers 2`` (unless ``--url``), parks ``--detached``
counter sessions detached on it, then for ``--samples`` sessions: click,
disconnect, reconnect, click again, and time *reconnect start → that click's
patch applied*. A reconnect that lands on the session's worker resumes it in
memory; one that lands on the other worker adopts it over the bus (seal,
hand over, remount, FULL). Both kinds come from the kernel's SO_REUSEPORT
hash, so each sample records which one it was. Prints p50/p99 per kind, the
ratio, the targets (p99 ≤ 10 ms same worker, ≤ 30 ms other worker), and
writes JSON under bench/results/.

    python bench/resume.py --detached 1000 --samples 300
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import serverproc  # noqa: E402  (the vango-mp process a benchmark starts)

from vango_mp.testing import TestClient  # noqa: E402

TARGETS_MS = {"same": 10.0, "other": 30.0}
OPEN_BATCH = 25


async def park_detached(url: str, n: int, deadline: float) -> int:
    """Open ``n`` counter sessions, click each once, disconnect them all."""
    parked = 0
    async with TestClient(url) as client:
        while parked < n and time.monotonic() < deadline:
            batch = await asyncio.gather(*[client.open("/counter") for _ in range(min(OPEN_BATCH, n - parked))])
            for page in batch:
                await page.click("#inc")
            await asyncio.gather(*[page.disconnect() for page in batch])
            parked += len(batch)
    return parked


async def sample(url: str, samples: int, deadline: float) -> dict[str, list[float]]:
    """Time reconnect -> first patch applied, by whether the worker changed."""
    out: dict[str, list[float]] = {"same": [], "other": []}
    async with TestClient(url) as client:
        for i in range(samples):
            if time.monotonic() > deadline:
                break
            page = await client.open("/counter")
            await page.click("#inc")
            before = page.worker
            await page.disconnect()
            t0 = time.perf_counter()
            await page.resume()
            await page.click("#inc", wait=False)
            await page.wait_for_text("#count", "Count: 2")
            elapsed = (time.perf_counter() - t0) * 1000
            out["same" if page.worker == before else "other"].append(elapsed)
            await page.disconnect()
    return out


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an already running local server (default: start vango-mp --workers 2)")
    parser.add_argument("--detached", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--max-seconds", type=float, default=300.0, help="hard bound on the whole run")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.max_seconds
    server = None
    if args.url:
        serverproc.check_local(args.url)
        url = args.url
    else:
        server = serverproc.start_server([*serverproc.server_command(None)[:-2], "--workers", "2"])
        url = server.url
    try:
        parked = asyncio.run(park_detached(url, args.detached, deadline))
        times = asyncio.run(sample(url, args.samples, deadline))
    finally:
        if server is not None:
            server.stop()
    result = {"detached_present": parked, "samples": {k: len(v) for k, v in times.items()}}
    print(f"detached sessions present: {parked}")
    for kind in ("same", "other"):
        p50, p99 = pct(times[kind], 50), pct(times[kind], 99)
        result[kind] = {"p50_ms": p50, "p99_ms": p99, "mean_ms": statistics.fmean(times[kind]) if times[kind] else None}
        verdict = "n/a" if p99 is None else ("PASS" if p99 <= TARGETS_MS[kind] else "MISS")
        label = "same worker " if kind == "same" else "other worker"
        if p50 is None or p99 is None:
            print(f"{label}: no samples")
        else:
            print(f"{label}: n={len(times[kind]):4d}  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"
                  f"  (target p99 <= {TARGETS_MS[kind]:g} ms: {verdict})")
    if result["same"]["p50_ms"] and result["other"]["p50_ms"]:
        ratio = result["other"]["p50_ms"] / result["same"]["p50_ms"]
        result["other_over_same_p50"] = ratio
        print(f"other/same p50 ratio: {ratio:.2f}")
    out = BENCH / "results" / f"resume-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**result, "targets_ms": TARGETS_MS}, indent=2))
    print(f"figures written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
