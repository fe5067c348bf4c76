"""Load generator: N sessions clicking ``/counter`` flat out, on vango_mp.testing.

Run ``python bench/load.py --help``; bench/README.md explains every figure.

Phases, all against one server (started here unless ``--url``):

1. *frame*: one session clicks once; the PATCHES frame's size is recorded.
2. *idle memory*: ``--idle-sessions`` sessions (≥ 200 for the figure to
   count) connect with permessage-deflate offered, as browsers do, and stay
   idle; (server RSS after − before) / N is the memory per attached session.
3. *load*, once per ``--sessions`` value: N sessions, spread over
   ``--procs`` client processes, each clicking and awaiting its patch before
   the next click, for ``--seconds``. Events/s, round-trip percentiles and
   server CPU per event (psutil CPU times of the server's process tree,
   sampled before and after, so it holds even when the client is the
   bottleneck).

Every loop is bounded in count and time; traffic goes to 127.0.0.1 only;
only the server PID started here is ever signalled.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import multiprocessing as mp
import os
import platform
import re
import shutil
import statistics
import subprocess
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

from bench import flame  # noqa: E402
from bench.serverproc import Server, check_local, find_listener, server_command, start_server  # noqa: E402
from vango_mp.testing import TestClient, VangoTestError  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TARGETS = {
    "memory_per_session_kib": 12.0,  # idle attached counter session, one worker (issue 13.3; 20.8 measured)
    "server_cpu_us_per_event": 250.0,
    "p99_ms_at_50": 15.0,  # round trip p99 with 50 sessions clicking flat out
    "frame_wire_bytes": 40,  # counter PATCHES frame on the wire
}
OPEN_CONCURRENCY = 32  # handshakes in flight per client process (the server caps them per IP)
CMD_TIMEOUT = 120.0  # any one step of a client process


# ---------------------------------------------------------------- client processes


def client_main(conn: Any, url: str, path: str, selector: str, compression: bool) -> None:
    """A load process: opens sessions, clicks on command, reports; driven by ``conn``."""
    # Hundreds of live pages make every young-generation collection walk
    # them; a larger threshold keeps the load generator's GC off the
    # latencies it measures (the server is left as configured).
    gc.set_threshold(20000, 10, 10)
    asyncio.run(_client(conn, url, path, selector, compression))


async def _client(conn: Any, url: str, path: str, selector: str, compression: bool) -> None:
    loop = asyncio.get_running_loop()
    async with TestClient(url, timeout=10.0, compression=compression) as client:
        pages: list[Any] = []
        while True:
            if not await loop.run_in_executor(None, conn.poll, CMD_TIMEOUT):
                return  # the coordinator is gone
            cmd, *args = conn.recv()
            if cmd == "open":
                errors = await _open_pages(client, pages, path, args[0])
                conn.send(("opened", len(pages), errors))
            elif cmd == "go":
                conn.send(("done", await _click_all(pages, selector, *args)))
            elif cmd == "close":
                await _close_pages(pages)
                conn.send(("closed",))
                return


async def _open_pages(client: TestClient, pages: list[Any], path: str, n: int) -> list[str]:
    errors: list[str] = []
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def one() -> None:
        async with gate:
            try:
                pages.append(await client.open(path))
            except (VangoTestError, OSError) as err:
                errors.append(f"{type(err).__name__}: {err}")

    await asyncio.gather(*(one() for _ in range(n)))
    return errors[:10]


async def _click_all(pages: list[Any], selector: str, start: float, end: float, max_clicks: int) -> dict[str, Any]:
    await asyncio.sleep(max(0.0, start - time.monotonic()))
    lat = array("d")
    errors: Counter[str] = Counter()
    t0 = time.perf_counter()
    cpu0 = time.process_time()

    async def clicker(page: Any) -> None:
        hid = page.handler_hid(selector, "click")
        for _ in range(max_clicks):  # bounded in count as well as in time
            if time.monotonic() >= end:
                return
            t = time.perf_counter()
            try:
                await page.send_event(hid, "click", None, wait=True, timeout=5.0)
            except VangoTestError as err:
                errors[type(err).__name__] += 1
                return
            lat.append(time.perf_counter() - t)

    await asyncio.gather(*(clicker(p) for p in pages))
    wall = time.perf_counter() - t0
    return {
        "latencies": lat.tobytes(), "wall": wall, "cpu": time.process_time() - cpu0,
        "errors": dict(errors), "page_errors": sum(len(p.errors) for p in pages),
        "finished": time.monotonic(),
    }


async def _close_pages(pages: list[Any]) -> None:
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def one(page: Any) -> None:
        async with gate:
            try:
                await page.disconnect(timeout=5.0)
            except VangoTestError:
                page.drop()

    await asyncio.gather(*(one(p) for p in pages))
    pages.clear()


class ClientPool:
    """``procs`` load processes, each holding a share of the sessions.

    Each answers the commands sent down its ``conn``: :func:`client_main`
    (``client_main(conn, *args)``, on vango_mp.testing), or ``target(conn,
    index, *args)`` (``bench/scale.py`` and ``bench/baseline.py`` pass their
    lean clients; ``index`` numbers the processes from 0).
    """

    def __init__(self, procs: int, *args: Any, target: Any = None) -> None:
        ctx = mp.get_context("spawn")  # no inherited event loop or sockets
        self.conns = []
        self.procs = []
        for i in range(procs):
            parent, child = ctx.Pipe()
            run_args = (child, *args) if target is None else (child, i, *args)
            p = ctx.Process(target=target or client_main, args=run_args, daemon=True)
            p.start()
            self.conns.append(parent)
            self.procs.append(p)

    def ask(self, messages: list[tuple[Any, ...]], timeout: float = CMD_TIMEOUT) -> list[Any]:
        for conn, msg in zip(self.conns, messages):
            conn.send(msg)
        replies = []
        for conn in self.conns:
            if not conn.poll(timeout):
                raise SystemExit("a load process did not answer in time")
            replies.append(conn.recv())
        return replies

    def open(self, sessions: int) -> tuple[int, list[str]]:
        shares = _split(sessions, len(self.conns))
        replies = self.ask([("open", n) for n in shares])
        return sum(r[1] for r in replies), [e for r in replies for e in r[2]]

    def cpu_seconds(self) -> float:
        total = 0.0
        for p in self.procs:
            try:
                t = psutil.Process(p.pid).cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    def close(self) -> None:
        try:
            self.ask([("close",)] * len(self.conns), timeout=60)
        except (OSError, EOFError, SystemExit):
            pass  # a process already gone or stuck: reaped below
        finally:
            for p in self.procs:
                p.join(10)
                if p.is_alive():
                    p.kill()


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


# ---------------------------------------------------------------- phases


async def probe_frame(url: str, path: str, selector: str) -> dict[str, Any]:
    """Click once; the size of the PATCHES frame it produced."""
    async with TestClient(url) as client:
        page = await client.open(path)
        before = page.text()
        await page.click(selector)
        raw = page.last_message or b""
        frame = page.last_frame or []
        size = len(raw)
        # Server-to-client WebSocket frames are unmasked: a 2-byte header below 126 bytes.
        wire = size + (2 if size < 126 else 4 if size < 65536 else 10)
        return {
            "payload_bytes": size, "wire_bytes": wire, "frame_type": frame[0] if frame else None,
            "frame": repr(frame), "hex": raw.hex(), "changed": before != page.text(),
            "page_errors": page.errors,
        }


def measure_idle_memory(server: Server, args: argparse.Namespace, procs: int) -> dict[str, Any]:
    """Memory per attached idle session: (memory after N attached − before) / N."""
    n = args.idle_sessions
    pool = ClientPool(procs, server.url, args.path, args.selector, True)
    try:
        time.sleep(0.5)
        before = server.memory()
        opened, errors = pool.open(n)
        time.sleep(args.settle)
        after = server.memory()
        result = {
            "sessions": n, "opened": opened, "errors": errors, "compression_offered": True,
            "rss_before": before["rss"], "rss_after": after["rss"],
            "uss_before": before["uss"], "uss_after": after["uss"],
        }
        if opened:
            result["rss_per_session_kib"] = (after["rss"] - before["rss"]) / opened / 1024
            result["uss_per_session_kib"] = (after["uss"] - before["uss"]) / opened / 1024
        return result
    finally:
        pool.close()


def run_load(server: Server, args: argparse.Namespace, sessions: int, procs: int) -> dict[str, Any]:
    pool = ClientPool(procs, server.url, args.path, args.selector, not args.no_compression)
    profiler = None
    try:
        opened, errors = pool.open(sessions)
        if not opened:
            return {"sessions": sessions, "opened": 0, "errors": errors}
        start = time.monotonic() + 0.5
        end = start + args.seconds
        msgs = [("go", start, end, args.max_clicks)] * procs
        for conn, msg in zip(pool.conns, msgs):
            conn.send(msg)
        time.sleep(max(0.0, start - time.monotonic()))
        cpu0, ccpu0, host0, t0 = server.cpu_seconds(), pool.cpu_seconds(), _host_busy(), time.monotonic()
        if args.profile and server.pid is not None:
            profiler = start_profiler(server.pid, args.seconds, args.name, sessions)
        replies = []
        for conn in pool.conns:
            if not conn.poll(args.seconds + 60):
                raise SystemExit("a load process never finished clicking")
            replies.append(conn.recv()[1])
        cpu1, ccpu1, host1 = server.cpu_seconds(), pool.cpu_seconds(), _host_busy()
        elapsed = max(r["finished"] for r in replies) - t0
        lat = array("d")
        for r in replies:
            lat.frombytes(r["latencies"])
        result = summarize(sessions, procs, opened, errors, replies, lat, elapsed,
                           cpu1 - cpu0, ccpu1 - ccpu0)
        # Anything else busy on this host skews latency (not CPU per event).
        result["other_cpu_util"] = max(0.0, (host1 - host0) - (cpu1 - cpu0) - (ccpu1 - ccpu0)) / elapsed
        if profiler is not None:
            result["profile"] = finish_profiler(profiler)
        return result
    finally:
        pool.close()


def _host_busy() -> float:
    """CPU seconds all cores of this host spent busy so far."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0) + getattr(t, "steal", 0.0)


