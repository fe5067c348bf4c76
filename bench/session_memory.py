"""Memory per detached session, hot vs cold (the cold tier keeps only the sealed blob).

In-process and allocator-exact: N counter sessions are mounted and detached
exactly as a worker does it, then frozen into the cold tier; ``tracemalloc``
counts the Python heap each state holds per session (RSS cannot show a
shrink: CPython keeps freed arenas). Prints both figures, their ratio and the
target (cold ≤ 2 KiB), and writes them as JSON under bench/results/.

    python bench/session_memory.py --sessions 2000 [--path /todos]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import secrets
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vango_mp.demo import app  # noqa: E402
from vango_mp.protocol import ClientEvent  # noqa: E402
from vango_mp.settings import Settings  # noqa: E402
from vango_mp.worker import Worker  # noqa: E402

TARGET_COLD_BYTES = 2048


class NullConn:
    """Stands in for the socket: frames are dropped, closes ignored."""

    def send(self, data: bytes) -> None:
        pass

    def close(self, code: int, reason: str) -> None:
        pass

    def pending_output(self) -> int:
        return 0


def heap() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def measure(n: int, path: str, clicks: int) -> dict[str, float]:
    owner = Worker(Settings(max_detached=0, cold_after=1.0), 0, app, secrets.token_bytes(32)).owner
    tracemalloc.start()
    base = heap()
    sessions = []
    for i in range(n):
        ip = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
        await owner.admit(ip, "bench")
        session = owner.open(path, ip)
        owner.attach(session, NullConn())
        sessions.append(session)
    inc = _inc_hid(sessions[0]) if path == "/counter" else None
    for session in sessions:
        for c in range(clicks if inc is not None else 0):
            session.queue_event(ClientEvent(c + 1, inc, "click", None))  # type: ignore[arg-type]
    await asyncio.sleep(0)  # let each session's task run its queued clicks
    while any(s._events for s in sessions):
        await asyncio.sleep(0)
    for session in sessions:
        owner.detach(session)
    hot = heap() - base
    del sessions
    frozen = owner.chill(now=time.monotonic() + 10)
    await asyncio.sleep(0)  # the closed sessions' tasks finish
    cold = heap() - base
    tracemalloc.stop()
    assert frozen == n and owner.cold_count == n
    return {"sessions": n, "hot_bytes_per_session": hot / n, "cold_bytes_per_session": cold / n}


def _inc_hid(session: object) -> int:
    html = session.root.html()  # type: ignore[attr-defined]
    return int(html.split('id="inc" data-hid="')[1].split('"')[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--path", default="/counter")
    parser.add_argument("--clicks", type=int, default=3, help="clicks per counter session before detaching")
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.sessions, args.path, args.clicks))
    hot, cold = result["hot_bytes_per_session"], result["cold_bytes_per_session"]
    verdict = "PASS" if cold <= TARGET_COLD_BYTES else "MISS"
    print(f"detached sessions:        {args.sessions} on {args.path}")
    print(f"hot  bytes per session:   {hot:9.0f}  ({hot / 1024:.1f} KiB)")
    print(f"cold bytes per session:   {cold:9.0f}  ({cold / 1024:.2f} KiB)  target <= 2 KiB: {verdict}")
    print(f"cold / hot:               {cold / hot:9.3f}")
    out = ROOT / "bench" / "results" / f"session-memory-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**result, "path": args.path, "target_cold_bytes": TARGET_COLD_BYTES}, indent=2))
    print(f"figures written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
