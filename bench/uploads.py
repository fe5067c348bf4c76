"""Uploads into a live session: throughput, progress reports and worker memory while the body streams.

    python bench/uploads.py                 # 20 and 100 MB, 3 runs each, 2 workers
    python bench/uploads.py --sizes 20,200 --runs 5

Starts ``vango-mp --workers 2 --app bench.uploads_app:app`` on 127.0.0.1
(the demo's login and a page whose input takes up to 1 GiB), logs in, opens
a live session and POSTs random bytes to ``/_vango/upload`` in 64 KiB writes, sampling the
RSS of every worker once per MiB. Prints MB/s, the progress frames the
session received and the largest RSS growth of any worker, and writes
``bench/results/uploads-<timestamp>.json``. Stops only the server it started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

import psutil  # noqa: E402

from tests.conftest import start_server  # noqa: E402
from tests.integration.accounts import attrs, hid_of, login, open_live, stream_upload, upload_headers  # noqa: E402
from vango_mp import protocol  # noqa: E402

MB = 1024 * 1024
CHUNK = 64 * 1024


async def one(srv: Any, cookie: str, size: int) -> dict[str, Any]:
    live = await open_live(srv, "/bench-upload", cookie)
    workers = [p for p in psutil.Process(srv.pid).children() if p.is_running()]
    before = {p.pid: p.memory_info().rss for p in workers}
    peak = dict(before)

    def sample(i: int) -> None:
        if i % (MB // CHUNK) == 0:
            for p in workers:
                peak[p.pid] = max(peak[p.pid], p.memory_info().rss)

    block = os.urandom(CHUNK)
    chunks = (block for _ in range(size // CHUNK))
    headers = upload_headers(live, [("bench.bin", "application/octet-stream", size)])
    path = f"/_vango/upload?hid={hid_of(live.page.html, 'file')}"
    started = time.perf_counter()
    status, body = await asyncio.to_thread(stream_upload, srv, path, headers, chunks, size, sample)
    seconds = time.perf_counter() - started
    assert status == 200, body
    frames = await live.frames_until(lambda f: f[0] == protocol.PATCHES and f"stored {size}" in json.dumps(f))
    live.ws.close()
    return {"mb": size // MB, "seconds": round(seconds, 3), "mb_per_s": round(size / MB / seconds, 1),
            "progress_frames": len(attrs(frames, "value")),
            "max_rss_growth_kib": max(peak[p] - before[p] for p in before) // 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20,100", help="MB per upload, comma-separated")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) * MB for s in args.sizes.split(",")]
    srv = start_server("--workers", "2", "--app", "bench.uploads_app:app", env={"PYTHONPATH": str(BENCH.parent)})
    try:
        cookie = login(srv, "alice", "wonderland")[0]
        rows = [asyncio.run(one(srv, cookie, size)) for size in sizes for _ in range(args.runs)]
    finally:
        srv.stop()
    for row in rows:
        print(f"{row['mb']:>5} MB  {row['seconds']:>7.3f} s  {row['mb_per_s']:>7.1f} MB/s  "
              f"{row['progress_frames']:>3} progress frames  max worker RSS growth {row['max_rss_growth_kib']} KiB")
    out = BENCH / "results" / f"uploads-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"runs": rows, "cpus": os.cpu_count()}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
