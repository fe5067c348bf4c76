"""CPU per session of one global write reaching N idle ``/global`` sessions, in process.

N sessions are mounted and attached exactly as a worker does it (frames go
to a counting stand-in for the socket), then the global is written
``--writes`` times; each write is timed until every session has sent its
PATCHES frame. Process CPU time / (writes × N) is the figure issue 13 point 1
targets (≤ 15 µs on the 16-core box; the socket write itself is not in it,
``bench/scale.py`` measures end to end). ``--compare`` runs the same with
shared renders switched off, side by side in one run, and prints the ratio.

    python bench/fanout.py --sessions 10000 --writes 5 --compare
    python bench/fanout.py --instructions --sessions 300 --writes 5   # deterministic, under valgrind (~2 min)
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import json
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vango_mp.demo import app  # noqa: E402
from vango_mp.demo.pages import GLOBAL_COUNT  # noqa: E402
from vango_mp.settings import Settings  # noqa: E402
from vango_mp.vdom import shared  # noqa: E402
from vango_mp.worker import Worker, _tune_gc  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TARGET_US = 15.0


class CountingConn:
    """Stands in for the socket: counts frames (its own and all conns') and keeps the last one."""

    sent = 0  # frames sent to every CountingConn
    waiter: tuple[int, asyncio.Future[None]] | None = None  # (total to reach, future set then)

    def __init__(self) -> None:
        self.frames = 0
        self.last = b""

    def send(self, data: bytes) -> None:
        self.frames += 1
        self.last = data
        CountingConn.sent += 1
        waiter = CountingConn.waiter
        if waiter is not None and CountingConn.sent >= waiter[0] and not waiter[1].done():
            waiter[1].set_result(None)

    def close(self, code: int, reason: str) -> None:
        pass

    def pending_output(self) -> int:
        return 0


async def measure(n: int, writes: int, share: bool) -> dict[str, float]:
    shared.enable(share)
    _tune_gc()  # the collector settings a worker runs with
    owner = Worker(Settings(max_sessions=n + 10, max_sessions_per_ip=n + 10), 0, app, secrets.token_bytes(32)).owner
    conns = []
    for i in range(n):
        ip = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
        await owner.admit(ip, "bench")
        session = owner.open("/global", ip)
        conn = CountingConn()
        owner.attach(session, conn)
        conns.append(conn)
    await asyncio.sleep(0)
    per_write = []
    cpu_per_write = []
    profile = cProfile.Profile() if os.environ.get("FANOUT_PROFILE") else None
    if profile is not None:
        profile.enable()
    cpu0 = time.process_time()
    for w in range(writes):
        start, cpu_start = time.perf_counter(), time.process_time()
        done = asyncio.get_running_loop().create_future()
        CountingConn.waiter = (CountingConn.sent + n, done)
        GLOBAL_COUNT.incr()
        await asyncio.wait_for(done, 600)
        per_write.append(time.perf_counter() - start)
        cpu_per_write.append(time.process_time() - cpu_start)
    cpu = time.process_time() - cpu0
    if profile is not None:
        profile.disable()
        pstats.Stats(profile, stream=sys.stderr).sort_stats("tottime").print_stats(int(os.environ.get("FANOUT_PROFILE_N", "30")))
    assert all(c.frames == writes for c in conns), "a session missed a write, or sent more than one frame"
    distinct = len({c.last for c in conns})
    objects = len({id(c.last) for c in conns})  # sessions in the same state share one encoded frame
    return {"sessions": n, "writes": writes, "shared": share,
            "cpu_us_per_session": cpu / (writes * n) * 1e6,
            "cpu_us_per_write": [round(c / n * 1e6, 1) for c in cpu_per_write],
            "best_cpu_us_per_session": min(cpu_per_write) / n * 1e6,  # the write least disturbed by the machine
            "wall_ms_per_write": sorted(per_write)[len(per_write) // 2] * 1e3,
            "distinct_last_frames": distinct, "last_frame_objects": objects, "sharing": shared.stats()}


def _child(args: argparse.Namespace, mode: str) -> dict[str, Any]:
    """One measurement in a fresh process (the sessions of one run must not see the other's writes)."""
    cmd = [sys.executable, __file__, "--sessions", str(args.sessions), "--writes", str(args.writes), "--one", mode]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def instructions(sessions: int, writes: int) -> dict[str, Any]:
    """Instructions per session per write, counted by valgrind's callgrind: deterministic where CPU time
    on a shared host is not. Two shared runs, of 1 and of 1 + ``writes`` writes; their difference leaves
    out start-up, mounting and the first write."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    counts = []
    for n in (1, 1 + writes):
        cmd = [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__,
               "--sessions", str(sessions), "--writes", str(n), "--one", "shared"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=True,
                              env={**os.environ, "PYTHONHASHSEED": "0"})
        found = re.search(r"Collected : (\d+)", done.stderr)
        if found is None:
            raise SystemExit(f"callgrind reported no count:\n{done.stderr[-2000:]}")
        counts.append(int(found.group(1)))
    return {"sessions": sessions, "writes": writes, "instructions": counts,
            "instructions_per_session_write": (counts[1] - counts[0]) / (writes * sessions)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python bench/fanout.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, default=2000)
    p.add_argument("--writes", type=int, default=5)
    p.add_argument("--compare", action="store_true", help="also run with shared renders off, in this run")
    p.add_argument("--one", choices=["shared", "individual"], help=argparse.SUPPRESS)  # a child run: JSON out
    p.add_argument("--results-dir", default=str(RESULTS), help="where the JSON goes (default bench/results)")
    p.add_argument("--instructions", action="store_true",
                   help="count instructions per session per write under valgrind instead (slow: use ~300 sessions)")
    args = p.parse_args(argv)
    if not 1 <= args.sessions <= 200_000 or not 1 <= args.writes <= 100:
        p.error("--sessions must be 1..200000 and --writes 1..100")
    if args.one:
        print(json.dumps(asyncio.run(measure(args.sessions, args.writes, args.one == "shared"))))
        return 0
    if args.instructions:
        counted = instructions(args.sessions, args.writes)
        print(f"{counted['instructions_per_session_write']:,.0f} instructions per session per write "
              f"({args.sessions} sessions, {args.writes} writes; callgrind)")
        return _write({"instructions": counted}, Path(args.results_dir))
    runs = [_child(args, "shared")]
    if args.compare:
        runs.append(_child(args, "individual"))
    for r in runs:
        verdict = "PASS" if r["cpu_us_per_session"] <= TARGET_US else "MISS"
        print(f"shared={r['shared']!s:5}  {r['sessions']} sessions: {r['cpu_us_per_session']:7.1f} µs CPU per session "
              f"per write (target <= {TARGET_US:g}: {verdict}; best write {r['best_cpu_us_per_session']:.1f}), {r['wall_ms_per_write']:.0f} ms to reach all, "
              f"{r['distinct_last_frames']} distinct last frames in {r['last_frame_objects']} bytes objects")
    if args.compare:
        print(f"individual / shared CPU per session: ×{runs[1]['cpu_us_per_session'] / runs[0]['cpu_us_per_session']:.1f}")
    return _write({"runs": runs, "target_us": TARGET_US}, Path(args.results_dir))


def _write(figures: dict[str, Any], results: Path) -> int:
    results.mkdir(parents=True, exist_ok=True)
    out = results / f"fanout-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(figures, indent=2))
    print(f"figures written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
