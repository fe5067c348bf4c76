"""A worker's place in the cluster: its bus connection, stats and handlers.

Connects the worker to the supervisor's hub (when there is one), routes
global-signal writes through it, reports stats in every heartbeat and answers
the hub's questions about this worker's sessions.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from . import globals as global_signals
from . import metrics
from .bus import HUB, BusClient, BusError
from .memory import PressureLevel

if TYPE_CHECKING:
    from .worker import WorkerContext

log = logging.getLogger("vango_mp.cluster")


def stats(ctx: WorkerContext) -> dict[str, Any]:
    """What this worker reports in each heartbeat (the supervisor sums them)."""
    health = ctx.health()
    return {
        "attached": health["sessions"]["attached"],
        "detached": health["sessions"]["detached"],
        "rss": health["rss_bytes"],
        "pressure": health["pressure"],
        "share": health["memory"]["share"],
        "hard": health["memory"]["hard"],
        "refusing": health["memory"]["refusing"],
        "metrics": metrics.snapshot(),
    }


async def join(ctx: WorkerContext, bus_path: str) -> BusClient:
    """Connect to the hub, adopt its globals snapshot, register handlers."""
    s = ctx.settings
    client = BusClient(bus_path, slot=ctx.slot, pid=os.getpid(), heartbeat=s.worker_heartbeat, timeout=s.bus_timeout)
    client.stats_provider = lambda: stats(ctx)
    for kind, handler in ctx.bus_handlers().items():
        client.on(kind, handler)
    await client.connect()
    global_signals.install_backend(global_signals.BusBackend(client))
    return client


async def cluster_metrics(ctx: WorkerContext) -> list[tuple[str, dict[str, str], float]]:
    """Metric rows of every worker: live ones for us, last heartbeat's for peers."""
    rows = [(n, {**labels, "worker": str(ctx.slot)}, v) for n, labels, v in metrics.snapshot()]
    rows += _gauges(ctx.slot, stats(ctx))
    if ctx.bus is None:
        return rows
    try:
        peers = await ctx.bus.request(HUB, "stats", timeout=2.0)
    except BusError as err:
        log.warning("metrics: peers unavailable: %s", err)
        return rows
    for peer in _peer_stats(peers):
        slot = str(peer.get("slot"))
        if slot == str(ctx.slot) or not isinstance(peer.get("stats"), dict):
            continue
        for name, labels, value in peer["stats"].get("metrics", []):
            rows.append((name, {**labels, "worker": slot}, value))
        rows += _gauges(slot, peer["stats"])
    return rows


def _peer_stats(peers: Any) -> list[dict[str, Any]]:
    if isinstance(peers, dict):
        return [{"slot": k, "stats": v} for k, v in peers.items()]
    return [p for p in peers or [] if isinstance(p, dict)]


def _gauges(slot: int | str, st: dict[str, Any]) -> list[tuple[str, dict[str, str], float]]:
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
