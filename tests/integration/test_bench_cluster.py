"""bench/cluster.py at tiny scale: its three parts run against servers it starts, and write what they measured."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(240)


def test_scaling_globals_and_bus_parts_run_and_count(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "cluster.py"), "--seconds", "1", "--warmup", "0.2",
         "--workers-list", "1,2", "--sessions-per-worker", "4", "--samples", "20", "--warmup-samples", "2",
         "--global-background", "0", "--rounds", "1", "--bus-sessions", "4", "--results-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=200, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (found,) = tmp_path.glob("cluster-*.json")
    result = json.loads(found.read_text())
    rows = result["scaling"]["rows"]
    assert [r["workers"] for r in rows] == [1, 2]
    for row in rows:
        assert row["opened"] == row["sessions"] == 4 * row["workers"] and not row["click_errors"]
        assert row["events"] > 0 and row["server_cpu_us_per_event"] > 0
    assert sum(rows[1]["sessions_per_worker"].values()) == 8
    (phase,) = result["globals"]["phases"]
    assert phase["samples"] == 20 and phase["errors"] == {} and len(phase["workers_used"]) == 2
    assert phase["final_counts"][0] == phase["final_counts"][1]  # both workers' sessions show the last write
    assert 0 < phase["remote_ms"]["p50"] <= phase["remote_ms"]["max"]
    runs = result["bus"]["runs"]
    assert sorted(r["kind"] for r in runs) == ["bus", "lone"]
    assert all(r["events"] > 0 for r in runs) and result["bus"]["diff_pct"] is not None
