"""Where the memory of an attached session goes: a tracemalloc diff per session.

Starts one worker in a child process with tracemalloc on (so the RSS is
inflated; the per-line Python figures are exact), warms it up, snapshots,
attaches N idle sessions (permessage-deflate offered, as browsers do),
snapshots again and prints the allocation growth per session by source line
(``--group filename`` or ``traceback`` for other views), then the growth per
session by object type (the objects the collector tracks, with their dicts:
which owner holds the bytes). Python-level bytes per session plus the
allocator's slack make up the RSS figure bench/load.py reports.

    python bench/memprofile.py --sessions 300 [--path /counter] [--top 25] [--types 25]

Every loop is bounded; the server listens on 127.0.0.1 and is stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vango_mp.testing import TestClient  # noqa: E402

FRAMES = 12  # traceback depth kept by tracemalloc for --group traceback (1 otherwise: much faster)


def type_census() -> dict[str, list[int]]:
    """Every object the collector tracks, by type: [count, bytes]; an instance's ``__dict__`` counts as its own."""
    out: dict[str, list[int]] = {}
    for obj in gc.get_objects():
        t = type(obj)
        name = f"{t.__module__}.{t.__qualname__}" if t.__module__ != "builtins" else t.__qualname__
        row = out.setdefault(name, [0, 0])
        row[0] += 1
        row[1] += sys.getsizeof(obj)
        d = getattr(obj, "__dict__", None) if not isinstance(obj, type) else None
        if type(d) is dict:
            row[1] += sys.getsizeof(d)
    return out


def serve(bind_file: str, snap_dir: str, app: str, frames: int = FRAMES) -> None:
    """Child: one worker with tracemalloc; SIGUSR2 dumps a snapshot (after a full collection)."""
    from vango_mp.appload import load_app
    from vango_mp.listener import create_listener
    from vango_mp.settings import Settings
    from vango_mp.worker import serve as run_worker

    tracemalloc.start(frames)
    count = 0

    def dump(signum: int, frame: Any) -> None:
        nonlocal count
        gc.collect()
        count += 1
        tracemalloc.take_snapshot().dump(os.path.join(snap_dir, f"snap-{count}"))
        # The census reads every instance's __dict__, which materializes the lazy ones:
        # a forked child does it, so the worker's heap (and the next snapshot) stay as they were.
        pid = os.fork()
        if pid == 0:
            try:
                Path(snap_dir, f"types-{count}.json").write_text(json.dumps(type_census()))
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        Path(snap_dir, f"done-{count}").touch()

    signal.signal(signal.SIGUSR2, dump)
    settings = Settings(workers=1, max_sessions_per_ip=0, max_concurrent_handshakes_per_ip=0)
    sock = create_listener("127.0.0.1", 0)
    Path(bind_file).write_text(str(sock.getsockname()[1]))
    run_worker(settings, 0, sock, secret=secrets.token_bytes(32), app=load_app(app))


def snapshot(proc: subprocess.Popen[bytes], snap_dir: str, k: int) -> tuple[tracemalloc.Snapshot, dict[str, list[int]]]:
    proc.send_signal(signal.SIGUSR2)
    done = Path(snap_dir, f"done-{k}")
    deadline = time.monotonic() + 60
    while not done.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("the server did not write its snapshot")
        time.sleep(0.05)
    types = json.loads(Path(snap_dir, f"types-{k}.json").read_text())
    return tracemalloc.Snapshot.load(os.path.join(snap_dir, f"snap-{k}")), types


async def attach(url: str, path: str, n: int, pages: list[Any], client: TestClient, concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)  # tracemalloc slows the server: few handshakes at once

    async def one() -> None:
        async with gate:
            pages.append(await client.open(path))

    await asyncio.gather(*(one() for _ in range(n)))


