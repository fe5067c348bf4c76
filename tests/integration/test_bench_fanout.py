"""bench/fanout.py at tiny scale: shared and individual runs, every session one frame per write, figures written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(180)


def test_fanout_compares_shared_and_individual_rendering(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "fanout.py"), "--sessions", "40", "--writes", "3",
                           "--compare", "--results-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=150, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (found,) = tmp_path.glob("fanout-*.json")
    shared, individual = json.loads(found.read_text())["runs"]
    assert (shared["shared"], individual["shared"]) == (True, False)
    for run in (shared, individual):
        assert run["sessions"] == 40 and len(run["cpu_us_per_write"]) == 3 and run["cpu_us_per_session"] > 0
        assert run["distinct_last_frames"] == 1  # every session shows the same count
    assert shared["last_frame_objects"] == 1 and individual["last_frame_objects"] == 40  # one encoding, shared
    stats = shared["sharing"]
    assert stats["replayed"] >= 3 * 39 and stats["cloned"] == 0 and individual["sharing"]["replayed"] == 0
