"""Live navigation: click latency with and without prefetch, and memory per session over navigations.

Against the built-in demo (``vango-mp --workers 1 --bind 127.0.0.1:0
--memory-interval 0.5``, started here and stopped by its PID, unless
``--url``), on vango_mp.testing. Every session walks the cycle
``/ → /counter → /todos → /global → /items → /items/42 → /items → /`` by
clicking the links each page shows.

1. *latency*: ``--navigations`` clicks round-robin over ``--latency-sessions``
   sessions, each timed from the click on the link (``Page.follow``: NAVIGATE
   sent) until its NAV frame is applied in the client (patches, URL, title);
   also until the NAV frame *arrived* (server and wire, without the
   pure-Python client's DOM work).
   Visits alternate between a plain click and a prefetched one: hover (on the
   demo, whose links carry no ``data-prefetch``, PREFETCH is sent as is, as
   vango.js would for an opted-in link), then a PING — the server handles
   PREFETCH and PING in order as they arrive, so the PONG means the page was
   rendered aside — then the click. One session's prefetches are ≥ 0.21 s
   apart (the server allows 5/s per session) and the server's
   ``vango_prefetches_total{result="rendered"}`` must grow by one per
   prefetched click. Prints p50/p99 of both side by side, the ratio, and p50
   per page. One unmeasured walk of each kind warms the server up first.
2. *memory*: ``--sessions`` sessions open on ``/``, then navigate in rounds
   (every other round prefetched). After navigations 1, 8 and 50 — each
   leaving every session on ``/counter`` — the worker's ``rss_bytes`` and
   ``memory.estimated_session_bytes`` from ``/_vango/health`` (minus the
   figures read before the sessions opened) per session, and the ratios.
   Target: no growth beyond the prefetch cache and kept-alive pages; the demo
   keeps no page alive and every prefetched page is clicked, so ~1.0. RSS
   also holds disposed pages that only the cyclic GC frees (the worker runs it
   at threshold 20000, 10, 10); the estimate counts the live tree and the patch
   history (bench/README.md).

Every loop is bounded in count and by ``--max-seconds``; figures go to
``bench/results/navigation-<timestamp>.json``.

    python bench/navigation.py                               # ~50 s on 2 shared cores
    python bench/navigation.py --navigations 1000 --sessions 200 --max-seconds 300
    python bench/navigation.py --url http://127.0.0.1:8080   # one worker, per-IP limits lifted
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import re
import statistics
import sys
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import serverproc  # noqa: E402  (the vango-mp process a benchmark starts)

from vango_mp.testing import Page, TestClient  # noqa: E402

# The link clicked at each step, by href (also where it leads). 7 steps: navigations 1, 8 and 50 reach /counter.
CYCLE = ["/counter", "/todos", "/global", "/items", "/items/42", "/items", "/"]
KINDS = ("plain", "prefetch")
PREFETCH_GAP = 0.21  # seconds between one session's prefetches (the server's bucket: 5/s, burst 5)
OPEN_CONCURRENCY = 16
NAV_CONCURRENCY = 8  # memory phase: navigations in flight
READINGS = (1, 8, 50)  # memory is read after these navigations
_PREFETCHES = re.compile(r'^vango_prefetches_total\{([^}]*)\} (\S+)$', re.M)
_nav_arrived: dict[int, float] = {}  # id(page) -> perf_counter when its latest NAV frame arrived


def _time_nav_arrivals() -> None:
    """Note when each NAV frame arrives, before the client applies it (its socket callback is bound at open)."""
    original = Page._on_message

    def timed(self: Page, message: str | bytes | None) -> None:
        t, navs = time.perf_counter(), self.navs_applied
        original(self, message)
        if self.navs_applied != navs:
            _nav_arrived[id(self)] = t

    Page._on_message = timed  # type: ignore[method-assign]


def get_json(url: str, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + path, timeout=5) as resp:
        return dict(json.loads(resp.read()))


def prefetches(url: str) -> dict[str, float]:
    """``vango_prefetches_total`` by result, summed over workers."""
    with urllib.request.urlopen(url + "/_vango/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, float] = defaultdict(float)
    for labels, value in _PREFETCHES.findall(text):
        result = re.search(r'result="(\w+)"', labels)
        out[result.group(1) if result else "?"] += float(value)
    return dict(out)


class Walker:
    """One session walking CYCLE; paces its prefetches."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.step = 0
        self.last_prefetch = -1.0

    async def go(self, prefetch: bool) -> tuple[str, float, float]:
        """Click the next link, prefetched first if asked: the target, ms until its NAV arrived and was applied."""
        target = CYCLE[self.step % len(CYCLE)]
        selector = f"a[href='{target}']"
        if prefetch:
            await asyncio.sleep(max(0.0, self.last_prefetch + PREFETCH_GAP - time.monotonic()))
            if not await self.page.hover(selector):
                self.page.prefetch(target)
            self.last_prefetch = time.monotonic()
            await self.page.ping()  # the PONG follows the PREFETCH's render
        link = self.page.query(selector)  # found before the clock starts: a browser does no selector lookup
        t0 = time.perf_counter()
        await self.page.follow(link)  # what click() does on a link without a click listener (the demo's)
        applied = time.perf_counter()
        if self.page.path != target:
            raise RuntimeError(f"clicked {selector} and landed on {self.page.path}")
        self.step += 1
        return target, (_nav_arrived.get(id(self.page), t0) - t0) * 1000, (applied - t0) * 1000