async def drive(proc: subprocess.Popen[bytes], url: str, args: argparse.Namespace, snap_dir: str) -> None:
    ps = psutil.Process(proc.pid)
    async with TestClient(url, compression=True, timeout=60) as client:
        pages: list[Any] = []
        await attach(url, args.path, args.warmup, pages, client, args.concurrency)  # imports, arenas, caches
        await asyncio.sleep(0.5)
        rss0 = ps.memory_info().rss
        before = await asyncio.to_thread(snapshot, proc, snap_dir, 1)
        held = len(pages)
        await attach(url, args.path, args.sessions, pages, client, args.concurrency)
        await asyncio.sleep(args.settle)
        after = await asyncio.to_thread(snapshot, proc, snap_dir, 2)
        rss1 = ps.memory_info().rss
        report(before[0], after[0], len(pages) - held, rss1 - rss0, args)
        report_types(before[1], after[1], len(pages) - held, args.types)


def report_types(before: dict[str, list[int]], after: dict[str, list[int]], n: int, top: int) -> None:
    """Growth per session by type (objects the collector tracks; their instance dicts included)."""
    rows = []
    for name, (count, size) in after.items():
        c0, s0 = before.get(name, (0, 0))
        rows.append((size - s0, count - c0, name))
    rows.sort(reverse=True)
    total = sum(r[0] for r in rows)
    print(f"\ntracked objects by type: +{total / n / 1024:.1f} KiB/session "
          f"(getsizeof, instance dicts included; untracked bytes/str and buffers are not in this view)")
    for size, count, name in rows[:top]:
        print(f"  {size / n:8.0f} B  {count / n:6.2f} objs  {name}")


def report(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, n: int, rss_delta: int,
           args: argparse.Namespace) -> None:
    key = args.group
    stats = after.compare_to(before, key)
    total = sum(s.size_diff for s in stats)
    print(f"{n} sessions attached: Python heap +{total / n / 1024:.1f} KiB/session "
          f"(RSS +{rss_delta / n / 1024:.1f} KiB/session, inflated by tracemalloc itself)")
    print(f"top {args.top} by growth per session ({key}):")
    for s in stats[: args.top]:
        where = s.traceback.format(limit=FRAMES if key == "traceback" else 1)
        head = "\n      ".join(w.strip() for w in where) if key == "traceback" else where[0].strip()
        print(f"  {s.size_diff / n:8.0f} B  {s.count_diff / n:6.1f} blocks  {head}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python bench/memprofile.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, default=300)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--settle", type=float, default=1.0)
    p.add_argument("--path", default="/counter")
    p.add_argument("--app", default="vango_mp.demo:app")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--types", type=int, default=25, help="rows of the by-type view")
    p.add_argument("--concurrency", type=int, default=8, help="handshakes in flight (tracemalloc is slow)")
    p.add_argument("--group", choices=("lineno", "filename", "traceback"), default="lineno",
                   help="group growth by source line (default), file, or whole traceback")
    p.add_argument("--serve", nargs=2, metavar=("BIND_FILE", "SNAP_DIR"), help=argparse.SUPPRESS)
    p.add_argument("--frames", type=int, default=FRAMES, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        serve(args.serve[0], args.serve[1], args.app, args.frames)
        return 0
    if not 1 <= args.sessions <= 20000 or not 1 <= args.concurrency <= 256:
        p.error("--sessions must be in 1..20000, --concurrency in 1..256")
    frames = FRAMES if args.group == "traceback" else 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stopped: still stop the server (finally)
    with tempfile.TemporaryDirectory(prefix="vango-memprofile-") as tmp:
        bind_file = os.path.join(tmp, "port")
        proc = subprocess.Popen([sys.executable, __file__, "--app", args.app, "--frames", str(frames),
                                 "--serve", bind_file, tmp],
                                cwd=ROOT, start_new_session=True)
        try:
            deadline = time.monotonic() + 30
            while not (Path(bind_file).exists() and Path(bind_file).read_text()):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("the server did not start")
                time.sleep(0.05)
            asyncio.run(drive(proc, f"http://127.0.0.1:{Path(bind_file).read_text()}", args, tmp))
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