def summarize(sessions: int, procs: int, opened: int, errors: list[str], replies: list[dict[str, Any]],
              lat: array, elapsed: float, server_cpu: float, client_cpu: float) -> dict[str, Any]:
    events = len(lat)
    ms = sorted(x * 1000 for x in lat)
    click_errors: Counter[str] = Counter()
    for r in replies:
        click_errors.update(r["errors"])
    return {
        "sessions": sessions, "opened": opened, "procs": procs, "open_errors": errors,
        "events": events, "elapsed_s": elapsed, "events_per_s": events / elapsed if elapsed > 0 else 0.0,
        "rtt_ms": {
            "p50": _pct(ms, 50), "p90": _pct(ms, 90), "p99": _pct(ms, 99), "max": ms[-1] if ms else None,
            "mean": statistics.fmean(ms) if ms else None,
        },
        "server_cpu_s": server_cpu,
        "server_cpu_us_per_event": server_cpu / events * 1e6 if events and server_cpu > 0 else None,
        "server_cpu_util": server_cpu / elapsed if elapsed > 0 else None,  # 1.0 = one core busy
        "client_cpu_util": client_cpu / elapsed if elapsed > 0 else None,
        "click_errors": dict(click_errors),
        "page_errors": sum(r["page_errors"] for r in replies),
    }


