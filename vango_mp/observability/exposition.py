"""``/_vango/metrics`` for the whole cluster: every worker's registry, each sample labelled ``worker``.

The worker answering the scrape asks each peer for its samples over the bus
(``metrics.samples``, answered from the peer's own registry, so histograms are
live). A peer that does not answer within :data:`PEER_TIMEOUT` is shown with
the counters and gauges of its last heartbeat instead, so a busy worker never
disappears from the scrape; ``vango_metrics_peer_stale`` says which.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from .. import metrics as legacy
from ..bus import HUB, BusClient, BusError
from ..memory import PressureLevel
from . import prom

log = logging.getLogger("vango_mp.metrics")

PEER_TIMEOUT = 2.0  # seconds a scrape waits for a peer's samples
Wire = list[list[Any]]  # [[family, type, help, [[sample, labels, value], ...]], ...]

_STARTED = time.monotonic()


def gauge_rows(report: dict[str, Any]) -> list[tuple[str, dict[str, str], float]]:
    """This worker's gauges from its health report (:func:`vango_mp.cluster.health`)."""
    sessions, mem = report["sessions"], report.get("memory", {})
    return [
        *[("vango_sessions", {"state": state}, float(sessions.get(state, 0))) for state in ("attached", "detached", "cold")],
        ("vango_rss_bytes", {}, float(report.get("rss_bytes", 0))),
        ("vango_memory_level", {}, float(PressureLevel.parse(report.get("pressure")))),
        ("vango_memory_share_bytes", {}, float(mem.get("share", 0) or 0)),
        ("vango_memory_hard_bytes", {}, float(mem.get("hard", 0) or 0)),
        ("vango_memory_refusing", {}, float(bool(mem.get("refusing")))),
        ("vango_uptime_seconds", {}, time.monotonic() - _STARTED),
    ]


class _Local:
    """The counters of :mod:`vango_mp.metrics` and this worker's gauges, as one registry collector."""

    def __init__(self) -> None:
        self.report: Callable[[], dict[str, Any]] | None = None

    def collect(self) -> Iterable[Metric]:
        rows = legacy.snapshot()
        if self.report is not None:
            rows += gauge_rows(self.report())
        return prom.families(rows)


_LOCAL = _Local()
prom.REGISTRY.register(_LOCAL)  # type: ignore[arg-type]


def install(report: Callable[[], dict[str, Any]]) -> None:
    """Expose this worker's gauges (from its health report) and time its GC pauses."""
    global _STARTED
    _STARTED = time.monotonic()
    _LOCAL.report = report
    prom.watch_gc()


def local_samples() -> Wire:
    """This worker's registry, ready to ship over the bus."""
    return [[m.name, m.type, m.documentation, [[s.name, dict(s.labels), s.value] for s in m.samples]]
            for m in prom.REGISTRY.collect()]


def answer_samples(body: Any, peer: int) -> Wire:
    """Bus handler of ``metrics.samples``."""
    return local_samples()


class _Merged:
    def __init__(self, per_worker: dict[str, Wire], machine: str = "") -> None:
        self.per_worker = per_worker
        self.machine = {"machine": machine} if machine else {}  # several machines: which one (store_url)

    def collect(self) -> Iterable[Metric]:
        merged: dict[str, Metric] = {}
        for worker, wire in sorted(self.per_worker.items()):
            for name, typ, doc, samples in wire:
                fam = merged.get(name)
                if fam is None:
                    fam = merged[name] = Metric(name, doc, typ)
                for sample, labels, value in samples:
                    fam.add_sample(sample, {**labels, "worker": worker, **self.machine}, value)
        return list(merged.values())


def render(per_worker: dict[str, Wire], machine: str = "") -> bytes:
    """Prometheus text exposition of every worker's samples, grouped by family (labelled by ``machine`` if set)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged(per_worker, machine))  # type: ignore[arg-type]
    return generate_latest(registry)


def _heartbeat_wire(stats: dict[str, Any]) -> Wire:
    """A silent peer's figures as of its last heartbeat (counters and gauges, no histograms)."""
    rows = [(n, dict(labels), float(v)) for n, labels, v in stats.get("metrics", [])]
    rows += [
        ("vango_sessions", {"state": "attached"}, float(stats.get("attached", 0))),
        ("vango_sessions", {"state": "detached"}, float(stats.get("detached", 0))),
        ("vango_rss_bytes", {}, float(stats.get("rss", 0))),
        ("vango_memory_level", {}, float(PressureLevel.parse(stats.get("pressure")))),
        ("vango_memory_share_bytes", {}, float(stats.get("share", 0) or 0)),
        ("vango_memory_hard_bytes", {}, float(stats.get("hard", 0) or 0)),
        ("vango_memory_refusing", {}, float(bool(stats.get("refusing")))),
    ]
    return [[m.name, m.type, m.documentation, [[s.name, dict(s.labels), s.value] for s in m.samples]]
            for m in prom.families(rows)]


def _stale(stale: bool) -> list[Any]:
    fam = GaugeMetricFamily("vango_metrics_peer_stale", "1 when a worker's figures come from its last heartbeat.")
    fam.add_metric([], float(stale))
    return [fam.name, fam.type, fam.documentation, [[s.name, {}, s.value] for s in fam.samples]]


async def cluster_exposition(slot: int, bus: BusClient | None, machine: str = "") -> bytes:
    """The text of ``/_vango/metrics``: ours live, each peer's live or from its last heartbeat."""
    per_worker: dict[str, Wire] = {str(slot): local_samples() + [_stale(False)]}
    if bus is not None:
        try:
            peers = await bus.request(HUB, "stats", timeout=PEER_TIMEOUT)
        except BusError as err:
            log.warning("metrics: peers unavailable: %s", err)
            peers = []
        others = [p for p in peers or [] if isinstance(p, dict) and str(p.get("slot")) != str(slot)]
        answers = await asyncio.gather(*(_ask(bus, p) for p in others))
        for peer, wire in zip(others, answers):
            per_worker[str(peer["slot"])] = wire
    return render(per_worker, machine)


async def _ask(bus: BusClient, peer: dict[str, Any]) -> Wire:
    try:
        wire = await bus.request(int(peer["slot"]), "metrics.samples", timeout=PEER_TIMEOUT)
        return list(wire) + [_stale(False)]
    except BusError as err:
        log.info("metrics: worker %s answered from its heartbeat (%s)", peer.get("slot"), err)
        stats = peer.get("stats") if isinstance(peer.get("stats"), dict) else {}
        return _heartbeat_wire(stats) + [_stale(True)]
