"""A worker's place in the cluster: its bus connection, its report of itself, metrics of all.

Connects the worker to the supervisor's hub (when there is one), routes
global-signal writes through it, and reports this worker's health in every
heartbeat (``/_vango/metrics`` is :mod:`vango_mp.observability.exposition`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from . import globals as global_signals
from . import metrics
from .bus import HUB, BusClient, BusError
from .pressure import WorkerMemory
from .sessions import SessionOwner
from .protocol import Close
from .settings import Settings
from .stores import SessionStore

log = logging.getLogger("vango_mp.cluster")


def health(slot: int, owner: SessionOwner, memory: WorkerMemory, store: SessionStore | None = None) -> dict[str, Any]:
    """``/_vango/health``: this worker's sessions, memory and refusals (and Redis, with a shared store)."""
    mem = memory.health()
    shared = {"redis": store.status(), "machine": store.machine} if store is not None and store.status() else {}
    return {
        **shared,
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


async def learn_machine(bus: BusClient, store: SessionStore | None) -> None:
    """A shared store writes leases in the name of this machine: the hub's id for it."""
    if store is None or store.status() is None:
        return
    try:
        info = await bus.request(HUB, "cluster.machine", timeout=2.0)
    except BusError as err:
        log.error("the hub did not say which machine this is (%s): leases name this worker alone", err)
        return
    if isinstance(info, dict) and isinstance(info.get("id"), str) and info["id"]:
        store.machine = info["id"]


def close_stale(owner: SessionOwner, session_ids: list[str]) -> None:
    """Sessions another machine owns now (their lease moved while we could not reach Redis): close ours."""
    for session_id in session_ids:
        session = owner.entry(session_id)
        if session is not None:
            owner.end(session, Close.SESSION_TAKEN, "session resumed elsewhere", "lease_lost")
