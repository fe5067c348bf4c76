"""Process-local counters by name and labels (``inc``), with their help texts.

They reach ``/_vango/metrics`` through the worker's Prometheus registry
(:mod:`vango_mp.observability.exposition`) and ride in every heartbeat
(``snapshot``) so a busy worker's last figures are still shown.
"""

from __future__ import annotations

from collections import Counter

from .observability import prom

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
    "vango_accept_paused_total": "Times the accept loop rested because file descriptors ran out, by errno.",
    "vango_navigations_total": "Live navigations (NAV frames sent).",
    "vango_prefetches_total": "Pages rendered ahead on a client's hint, by result.",
    "vango_render_errors_total": "Component renders that raised.",
    "vango_uptime_seconds": "Seconds since the worker started.",
    "vango_events_per_second": "Client events handled per second, over the last few seconds.",
}

Key = tuple[str, tuple[tuple[str, str], ...]]
counters: Counter[Key] = Counter()


def inc(name: str, amount: int = 1, **labels: str) -> None:
    """Add to a counter (a ``reason`` outside the name's fixed codes counts as ``other``); the sink hears it too."""
    if not labels:  # the hot path: a frame sent, an event handled
        counters[(name, ())] += amount
    else:
        if "reason" in labels:
            labels["reason"] = prom.code(name, labels["reason"])
        counters[(name, tuple(sorted(labels.items())))] += amount
    prom.record_count(name, amount, labels)


def snapshot() -> list[tuple[str, dict[str, str], float]]:
    """The counters as (name, labels, value) rows, ready to ship over the bus."""
    return [(name, dict(labels), float(v)) for (name, labels), v in counters.items()]


def by_label(name: str, label: str) -> dict[str, float]:
    """One counter's values keyed by one of its labels (``{"server_busy": 3.0}``)."""
    out: dict[str, float] = {}
    for (counter, labels), value in counters.items():
        if counter == name:
            key = dict(labels).get(label, "")
            out[key] = out.get(key, 0.0) + value
    return out
