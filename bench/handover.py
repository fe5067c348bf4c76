"""Hand-over throughput between two workers, and the pause a recycled worker's attached sessions see.

Starts ``vango-mp --workers 2 --app tests.apps.bigapp:app`` with
``--max-worker-rss`` (owned memory) at ``--limit-mib``, then per round:

1. fills slot 0's worker with ``--sessions`` sessions of ``--kib`` KiB of
   random state each (round 1; later rounds recycle whatever the new slot-0
   worker holds by then), ``--attached`` of them attached and clicking
   ``#inc`` every ``--gap-ms``, the rest detached;
2. gets that worker recycled the way a leak would: ``#ballast`` clicks grow
   its non-session memory past the limit; the supervisor starts its
   successor, then SIGTERMs it, and it deposits every session with the
   successor in pieces of at most 4 MiB;
3. measures, from the server's log, the hand-over from the supervisor's
   "slot 0 now served by pid" line (the SIGTERM follows at once) to the old
   worker's "handed over N of N sessions" line: MiB/s (random state bytes
   held on the slot, which is what the sealed blobs weigh) and sessions/s,
   plus the pieces the successor took and the time to the old worker's exit;
4. and, per attached session, the *pause*: from its socket's close (1001)
   to its first confirmed click after the resume (reconnect with backoff as
   in bench/handover_driver.py: 50 ms doubling, not the browser's 1 s).

Every session is then resumed and checked (state digest, count: each click
applied once or, unanswered, not at all). Prints the figures and writes
them as JSON to ``bench/results/handover-<timestamp>.json``, with the CPU
the host spent on other processes meanwhile (``/proc/stat``): on a small host
the figures are only comparable between quiet runs. Exit status 1 when a
session was lost or the server logged a lost session.

    python bench/handover.py                       # 172 x 256 KiB (43 MiB), 48 attached, 2 rounds
    python bench/handover.py --sessions 340 --rounds 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from bench.handover_driver import (  # noqa: E402
    MIB, Big, Crowd, alive, first, forbidden_lines, log_lines, percentile, wait_until,
)
from tests.apps.bigapp import BALLAST_MIB  # noqa: E402
from tests.conftest import Server, start_server  # noqa: E402

RESULTS = BENCH / "results"
ENV = {
    "VANGO_MAX_SESSIONS_PER_IP": "0",
    "VANGO_MAX_CONCURRENT_HANDSHAKES_PER_IP": "0",
    "VANGO_COLD_AFTER": "0",
    "VANGO_WORKER_HEARTBEAT": "250ms",
    "VANGO_MEMORY_RECYCLE_AFTER": "1s",
    "VANGO_RECYCLE_MIN_INTERVAL": "0",  # rounds recycle the same slot back to back
}
SLOT = 0


async def run(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    crowd = Crowd(server.url, concurrency=8, timeout=15.0)
    deadline = time.monotonic() + args.max_seconds
    rounds = []
    async with crowd:
        big, _ = await crowd.populate(SLOT, args.sessions, path=f"/big/{args.kib}", deadline=deadline)
        attached = big[:args.attached]
        for b in crowd.sessions:
            if b not in attached:
                await crowd.detach(b)
        for i in range(1, args.rounds + 1):
            rounds.append(await one_round(server, crowd, attached, i, args, deadline))
            print(_round_line(rounds[-1]), flush=True)
        t0 = time.monotonic()
        await crowd.verify(crowd.sessions, deadline)
        verify_s = time.monotonic() - t0
    return {"rounds": rounds, "crowd": crowd, "verify_s": round(verify_s, 2)}


async def one_round(server: Server, crowd: Crowd, attached: list[Big], i: int, args: argparse.Namespace,
                    deadline: float) -> dict[str, Any]:
    old_pid = server.per_worker("pid", 2)[SLOT]
    # What the slot holds, as the clients know it (a session resumed on the other slot last round
    # stays there: later rounds recycle fewer attached sessions).
    on_slot = [b for b in crowd.sessions if b.worker == SLOT and not b.failure]
    held = {"sessions": len(on_slot), "state_mib": round(sum(b.kib for b in on_slot) / 1024, 1),
            "attached": sum(1 for b in attached if b.worker == SLOT)}
    ballast = await crowd.open_on(SLOT, deadline=deadline)
    owned = server.per_worker("memory", 2)[SLOT]["owned"]
    stop = asyncio.Event()
    gap = args.gap_ms / 1000
    tasks = [asyncio.create_task(crowd.clicker(b, stop, gap=gap, deadline=deadline)) for b in attached]
    pauses_before = {id(b): len(b.pauses) for b in attached}
    closes_before = {id(b): len(b.closes) for b in attached}
    try:
        await wait_until(lambda: all(b.confirmed for b in attached), 30, "every clicker clicking")
        for _ in range(max(1, math.ceil((args.limit_mib * MIB - owned + 16 * MIB) / (BALLAST_MIB * MIB)))):
            await ballast.page.click("#ballast", timeout=crowd.timeout)
        await wait_until(lambda: re.search(rf"recycling worker pid {old_pid}\b", server.output()), 30,
                         f"worker pid {old_pid} picked for recycling")
        await wait_until(lambda: not alive(old_pid), 60, f"worker pid {old_pid} gone")
        victims = [b for b in attached if any(code == 1001 for code, _ in b.closes[closes_before[id(b)]:])]
        await wait_until(lambda: all(len(b.pauses) > pauses_before[id(b)] or b.failure for b in victims), 60,
                         "every attached session of the recycled worker clicking again")
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    lines = log_lines(server.output())
    term = [line for line in lines if "now served by pid" in line.message][-1]  # this round's SIGTERM
    handed = first(lines, r"handed over (\d+) of (\d+) sessions", pid=old_pid)
    exited = first(lines, rf"worker pid {old_pid} \(slot {SLOT}\) exited")
    assert handed is not None and exited is not None, "no hand-over line"
    placed, total = map(int, re.search(r"handed over (\d+) of (\d+)", handed.message).groups())  # type: ignore[union-attr]
    new_pid = int(re.search(r"now served by pid (\d+)", term.message).group(1))  # type: ignore[union-attr]
    pieces = [line for line in lines if line.pid == new_pid and line.message.startswith("took ")
              and term.at <= line.at <= handed.at + 0.01]
    seconds = max(handed.at - term.at, 0.001)
    pauses = [p for b in attached for p in b.pauses[pauses_before[id(b)]:]]
    return {
        "round": i, "old_pid": old_pid, "new_pid": new_pid, "held": held, "sessions_handed": total,
        "sessions_placed": placed, "pieces": len(pieces), "handover_s": round(seconds, 3),
        "exit_s": round(exited.at - term.at, 3),
        "mib_per_s": round(held["state_mib"] / seconds, 1), "sessions_per_s": round(total / seconds, 1),
        "pause_samples": len(pauses), "pause_ms": _summary(pauses),
        "owned_before_ballast_mib": owned // MIB,
    }


def host_busy() -> float:
    """CPU seconds the whole host has been busy (``/proc/stat``: all but idle and iowait)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def our_cpu(server_pid: int) -> float:
    """CPU seconds of this process and the server's tree (reaped workers count in their parent's children_*)."""
    import psutil

    own = os.times()
    total = own.user + own.system
    try:
        sup = psutil.Process(server_pid)
        t = sup.cpu_times()
        total += t.user + t.system + t.children_user + t.children_system
        for child in sup.children(recursive=True):
            try:
                c = child.cpu_times()
                total += c.user + c.system
            except psutil.NoSuchProcess:
                pass
    except psutil.NoSuchProcess:
        pass
    return total


