"""Process-local counters and gauges, rendered as Prometheus text.

Workers keep their own registry; the supervisor (or any worker asked over the
bus) merges the per-worker samples by adding a ``worker`` label.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

_HELP: dict[str, str] = {
    "vango_events_total": "Client events processed.",
    "vango_events_dropped_total": "Client events dropped, by reason.",
    "vango_patch_frames_total": "PATCHES frames sent.",
    "vango_sessions_created_total": "Sessions created.",
    "vango_sessions_resumed_total": "Sessions resumed, by kind.",
    "vango_sessions_closed_total": "Sessions closed, by reason.",
    "vango_refusals_total": "Handshakes refused, by reason.",
    "vango_handler_errors_total": "Event handlers that raised.",
    "vango_sessions": "Sessions held now, by state.",
    "vango_rss_bytes": "Resident set size of the worker.",
    "vango_evictions_total": "Sessions evicted (detached) or closed (attached) by the server, by reason.",
    "vango_memory_checks_total": "Memory checks, by the pressure level read.",
    "vango_memory_collections_total": "Garbage collections forced by memory pressure.",
    "vango_memory_level": "Memory pressure level after the last check: 0 none, 1 low, 2 high, 3 critical.",
    "vango_memory_share_bytes": "The worker's share of the memory budget.",
    "vango_memory_hard_bytes": "The worker's hard memory limit (high pressure from here).",
    "vango_store_writes_total": "Sessions written to the session store (checkpoints, disconnects, evictions).",
    "vango_memory_refusing": "1 while the worker refuses new sessions under memory pressure.",
}

Key = tuple[str, tuple[tuple[str, str], ...]]
counters: Counter[Key] = Counter()


def inc(name: str, amount: int = 1, **labels: str) -> None:
    """Add to a counter."""
    counters[(name, tuple(sorted(labels.items())))] += amount


def snapshot() -> list[tuple[str, dict[str, str], float]]:
    """The counters as (name, labels, value) rows, ready to ship over the bus."""
    return [(name, dict(labels), float(v)) for (name, labels), v in counters.items()]


def render(rows: Iterable[tuple[str, Mapping[str, str], float]]) -> str:
    """Prometheus text exposition of sample rows, grouped by metric name."""
    by_name: dict[str, list[tuple[Mapping[str, str], float]]] = {}
    for name, labels, value in rows:
        by_name.setdefault(name, []).append((labels, value))
    lines: list[str] = []
    for name in sorted(by_name):
        kind = "counter" if name.endswith("_total") else "gauge"
        lines.append(f"# HELP {name} {_HELP.get(name, name)}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in by_name[name]:
            label_s = ",".join(f'{k}="{_escape(str(v))}"' for k, v in sorted(labels.items()))
            lines.append(f"{name}{{{label_s}}} {value:g}" if label_s else f"{name} {value:g}")
    return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def by_label(name: str, label: str) -> dict[str, float]:
    """One counter's values keyed by one of its labels (``{"server_busy": 3.0}``)."""
    out: dict[str, float] = {}
    for (counter, labels), value in counters.items():
        if counter == name:
            key = dict(labels).get(label, "")
            out[key] = out.get(key, 0.0) + value
    return out
