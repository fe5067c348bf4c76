"""The status page's parts without a server: the history ring, events/s, sparkline scaling, a worker row."""

from __future__ import annotations

from typing import Any

from vango_mp import metrics
from vango_mp.observability.report import History, worker_report
from vango_mp.observability.status_page import SPARK_H, SPARK_W, points, worker_row
from vango_mp.vdom.html import render_html


def fake_health(attached: int = 2, detached: int = 1, rss: int = 50 << 20) -> dict[str, Any]:
    return {"sessions": {"attached": attached, "detached": detached, "cold": 0}, "rss_bytes": rss,
            "pressure": "none", "memory": {"share": 100 << 20, "soft": 80 << 20, "hard": 90 << 20,
                                           "critical": 95 << 20, "refusing": False}}


def test_history_keeps_ten_minutes_and_measures_events_per_second() -> None:
    now = [1000.0]
    hist = History(lambda: fake_health(), every=5.0, samples=120, clock=lambda: now[0])
    for _ in range(130):
        now[0] += 5.0
        metrics.inc("vango_events_total", 10)  # 10 events per 5 s
        hist.sample()
    assert len(hist.points) == 120  # the oldest fell off: ten minutes at 5 s
    wire = hist.wire()
    assert wire[0][0] == 595.0 and wire[-1][0] == 0.0 and wire[-1][1:] == [50 << 20, 3]
    assert hist.events_per_s == 2.0


def test_points_fit_the_box_and_clip_above_the_top() -> None:
    pts = [tuple(map(float, p.split(","))) for p in points([0, 50, 100, 200], 100).split()]
    assert pts[0] == (0.0, SPARK_H - 1) and pts[-1][0] == SPARK_W
    assert pts[2][1] == pts[3][1] == 1.0  # 100 and 200 both at the top edge
    assert points([], 1) == ""


def test_worker_row_names_its_worker_and_shows_limits() -> None:
    hist = History(lambda: fake_health(), every=5.0)
    hist.sample()
    row = {**worker_report(3, fake_health(), hist), "generation": 2}
    html = render_html(worker_row(row))
    assert 'data-worker="3"' in html and "hard 90 MiB" in html and "gen 2" in html
    assert html.count("<polyline") == 2
