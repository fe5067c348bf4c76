"""The dev loop, measured: edit -> new page with ``--dev --reload``, and a ``--dev`` stop with keep-alives.

    python bench/devloop.py                 # 1 and 2 workers, 10 edits each
    python bench/devloop.py --workers 2 --edits 20

For each edit of a temporary app module it times the moment the file is
written to the first GET / that serves the new text (polled every 10 ms), and
for each stop the SIGTERM to the supervisor's exit with six idle keep-alive
HTTP connections open, with and without ``--dev``. Prints the figures and
writes ``bench/results/devloop-<timestamp>.json``. Talks only to 127.0.0.1
and stops only the server it started.
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from tests.conftest import start_server  # noqa: E402  (the same launcher as the tests)

APP = '''
from vango_mp import App, component, h


@component
def Page():
    return h.p("{text}", id="ver")


app = App({{"/": Page}})
'''


def page(url: str) -> bytes:
    with urllib.request.urlopen(url + "/", timeout=5) as resp:
        return resp.read()


def reload_times(workers: int, edits: int) -> list[float]:
    """Seconds from writing the file to the first page with the new text, per edit."""
    with tempfile.TemporaryDirectory() as tmp:
        module = Path(tmp) / "devloop_app.py"
        module.write_text(APP.format(text="edit 0"))
        server = start_server("--dev", "--reload", "--workers", str(workers), "--app", "devloop_app:app",
                              cwd=Path(tmp))
        times = []
        try:
            for i in range(1, edits + 1):
                time.sleep(0.3)  # a distinct mtime, and a settled server
                module.write_text(APP.format(text=f"edit {i}"))
                start, want = time.monotonic(), f"edit {i}<".encode()
                while want not in page(server.url):
                    if time.monotonic() - start > 20:
                        raise SystemExit(f"edit {i} not served in 20 s:\n{server.output()[-2000:]}")
                    time.sleep(0.01)
                times.append(time.monotonic() - start)
        finally:
            server.stop()
    return times


def stop_time(dev: bool, workers: int) -> float:
    server = start_server(*(["--dev"] if dev else []), "--workers", str(workers))
    conns = []
    try:
        for _ in range(6):
            conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
            conn.request("GET", "/counter")
            conn.getresponse().read()
            conns.append(conn)
        start = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(60)
        return time.monotonic() - start
    finally:
        for conn in conns:
            conn.close()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--edits", type=int, default=10)
    args = parser.parse_args()
    report: dict[str, object] = {"reload": {}, "stop": {}}
    for workers in [int(w) for w in args.workers.split(",")]:
        times = reload_times(workers, args.edits)
        row = {"p50_s": statistics.median(times), "max_s": max(times), "runs": len(times)}
        report["reload"][str(workers)] = row  # type: ignore[index]
        print(f"--reload, {workers} worker(s): edit -> new page p50 {row['p50_s']:.3f} s, max {row['max_s']:.3f} s")
        for dev in (True, False):
            took = stop_time(dev, workers)
            report["stop"][f"{'dev' if dev else 'prod'}-{workers}"] = took  # type: ignore[index]
            print(f"stop with 6 keep-alive connections, {'--dev' if dev else 'no --dev'}, {workers} worker(s): "
                  f"{took:.3f} s")
    out = BENCH / "results" / f"devloop-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
