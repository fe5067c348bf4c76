"""A worker's place in the cluster: its bus connection, its report of itself, metrics of all.

Connects the worker to the supervisor's hub (when there is one), routes
global-signal writes through it, and reports this worker's health in every
heartbeat; ``/_vango/metrics`` combines its own rows with the peers' last.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from . import globals as global_signals
from . import metrics
from .bus import HUB, BusClient, BusError
from .memory import PressureLevel
from .pressure import WorkerMemory
from .sessions import SessionOwner
from .settings import Settings

log = logging.getLogger("vango_mp.cluster")

Rows = list[tuple[str, dict[str, str], float]]


def health(slot: int, owner: SessionOwner, memory: WorkerMemory) -> dict[str, Any]:
    """``/_vango/health``: this worker's sessions, memory and refusals."""
    mem = memory.health()
    return {
        "status": "ok",
        "worker": slot,
        "pid": os.getpid(),
        "sessions": {
            "attached": owner.attached_count,
            "detached": owner.detached_count,
            "cold": owner.cold_count,
        },
        "rss_bytes": mem["rss"],
        "pressure": mem["level"],
        "memory": mem,
        "evictions": dict(owner.evictions),
        "refusals": metrics.by_label("vango_refusals_total", "reason"),
    }


def stats(report: dict[str, Any]) -> dict[str, Any]:
    """What a worker says in each heartbeat (the supervisor sums them), from its health report."""
    mem = report["memory"]
    return {
        "attached": report["sessions"]["attached"],
        "detached": report["sessions"]["detached"],
        "rss": report["rss_bytes"],
        "pressure": report["pressure"],
        **{key: mem[key] for key in ("share", "hard", "refusing", "owned") if key in mem},
        "metrics": metrics.snapshot(),
    }


async def join(bus_path: str, slot: int, settings: Settings, *, report: Callable[[], dict[str, Any]],
               handlers: dict[str, Any]) -> BusClient:
    """Connect to the hub, adopt its globals snapshot, register handlers."""
    client = BusClient(bus_path, slot=slot, pid=os.getpid(), heartbeat=settings.worker_heartbeat,
                       timeout=settings.bus_timeout)
    client.stats_provider = lambda: stats(report())
    for kind, handler in handlers.items():
        client.on(kind, handler)
    await client.connect()
    global_signals.install_backend(global_signals.BusBackend(client))
    return client


async def cluster_metrics(slot: int, report: dict[str, Any], bus: BusClient | None) -> Rows:
    """Metric rows of every worker: live ones for us, last heartbeat's for peers."""
    rows: Rows = [(n, {**labels, "worker": str(slot)}, v) for n, labels, v in metrics.snapshot()]
    rows += _gauges(slot, stats(report))
    if bus is None:
        return rows
    try:
        peers = await bus.request(HUB, "stats", timeout=2.0)
    except BusError as err:
        log.warning("metrics: peers unavailable: %s", err)
        return rows
    for peer in _peer_stats(peers):
        peer_slot = str(peer.get("slot"))
        if peer_slot == str(slot) or not isinstance(peer.get("stats"), dict):
            continue
        for name, labels, value in peer["stats"].get("metrics", []):
            rows.append((name, {**labels, "worker": peer_slot}, value))
        rows += _gauges(peer_slot, peer["stats"])
    return rows


def _peer_stats(peers: Any) -> list[dict[str, Any]]:
    if isinstance(peers, dict):
        return [{"slot": k, "stats": v} for k, v in peers.items()]
    return [p for p in peers or [] if isinstance(p, dict)]


def _gauges(slot: int | str, st: dict[str, Any]) -> Rows:
    w = str(slot)
    return [
        ("vango_sessions", {"state": "attached", "worker": w}, float(st.get("attached", 0))),
        ("vango_sessions", {"state": "detached", "worker": w}, float(st.get("detached", 0))),
        ("vango_rss_bytes", {"worker": w}, float(st.get("rss", 0))),
        ("vango_memory_level", {"worker": w}, float(PressureLevel.parse(st.get("pressure")))),
        ("vango_memory_share_bytes", {"worker": w}, float(st.get("share", 0))),
        ("vango_memory_hard_bytes", {"worker": w}, float(st.get("hard", 0))),
        ("vango_memory_refusing", {"worker": w}, float(bool(st.get("refusing")))),
    ]