def _pct(sorted_ms: list[float], p: float) -> float | None:
    if not sorted_ms:
        return None
    k = min(len(sorted_ms) - 1, max(0, math.ceil(p / 100 * len(sorted_ms)) - 1))
    return sorted_ms[k]


# ---------------------------------------------------------------- profiling


def start_profiler(pid: int, seconds: float, name: str, sessions: int) -> tuple[subprocess.Popen[bytes], Path]:
    """py-spy on the server tree during the load phase (raw collapsed stacks)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}-{_stamp()}-n{sessions}-profile.txt"
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    cmd = [spy, "record", "--pid", str(pid), "--subprocesses", "--duration", str(max(1, int(seconds))),
           "--rate", "250", "--format", "raw", "--nonblocking", "-o", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out


def finish_profiler(profiler: tuple[subprocess.Popen[bytes], Path]) -> dict[str, Any]:
    proc, out = profiler
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
    if not out.exists():
        return {"error": "py-spy wrote nothing (is it installed, may it ptrace?)"}
    return {"path": str(out), **summarize_stacks(out.read_text())}


def summarize_stacks(text: str, top: int = 15) -> dict[str, Any]:
    """Where the server's samples went, from py-spy's collapsed stacks.

    ``self_pct``: innermost frame. ``by_file_pct``: innermost frame's file.
    ``vango_pct``: the innermost vango_mp function of each sample, i.e. vango
    code plus everything it called (Tornado, msgpack, syscalls); samples
    with no vango_mp frame below the IO loop are Tornado/asyncio's own work.
    """
    own: Counter[str] = Counter()
    by_file: Counter[str] = Counter()
    vango: Counter[str] = Counter()
    total = 0
    for raw, n in flame.samples(text):
        total += n
        frames = [flame.short_frame(f) for f in raw]
        own[frames[-1]] += n
        by_file[frames[-1].rpartition("(")[2].split(":")[0]] += n
        # worker.serve sits under everything: it is the IO loop, not vango work.
        mine = [f for r, f in zip(raw, frames) if "vango_mp/" in r and not f.startswith("serve (")]
        vango[re.sub(r":\d+\)$", ")", mine[-1]) if mine else _IO_LOOP] += n
    share = lambda c: [(f, round(100 * n / total, 1)) for f, n in c.most_common(top)]  # noqa: E731
    return {"samples": total, "self_pct": share(own), "by_file_pct": share(by_file), "vango_pct": share(vango)}


_IO_LOOP = "<io loop: tornado/asyncio work outside vango_mp calls (socket reads, frame parsing)>"


# ---------------------------------------------------------------- report


def verdict(value: float | None, target: float) -> str:
    if value is None:
        return "n/a "
    return "PASS" if value <= target else "MISS"


def report(result: dict[str, Any]) -> None:
    frame, memory = result["frame"], result.get("memory")
    print()
    print(f"server: {result['server']['cmd']}  ({result['host']['cpus']} CPUs)")
    print(f"counter PATCHES frame: {frame['payload_bytes']} B payload, {frame['wire_bytes']} B on the wire"
          f"   target <= {TARGETS['frame_wire_bytes']} B  {verdict(frame['wire_bytes'], TARGETS['frame_wire_bytes'])}")
    if memory and "rss_per_session_kib" in memory:
        kib = memory["rss_per_session_kib"]
        note = "" if memory["opened"] >= 200 else "  (N < 200: indicative only)"
        print(f"memory per attached session: {kib:.1f} KiB RSS ({memory['uss_per_session_kib']:.1f} KiB USS),"
              f" N={memory['opened']}   target <= {TARGETS['memory_per_session_kib']:.0f} KiB  "
              f"{verdict(kib, TARGETS['memory_per_session_kib'])}{note}")
        if memory["opened"] < memory["sessions"]:
            print(f"  only {memory['opened']} of {memory['sessions']} sessions opened: {memory['errors'][:1]}")
    for ph in result["load"]:
        if not ph.get("events"):
            print(f"N={ph['sessions']}: no events ({ph.get('open_errors') or ph.get('click_errors')})")
            continue
        if ph["opened"] < ph["sessions"]:
            print(f"N={ph['sessions']}: only {ph['opened']} sessions opened: {ph['open_errors'][:1]}")
        rtt, cpu = ph["rtt_ms"], ph["server_cpu_us_per_event"]
        p99_verdict = verdict(rtt["p99"], TARGETS["p99_ms_at_50"]) if ph["sessions"] == 50 else "info"
        print(f"N={ph['sessions']:<4} procs={ph['procs']}  {ph['events_per_s']:8.0f} events/s"
              f"  rtt p50 {rtt['p50']:.2f} ms  p99 {rtt['p99']:.2f} ms (target <= 15 ms at N=50: {p99_verdict})"
              f"  server CPU {_num(cpu, '.0f')} us/event (target <= 250: {verdict(cpu, TARGETS['server_cpu_us_per_event'])})"
              f"  CPU util: server {ph['server_cpu_util']:.2f} client {ph['client_cpu_util']:.2f}"
              f" other {ph.get('other_cpu_util', 0):.2f}"
              + (f"  errors {ph['click_errors']}" if ph["click_errors"] else ""))
        prof = ph.get("profile")
        if prof and "vango_pct" in prof:
            print(f"  profile ({prof['samples']} samples, {prof['path']})")
            print("  by innermost vango_mp function (incl. what it called):")
            for frame_name, pct in prof["vango_pct"][:10]:
                print(f"    {pct:5.1f}%  {frame_name}")
            print("  by innermost frame:")
            for frame_name, pct in prof["self_pct"][:6]:
                print(f"    {pct:5.1f}%  {frame_name}")


def _num(value: float | None, fmt: str) -> str:
    return "?" if value is None else format(value, fmt)


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def result_header(name: str) -> dict[str, Any]:
    """What every bench result starts with: its name, when it ran, and on what host."""
    return {
        "name": name, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }


def write_result(result: dict[str, Any], name: str, results_dir: Path = RESULTS) -> Path:
    """Write ``result`` as JSON to ``<results_dir>/<name>-<stamp>.json``; that path."""
    results_dir.mkdir(parents=True, exist_ok=True)
    out = results_dir / f"{name}-{_stamp()}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    return out


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python bench/load.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="benchmark a running server (127.0.0.1 only) instead of starting one")
    p.add_argument("--server-pid", type=int, help="with --url: the server's top PID (default: found by port)")
    p.add_argument("--server-cmd", help="command that starts the server (--bind is appended); "
                                        "default: vango-mp --workers 1")
    p.add_argument("--sessions", default="1,50", help="comma-separated N for the load phases (default 1,50)")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each load phase (default 10)")
    p.add_argument("--max-clicks", type=int, default=1_000_000, help="clicks per session at most")
    p.add_argument("--procs", default="auto", help="client processes (default: 1 per 100 sessions, "
                                                   "at most CPUs - 1)")
    p.add_argument("--idle-sessions", type=int, default=500, help="N of the idle memory phase (0 skips it)")
    p.add_argument("--settle", type=float, default=1.0, help="seconds to wait before sampling memory")
    p.add_argument("--path", default="/counter")
    p.add_argument("--selector", default="#inc")
    p.add_argument("--no-compression", action="store_true",
                   help="load phases: do not offer permessage-deflate (the idle phase always offers it)")
    p.add_argument("--profile", action="store_true", help="py-spy the server during each load phase")
    p.add_argument("--name", default="load", help="results file prefix")
    args = p.parse_args(argv)
    args.session_counts = [int(x) for x in str(args.sessions).split(",") if x.strip()]
    if not args.session_counts or min(args.session_counts) < 1 or args.seconds <= 0 or args.seconds > 600:
        p.error("--sessions must be positive integers, --seconds in (0, 600]")
    return args


def procs_for(sessions: int, spec: str) -> int:
    if spec != "auto":
        return max(1, min(int(spec), sessions))
    cpus = os.cpu_count() or 1
    return max(1, min(max(1, cpus - 1), math.ceil(sessions / 100)))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.url:
        pid = args.server_pid or find_listener(check_local(args.url))
        server = Server(args.url.rstrip("/"), pid, cmd=["(external)", args.url])
        if pid is None:
            print("server PID unknown (pass --server-pid): no CPU or memory figures", flush=True)
    else:
        server = start_server(server_command(args.server_cmd))
    result: dict[str, Any] = {
        **result_header(args.name),
        "server": {"url": server.url, "cmd": " ".join(server.cmd), "pid": server.pid},
        "args": {k: v for k, v in vars(args).items() if k != "session_counts"},
        "targets": TARGETS, "load": [],
    }
    try:
        print(f"server at {server.url} (pid {server.pid})", flush=True)
        result["frame"] = asyncio.run(probe_frame(server.url, args.path, args.selector))
        if args.idle_sessions and server.known:
            print(f"idle memory phase: {args.idle_sessions} sessions ...", flush=True)
            result["memory"] = measure_idle_memory(server, args, procs_for(args.idle_sessions, args.procs))
        for n in args.session_counts:
            procs = procs_for(n, args.procs)
            print(f"load phase: N={n} over {procs} client process(es) for {args.seconds:g} s ...", flush=True)
            result["load"].append(run_load(server, args, n, procs))
    finally:
        server.stop()
    result["verdicts"] = verdicts(result)
    out = write_result(result, args.name)
    report(result)
    print(f"\nresults: {out}")
    return 0


def verdicts(result: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"frame_wire_bytes": verdict(result["frame"]["wire_bytes"], TARGETS["frame_wire_bytes"])}
    mem = result.get("memory") or {}
    if "rss_per_session_kib" in mem:
        out["memory_per_session_kib"] = verdict(mem["rss_per_session_kib"], TARGETS["memory_per_session_kib"])
    for ph in result["load"]:
        if ph.get("events"):
            n = ph["sessions"]
            out[f"server_cpu_us_per_event@{n}"] = verdict(ph["server_cpu_us_per_event"],
                                                          TARGETS["server_cpu_us_per_event"])
            if n == 50:
                out["p99_ms_at_50"] = verdict(ph["rtt_ms"]["p99"], TARGETS["p99_ms_at_50"])
    return out


if __name__ == "__main__":
    sys.exit(main())
