"""The components of ``/_vango/status``: pure rendering of the cluster snapshot in :data:`SNAPSHOT`.

The page is a vango-mp app of its own (:data:`status_app`), served over the
same protocol as any other: the feed (:mod:`.status`) sets :data:`SNAPSHOT`
once a second while someone watches, every status session re-renders, and
the browser gets the difference as patches. The page never polls.
"""

from __future__ import annotations

from typing import Any

from ..navigation import use_head
from ..reactive import signal
from ..router import App
from ..vdom import Node, component, h

SNAPSHOT = signal({"workers": [], "bus": {}, "updated": 0.0})
SPARK_W, SPARK_H = 120, 28


def mib(n: float) -> str:
    return f"{n / (1024 * 1024):.0f} MiB"


def ago(seconds: float) -> str:
    s = int(seconds)
    if s < 90:
        return f"{s}s"
    if s < 5400:
        return f"{s // 60}m"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def points(values: list[float], top: float) -> str:
    """SVG polyline points of ``values`` scaled to the sparkline box (``top`` at the upper edge)."""
    if not values:
        return ""
    step = SPARK_W / max(1, len(values) - 1)
    top = top or 1.0
    return " ".join(f"{i * step:.1f},{SPARK_H - 1 - (SPARK_H - 2) * min(v, top) / top:.1f}"
                    for i, v in enumerate(values))


def sparkline(history: list[list[float]], index: int, top: float, label: str, cls: str) -> Node:
    """One inline-SVG sparkline of column ``index`` of the history (RSS or sessions)."""
    values = [p[index] for p in history]
    return h.svg(
        h.title(label),
        h.polyline(points=points(values, top), fill="none", class_="spark-line"),
        width=str(SPARK_W), height=str(SPARK_H), class_=f"spark {cls}", role="img", aria_label=label,
    )


def memory_cell(w: dict[str, Any]) -> Node:
    lim = w["limits"]
    critical = lim.get("critical") or 1
    pct = min(100, round(100 * w["rss"] / critical))
    return h.td(
        h.span(mib(w["rss"]), class_="rss"),
        h.meter(value=str(w["rss"]), min="0", max=str(critical), low=str(lim.get("soft", 0)),
                high=str(lim.get("hard", 0)), optimum="0", title=f"{pct}% of critical"),
        h.small(f"soft {mib(lim.get('soft', 0))} · hard {mib(lim.get('hard', 0))} · critical {mib(critical)}"),
    )


def worker_row(w: dict[str, Any]) -> Node:
    s, hist = w["sessions"], w.get("history", [])
    recycled = f"{ago(w['uptime'])} ago (gen {w['generation']})" if w.get("generation", 1) > 1 else "never"
    top_rss = max([p[1] for p in hist] + [w["limits"].get("critical", 0)]) if hist else 1
    top_sessions = max([p[2] for p in hist] + [1]) if hist else 1
    return h.tr(
        h.th(str(w["slot"]), scope="row"),
        h.td(str(w["pid"]), class_="pid"),
        h.td(ago(w["uptime"]), class_="uptime"),
        h.td(str(s.get("attached", 0)), class_="attached"),
        h.td(str(s.get("detached", 0)), class_="detached"),
        h.td(str(s.get("cold", 0)), class_="cold"),
        memory_cell(w),
        h.td(f"{w['events_per_s']:.1f}", class_="eps"),
        h.td(w["pressure"] + (" (refusing)" if w.get("refusing") else ""), class_=f"pressure p-{w['pressure']}"),
        h.td(recycled, class_="recycle"),
        h.td(sparkline(hist, 1, top_rss, f"RSS, last 10 minutes, worker {w['slot']}", "rss-spark"),
             sparkline(hist, 2, top_sessions, f"Sessions, last 10 minutes, worker {w['slot']}", "sessions-spark")),
        key=str(w["slot"]), data_worker=str(w["slot"]), data_pid=str(w["pid"]),
    )


def reasons(title: str, counts: dict[str, float], ident: str) -> Node:
    rows = [h.li(h.code(reason), f" {int(n)}", key=reason, data_reason=reason) for reason, n in sorted(counts.items())]
    return h.section(h.h2(title), h.ul(rows) if rows else h.p("none", class_="none"), id=ident)


def summed(workers: list[dict[str, Any]], key: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for w in workers:
        for reason, n in w.get(key, {}).items():
            out[reason] = out.get(reason, 0) + n
    return out


@component
def StatusPage() -> Node:
    use_head(title="Status · vango-mp")
    snap = SNAPSHOT.get()
    workers = snap["workers"]
    bus = snap.get("bus", {})
    header = h.tr(*[h.th(c, scope="col") for c in (
        "Worker", "PID", "Uptime", "Attached", "Detached", "Cold", "RSS", "Events/s", "Pressure", "Last recycle",
        "10 min (RSS, sessions)")])
    return h.main(
        h.link(rel="stylesheet", href="/_vango/status.css"),
        h.h1("vango-mp status"),
        h.p(f"{len(workers)} workers · {sum(w['sessions'].get('attached', 0) for w in workers)} attached sessions · "
            f"updated {snap.get('clock', '')}", id="status-summary"),
        h.table(h.thead(header), h.tbody([worker_row(w) for w in workers]), id="workers"),
        h.div(
            reasons("Evictions", summed(workers, "evictions"), "evictions"),
            reasons("Refusals", summed(workers, "refusals"), "refusals"),
            h.section(
                h.h2("Bus and store"),
                h.dl(
                    h.dt("Bus"), h.dd(bus.get("state", "n/a"), id="bus-state"),
                    h.dt("Round trip"), h.dd(f"{bus.get('rtt_ms', 0):.1f} ms", id="bus-rtt"),
                    h.dt("Store"), h.dd(", ".join(sorted({w.get("store", "?") for w in workers})) or "n/a",
                                        id="store-state"),
                ),
                id="health",
            ),
            class_="panels",
        ),
        class_="status",
    )


status_app = App({"/_vango/status": StatusPage}, title="vango-mp status")
