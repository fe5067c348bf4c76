"""``bench/report.py`` at its smallest scale writes a Markdown report with JSON and PNG plots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.timeout(300)


def test_short_report_has_figures_json_and_plots(tmp_path: Path) -> None:
    out = tmp_path / "report"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "report.py"), "--scale", "0.2", "--skip",
                           "scaling,soak", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((out / "report.json").read_text())
    click = result["latency"]["client_ms"]["click"]
    assert click["n"] == result["latency"]["sessions"] * result["latency"]["clicks_per_session"] and click["p50"] > 0
    cdf = result["latency"]["server_cdf_ms"]["vango_event_latency_seconds"]
    assert cdf and cdf[-1][1] == 1.0 and all(a[1] <= b[1] for a, b in zip(cdf, cdf[1:]))  # a CDF: rises to 1
    assert result["memory"]["kib_per_session"] > 0 and len(result["memory"]["points"]) == 4
    md = (out / "report.md").read_text()
    assert "| click |" in md and "KiB per attached" in md
    for png in ("latency_cdf.png", "memory_per_session.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"]({png})" in md