async def open_walkers(client: TestClient, n: int, deadline: float) -> list[Walker]:
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def one() -> Walker | None:
        async with gate:
            return Walker(await client.open("/")) if time.monotonic() < deadline else None

    return [w for w in await asyncio.gather(*(one() for _ in range(n))) if w is not None]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def latency(url: str, navigations: int, sessions: int, deadline: float) -> dict[str, Any]:
    applied: dict[str, dict[str, list[float]]] = {k: defaultdict(list) for k in KINDS}
    arrived: dict[str, list[float]] = {k: [] for k in KINDS}
    async with TestClient(url, timeout=10.0) as client:
        walkers = await open_walkers(client, max(2, sessions), deadline)
        for w in walkers[:2]:  # warm-up, unmeasured: one plain and one prefetched walk through every page
            for _ in CYCLE:
                await w.go(prefetch=w is walkers[1])
        before = await asyncio.to_thread(prefetches, url)
        gc.collect()
        for i in range(navigations):
            if time.monotonic() > deadline:
                break
            w = walkers[i % len(walkers)]
            kind = KINDS[w.step % 2]  # the cycle has 7 steps: each page gets both kinds in turn
            target, arrived_ms, applied_ms = await w.go(prefetch=kind == "prefetch")
            applied[kind][target].append(applied_ms)
            arrived[kind].append(arrived_ms)
        after = await asyncio.to_thread(prefetches, url)
        await asyncio.gather(*(w.page.disconnect() for w in walkers))
    result: dict[str, Any] = {"sessions": len(walkers),
                              "prefetches": {k: after.get(k, 0) - before.get(k, 0) for k in ("rendered", "skipped")}}
    for kind in KINDS:
        flat = [ms for per in applied[kind].values() for ms in per]
        result[kind] = {"n": len(flat), "p50_ms": pct(flat, 50), "p99_ms": pct(flat, 99),
                        "mean_ms": statistics.fmean(flat),
                        "arrived_p50_ms": pct(arrived[kind], 50), "arrived_p99_ms": pct(arrived[kind], 99),
                        "per_page_p50_ms": {t: pct(v, 50) for t, v in applied[kind].items()}} if flat else {"n": 0}
    return result


async def memory(url: str, sessions: int, deadline: float, settle: float) -> dict[str, Any]:
    """Readings before the sessions open, then after navigations READINGS (each on /counter)."""
    async def sample() -> dict[str, Any]:
        await asyncio.sleep(settle)  # longer than the server's memory interval: its estimate is fresh
        health = await asyncio.to_thread(get_json, url, "/_vango/health")
        return {"rss": health["rss_bytes"], "estimate": health["memory"]["estimated_session_bytes"],
                "attached": health["sessions"]["attached"], "pid": health["pid"]}

    gate = asyncio.Semaphore(NAV_CONCURRENCY)

    async def nav(w: Walker, prefetch: bool) -> None:
        async with gate:
            await w.go(prefetch)

    result: dict[str, Any] = {"before": await sample(), "readings": {}}
    async with TestClient(url, timeout=10.0) as client:
        walkers = await open_walkers(client, sessions, deadline)
        for n in range(1, max(READINGS) + 1):
            if time.monotonic() > deadline:
                break
            await asyncio.gather(*(nav(w, n % 2 == 0) for w in walkers))
            if n in READINGS:
                result["readings"][n] = await sample()
        await asyncio.gather(*(w.page.disconnect() for w in walkers))
    result["sessions"] = s = max(1, len(walkers))
    for reading in result["readings"].values():
        reading["rss_per_session"] = (reading["rss"] - result["before"]["rss"]) / s
        reading["estimate_per_session"] = (reading["estimate"] - result["before"]["estimate"]) / s
    return result