def _summary(values: list[float]) -> dict[str, float | None]:
    ms = [v * 1000 for v in values]
    return {"p50": _r(percentile(ms, 50)), "p90": _r(percentile(ms, 90)), "p99": _r(percentile(ms, 99)),
            "max": _r(max(ms, default=None)), "mean": _r(statistics.fmean(ms) if ms else None)}


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def _round_line(r: dict[str, Any]) -> str:
    p = r["pause_ms"]
    return (f"round {r['round']}: {r['sessions_handed']} sessions ({r['held']['state_mib']:.1f} MiB of state, "
            f"{r['held']['attached']} attached) handed over in {r['handover_s'] * 1000:.0f} ms, {r['pieces']} pieces"
            f" -> {r['mib_per_s']} MiB/s, {r['sessions_per_s']} sessions/s; old worker exited after "
            f"{r['exit_s'] * 1000:.0f} ms; pause p50 {p['p50']} ms, p99 {p['p99']} ms, max {p['max']} ms "
            f"({r['pause_samples']} samples)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=172, help="big sessions on the recycled worker")
    parser.add_argument("--kib", type=int, default=256, help="random state per session (KiB)")
    parser.add_argument("--attached", type=int, default=48, help="of them attached and clicking")
    parser.add_argument("--gap-ms", type=float, default=20.0, help="pause between one session's clicks")
    parser.add_argument("--rounds", type=int, default=2, help="recycles of slot 0, one after the other")
    parser.add_argument("--limit-mib", type=int, default=0,
                        help="--max-worker-rss in MiB (default: sessions' state x 1.5 + 64)")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="the whole run's deadline")
    args = parser.parse_args(argv)
    args.attached = min(args.attached, args.sessions)
    if not args.limit_mib:
        args.limit_mib = int(args.sessions * args.kib / 1024 * 1.5) + 64
    server = start_server("--workers", "2", "--app", "tests.apps.bigapp:app",
                          "--max-worker-rss", str(args.limit_mib * MIB), "--memory-interval", "100ms", env=ENV)
    started = time.monotonic()
    busy0, ours0 = host_busy(), our_cpu(server.pid)
    try:
        out = asyncio.run(asyncio.wait_for(run(server, args), args.max_seconds))
        output = server.output()
        wall = time.monotonic() - started
        busy, ours = host_busy() - busy0, our_cpu(server.pid) - ours0
    finally:
        server.stop()
    cpu = {"host_busy_cores": round(busy / wall, 2), "bench_and_server_cores": round(ours / wall, 2),
           "other_cores": round(max(0.0, busy - ours) / wall, 2), "host_cores": os.cpu_count()}
    crowd: Crowd = out.pop("crowd")
    rounds = out["rounds"]
    pauses = [p for b in crowd.sessions for p in b.pauses]
    result = {
        "name": "handover", "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "args": vars(args),
        "rounds": rounds, "pause_ms_all_rounds": _summary(pauses),
        "sessions": len(crowd.sessions), "failures": crowd.failures(),
        "close_codes": {str(k): v for k, v in crowd.close_codes().items()},
        "clicks_confirmed": sum(b.confirmed for b in crowd.sessions),
        "clicks_replayed_on_resume": sum(b.replayed for b in crowd.sessions),
        "clicks_unanswered_not_applied": sum(b.sent - b.count for b in crowd.sessions),
        "forbidden_log_lines": forbidden_lines(output)[:20],
        "verify_s": out["verify_s"], "wall_s": round(time.monotonic() - started, 1), "cpu": cpu,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"handover-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    mib = [r["mib_per_s"] for r in rounds]
    sps = [r["sessions_per_s"] for r in rounds]
    p = result["pause_ms_all_rounds"]
    print(f"\nhand-over throughput: {statistics.median(mib):.1f} MiB/s, {statistics.median(sps):.1f} sessions/s "
          f"(median of {len(rounds)} rounds)")
    print(f"pause of attached sessions: p50 {p['p50']} ms, p99 {p['p99']} ms, max {p['max']} ms "
          f"({len(pauses)} samples)")
    print(f"sessions {result['sessions']}, failures {len(result['failures'])}, close codes {result['close_codes']}, "
          f"forbidden log lines {len(result['forbidden_log_lines'])}")
    print(f"CPU: host busy {cpu['host_busy_cores']} of {cpu['host_cores']} cores, this bench and its server "
          f"{cpu['bench_and_server_cores']}, other processes {cpu['other_cores']}"
          + (" -- others shared the cores: not comparable with a quiet run" if cpu["other_cores"] > 0.2 else ""))
    print(f"results: {path}")
    return 1 if result["failures"] or result["forbidden_log_lines"] else 0


if __name__ == "__main__":
    sys.exit(main())
