"""Where the memory of an attached session goes: a tracemalloc diff per session.

Starts one worker in a child process with tracemalloc on (so the RSS is
inflated; the per-line Python figures are exact), warms it up, snapshots,
attaches N idle sessions (permessage-deflate offered, as browsers do),
snapshots again and prints the allocation growth per session by source line
(``--group filename`` or ``traceback`` for other views). Python-level bytes per session plus the
allocator's slack make up the RSS figure bench/load.py reports.

    python bench/memprofile.py --sessions 300 [--path /counter] [--top 25]

Every loop is bounded; the server listens on 127.0.0.1 and is stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
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

FRAMES = 12  # traceback depth kept by tracemalloc


def serve(bind_file: str, snap_dir: str, app: str) -> None:
    """Child: one worker with tracemalloc; SIGUSR2 dumps a snapshot (after a full collection)."""
    from vango_mp.appload import load_app
    from vango_mp.listener import create_listener
    from vango_mp.settings import Settings
    from vango_mp.worker import serve as run_worker

    tracemalloc.start(FRAMES)
    count = 0

    def dump(signum: int, frame: Any) -> None:
        nonlocal count
        gc.collect()
        count += 1
        tracemalloc.take_snapshot().dump(os.path.join(snap_dir, f"snap-{count}"))
        Path(snap_dir, f"done-{count}").touch()

    signal.signal(signal.SIGUSR2, dump)
    settings = Settings(workers=1, max_sessions_per_ip=0, max_concurrent_handshakes_per_ip=0)
    sock = create_listener("127.0.0.1", 0)
    Path(bind_file).write_text(str(sock.getsockname()[1]))
    run_worker(settings, 0, sock, secret=secrets.token_bytes(32), app=load_app(app))


def snapshot(proc: subprocess.Popen[bytes], snap_dir: str, k: int) -> tracemalloc.Snapshot:
    proc.send_signal(signal.SIGUSR2)
    done = Path(snap_dir, f"done-{k}")
    deadline = time.monotonic() + 60
    while not done.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("the server did not write its snapshot")
        time.sleep(0.05)
    return tracemalloc.Snapshot.load(os.path.join(snap_dir, f"snap-{k}"))


async def attach(url: str, path: str, n: int, pages: list[Any], client: TestClient) -> None:
    gate = asyncio.Semaphore(32)

    async def one() -> None:
        async with gate:
            pages.append(await client.open(path))

    await asyncio.gather(*(one() for _ in range(n)))


async def drive(proc: subprocess.Popen[bytes], url: str, args: argparse.Namespace, snap_dir: str) -> None:
    ps = psutil.Process(proc.pid)
    async with TestClient(url, compression=True, timeout=10) as client:
        pages: list[Any] = []
        await attach(url, args.path, args.warmup, pages, client)  # imports, arenas, caches
        await asyncio.sleep(0.5)
        rss0 = ps.memory_info().rss
        before = await asyncio.to_thread(snapshot, proc, snap_dir, 1)
        held = len(pages)
        await attach(url, args.path, args.sessions, pages, client)
        await asyncio.sleep(args.settle)
        after = await asyncio.to_thread(snapshot, proc, snap_dir, 2)
        rss1 = ps.memory_info().rss
        report(before, after, len(pages) - held, rss1 - rss0, args)


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
    p.add_argument("--group", choices=("lineno", "filename", "traceback"), default="lineno",
                   help="group growth by source line (default), file, or whole traceback")
    p.add_argument("--serve", nargs=2, metavar=("BIND_FILE", "SNAP_DIR"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        serve(args.serve[0], args.serve[1], args.app)
        return 0
    if not 1 <= args.sessions <= 20000:
        p.error("--sessions must be in 1..20000")
    with tempfile.TemporaryDirectory(prefix="vango-memprofile-") as tmp:
        bind_file = os.path.join(tmp, "port")
        proc = subprocess.Popen([sys.executable, __file__, "--app", args.app, "--serve", bind_file, tmp],
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