def report(lat: dict[str, Any], mem: dict[str, Any]) -> dict[str, float]:
    ratios: dict[str, float] = {}
    plain, pre = lat["plain"], lat["prefetch"]
    print(f"navigation latency, click -> NAV ({lat['sessions']} sessions; cycle / -> {' -> '.join(CYCLE)})")
    print(f"{'':18}{'n':>5}  {'applied: p50':>12}{'p99':>8}{'mean':>8}  {'arrived: p50':>12}{'p99':>8}  (ms)")
    for r, label in ((plain, "without prefetch"), (pre, "with prefetch")):
        if r["n"]:
            print(f"{label:18}{r['n']:5d}  {r['p50_ms']:12.2f}{r['p99_ms']:8.2f}{r['mean_ms']:8.2f}"
                  f"  {r['arrived_p50_ms']:12.2f}{r['arrived_p99_ms']:8.2f}")
    if plain["n"] and pre["n"]:
        for key in ("p50_ms", "p99_ms", "mean_ms", "arrived_p50_ms", "arrived_p99_ms"):
            ratios[f"latency_{key}_with_over_without"] = pre[key] / plain[key]
        r = [ratios[f"latency_{k}_with_over_without"] for k in ("p50_ms", "p99_ms", "mean_ms", "arrived_p50_ms",
                                                                 "arrived_p99_ms")]
        print(f"{'with / without':18}{'':5}  {r[0]:12.2f}{r[1]:8.2f}{r[2]:8.2f}  {r[3]:12.2f}{r[4]:8.2f}")
        print(f"applied p50 per page: {'without':>9}{'with':>8}{'ratio':>7}")
        for page in dict.fromkeys(CYCLE):
            a, b = plain["per_page_p50_ms"].get(page), pre["per_page_p50_ms"].get(page)
            if a and b:
                print(f"  {page:20}{a:9.2f}{b:8.2f}{b / a:7.2f}")
    pf = lat["prefetches"]
    ok = pf["rendered"] == pre["n"] and not pf["skipped"]
    print(f"server prefetches: {pf['rendered']:.0f} rendered, {pf['skipped']:.0f} skipped for {pre['n']} "
          f"prefetched clicks: {'OK' if ok else 'MISMATCH: some prefetched clicks rendered on the click'}")

    readings = mem["readings"]
    print(f"\nmemory per session, worker pid {mem['before']['pid']}: {mem['sessions']} sessions, RSS before they "
          f"opened {mem['before']['rss'] / 2**20:.1f} MiB; every reading on /counter")
    print(f"{'after navigation':18}{'attached':>9}{'RSS/session':>15}{'estimate/session':>19}")
    for n, r in readings.items():
        print(f"{n:18d}{r['attached']:9d}{r['rss_per_session'] / 1024:11.1f} KiB"
              f"{r['estimate_per_session'] / 1024:15.1f} KiB")
    for lo, hi in ((1, max(READINGS)), (8, max(READINGS))):
        if lo in readings and hi in readings and readings[lo]["rss_per_session"] > 0:
            for key in ("rss", "estimate"):
                ratios[f"memory_{key}_{hi}_over_{lo}"] = (readings[hi][f"{key}_per_session"]
                                                          / readings[lo][f"{key}_per_session"])
            label = f"{hi} / {lo}"
            print(f"{label:18}{'':9}{ratios[f'memory_rss_{hi}_over_{lo}']:15.2f}"
                  f"{ratios[f'memory_estimate_{hi}_over_{lo}']:19.2f}")
    print("target ~1.00 (no kept-alive pages; every prefetched page clicked). The estimate is the live tree and\n"
          "the patch history; RSS adds disposed pages the cyclic GC has not freed yet (bench/README.md).")
    return ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a local server with one worker (default: start vango-mp --workers 1)")
    parser.add_argument("--navigations", type=int, default=400, help="timed clicks, half of them prefetched")
    parser.add_argument("--latency-sessions", type=int, default=16)
    parser.add_argument("--sessions", type=int, default=100, help="sessions of the memory phase")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds before each memory reading")
    parser.add_argument("--max-seconds", type=float, default=120.0,
                        help="hard bound on the run; the latency phase gets 40%% of it")
    args = parser.parse_args(argv)
    start = time.monotonic()
    server = None
    if args.url:
        serverproc.check_local(args.url)
        url = args.url.rstrip("/")
    else:  # memory checks, which refresh the per-session estimate, every 0.5 s instead of 10 s
        server = serverproc.start_server([*serverproc.server_command(None), "--memory-interval", "0.5"])
        url = server.url
    _time_nav_arrivals()
    gc.set_threshold(20000, 10, 10)  # keep the client's collections off the latencies it measures
    try:
        lat = asyncio.run(latency(url, args.navigations, args.latency_sessions, start + 0.4 * args.max_seconds))
        mem = asyncio.run(memory(url, args.sessions, start + args.max_seconds - 2 * args.settle, args.settle))
    finally:
        if server is not None:
            server.stop()
    ratios = report(lat, mem)
    out = BENCH / "results" / f"navigation-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"latency": lat, "memory": mem, "ratios": ratios, "cycle": CYCLE,
                               "wall_s": time.monotonic() - start}, indent=2))
    print(f"figures written to {out} ({time.monotonic() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
