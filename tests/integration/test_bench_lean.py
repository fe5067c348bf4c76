"""bench/scale.py and bench/baseline.py at tiny scale: they run, count, and write what they measured."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(240)


def run(script: str, *args: str, out: Path) -> dict:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args, "--results-dir", str(out)],
                          capture_output=True, text=True, timeout=200, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (found,) = out.glob("*.json")
    return json.loads(found.read_text())


def test_scale_ramps_idle_sessions_over_source_addresses(tmp_path: Path) -> None:
    result = run("scale.py", "--steps", "20,50", "--procs", "2", "--sources", "4", "--clicks", "3",
                 "--settle", "0.2", "--writes", "3", out=tmp_path)
    first, second = result["steps"]
    assert (first["sessions"], second["sessions"], second["new"]) == (20, 50, 30)
    for step in (first, second):
        assert step["failures"] == {} and step["open_rate_per_s"] > 0
        assert step["source_addresses"] == 4  # peers really bound to 127.0.0.2 .. 127.0.0.5
        assert step["client_rss_per_peer_kib"] is not None
        assert step["rss_per_session_kib"] is not None and step["idle_click"]["p50_ms"] > 0
        write = step["global_write"]
        # Every idle session saw the one global write, and only after it was sent.
        assert (write["reached"], write["missing"]) == (step["sessions"], 0)
        assert 0 < write["p50_ms"] <= write["last_ms"]
        # Three writes: the median stands for the step, the least CPU is kept beside it.
        cpu = sorted(w["server_cpu_s"] for w in step["global_writes"])
        assert len(cpu) == 3 and write["server_cpu_s"] == cpu[1] and step["best_global_write"]["server_cpu_s"] == cpu[0]


def test_baseline_runs_echo_and_vango_on_the_same_client(tmp_path: Path) -> None:
    result = run("baseline.py", "--systems", "echo,vango", "--sessions", "1,3", "--seconds", "0.5",
                 "--idle", "20", "--procs", "1", "--settle", "0.2", out=tmp_path)
    (round_,) = result["rounds"]
    for name in ("echo", "vango"):
        assert round_[name]["idle"]["sessions"] == 20
        for n in ("1", "3"):
            phase = round_[name]["load"][n]
            assert phase["opened"] == int(n) and phase["errors"] == {} and phase["clicks"] > int(n)
    ratios = result["ratios"]["vango/echo"]
    assert ratios["1"]["server_cpu_us_per_click"] is not None and ratios["3"]["clicks_per_s"] > 0
