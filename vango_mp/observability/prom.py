"""Latency histograms, byte counters and fixed reason codes, kept in a ``prometheus_client`` registry.

Each worker process has its own registry (the supervisor forks workers before
anything is counted). ``/_vango/metrics`` asks every peer for its samples over
the bus and renders them all with a ``worker`` label (:mod:`.exposition`).

The runtime records through the ``record_*`` functions below; each also
forwards to the app author's sink (:func:`set_metrics_sink`), the way the
reference's ``Server.SetMetricsSink`` does, so an app can ship the same
figures to StatsD, OpenTelemetry or a log without scraping.

Label values are codes from fixed sets (:data:`REFUSAL_CODES`,
:data:`EVICTION_CODES`, :data:`CLOSE_CODES`), never message text: a reason
outside its set is counted as ``other``. Routes are route *patterns*
(``/items/{id:int}``), never concrete paths.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import prometheus_client
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from .tally import LoopHistogram

log = logging.getLogger("vango_mp.refusal")

prometheus_client.disable_created_metrics()  # *_created series double the output and say nothing here

# -- fixed label values ------------------------------------------------------------

REFUSAL_CODES = frozenset({
    "origin", "fd_limit", "handshakes", "handshake_timeout", "protocol_error", "resync_rate", "slow_reader", "stopping",
    "csrf", "auth", "auth_resume", "no_route", "attach_refused", "unknown_session", "ip_limit",
    "adoption_moving", "adoption_unanswered", "max_sessions_reached", "server_busy", "store_busy",
    "blob_malformed", "blob_tampered", "blob_foreign_id", "blob_stale_schema", "blob_too_old",
    "fd_limit", "app_error",
})
EVICTION_CODES = frozenset({
    "max_sessions", "max_detached", "ip_limit", "expired", "memory_low", "memory_high", "memory_oversized",
    "memory_critical",
})
CLOSE_CODES = EVICTION_CODES | frozenset({
    "stopping", "auth", "resume_disabled", "unsealable", "dispatch_overflow", "lease_lost", "logout",
    "render_errors",
})
RESUME_KINDS = ("same_worker", "adopted", "restored")
OTHER = "other"

_CODES: dict[str, frozenset[str]] = {
    "vango_refusals_total": REFUSAL_CODES,
    "vango_evictions_total": EVICTION_CODES,
    "vango_sessions_closed_total": CLOSE_CODES,
}


def code(name: str, reason: str) -> str:
    """``reason`` when it is one of ``name``'s fixed codes, else ``other``."""
    codes = _CODES.get(name)
    return reason if codes is None or reason in codes else OTHER


# -- the sink ----------------------------------------------------------------------


class MetricsSink(Protocol):
    """Where the runtime's figures also go, besides the Prometheus registry.

    ``count`` adds to a counter, ``observe`` records one sample of a
    histogram (seconds, bytes or a count, as the name's suffix says). Both
    run on the worker's event loop for every event: keep them cheap and
    never block (queue, then ship from a thread or a timer).
    """

    def count(self, name: str, value: float, labels: Mapping[str, str]) -> None: ...

    def observe(self, name: str, value: float, labels: Mapping[str, str]) -> None: ...


_sink: MetricsSink | None = None


def set_metrics_sink(sink: MetricsSink | None) -> None:
    """Send every metric the runtime records to ``sink`` too (None: Prometheus only).

    Call it where the app is built (module level): the supervisor loads the
    app before it forks, so every worker inherits the sink. A sink that
    raises is logged and removed, never allowed to break a session.
    """
    global _sink
    _sink = sink


def _to_sink(method: str, name: str, value: float, labels: Mapping[str, str]) -> None:
    global _sink
    sink = _sink
    if sink is None:
        return
    try:
        getattr(sink, method)(name, value, labels)
    except Exception:
        log.getChild("sink").exception("metrics sink raised; it is removed")
        _sink = None


# -- the registry ------------------------------------------------------------------

REGISTRY = CollectorRegistry(auto_describe=False)
_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_SLOW = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

EVENT_LATENCY = LoopHistogram("vango_event_latency_seconds", "Client event received to its PATCHES frame sent, by route.",
                              _FAST, label="route")  # recorded per click: no locks (tally)
HANDSHAKE = Histogram("vango_handshake_seconds", "Socket open to WELCOME sent, by kind (new, resume).",
                      ["kind"], buckets=_SLOW, registry=REGISTRY)
RESUME = Histogram("vango_resume_seconds", "Finding a session to resume, by where it came from.",
                   ["kind"], buckets=_SLOW, registry=REGISTRY)
NAVIGATION = Histogram("vango_navigation_seconds", "Live navigation received to its NAV frame sent, by route.",
                       ["route"], buckets=_FAST, registry=REGISTRY)
BUS_ROUND_TRIP = Histogram("vango_bus_round_trip_seconds", "Bus request to its answer, by request kind.",
                           ["kind"], buckets=_FAST, registry=REGISTRY)
STORE_WRITE = Histogram("vango_store_write_seconds", "One write (transaction) to the session store.",
                        buckets=_SLOW, registry=REGISTRY)
PATCHES_PER_EVENT = LoopHistogram("vango_patches_per_event", "Patch operations sent for one client event.",
                                  (0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))
REGISTRY.register(EVENT_LATENCY)  # type: ignore[arg-type]
REGISTRY.register(PATCHES_PER_EVENT)  # type: ignore[arg-type]
GC_PAUSE = Histogram("vango_gc_pause_seconds", "Garbage collector pauses, by generation.",
                     ["generation"], buckets=_FAST, registry=REGISTRY)


class _Bytes:
    """Bytes in and out as two plain ints (a locked Counter.inc per frame cost ~1 µs each way)."""

    def __init__(self) -> None:
        self.received = self.sent = 0

    def collect(self) -> Iterable[Metric]:
        for name, doc, value in (("vango_bytes_received", "WebSocket payload bytes received from clients.",
                                  self.received),
                                 ("vango_bytes_sent", "WebSocket payload bytes sent to clients.", self.sent)):
            fam = CounterMetricFamily(name, doc)
            fam.add_metric([], value)
            yield fam


BYTES = _Bytes()
REGISTRY.register(BYTES)  # type: ignore[arg-type]


_children: dict[tuple[str, str], Any] = {}  # (histogram, label value) -> its child: labels() costs ~5 µs a call


def _child(hist: Histogram, name: str, key: str, value: str) -> Any:
    child = _children.get((name, value))
    if child is None:
        child = _children[(name, value)] = hist.labels(**{key: value})
    return child


def _observe(hist: Histogram, name: str, value: float, **labels: str) -> None:
    if labels:
        ((key, label),) = labels.items()
        _child(hist, name, key, label).observe(value)
    else:
        hist.observe(value)
    if _sink is not None:
        _to_sink("observe", name, value, labels)


def record_event(route: str, seconds: float, patches: int) -> None:
    """One client event handled: its latency and how many patch ops it produced (on the hot path: ~1 µs)."""
    EVENT_LATENCY.observe(seconds, route)
    PATCHES_PER_EVENT.observe(patches)
    if _sink is not None:
        _to_sink("observe", "vango_event_latency_seconds", seconds, {"route": route})
        _to_sink("observe", "vango_patches_per_event", patches, {})


def record_navigation(route: str, seconds: float) -> None:
    _observe(NAVIGATION, "vango_navigation_seconds", seconds, route=route)


def record_handshake(kind: str, seconds: float) -> None:
    _observe(HANDSHAKE, "vango_handshake_seconds", seconds, kind=kind)


def record_resume(kind: str, seconds: float) -> None:
    """``kind``: one of :data:`RESUME_KINDS`."""
    _observe(RESUME, "vango_resume_seconds", seconds, kind=kind if kind in RESUME_KINDS else OTHER)


def record_bus(kind: str, seconds: float) -> None:
    _observe(BUS_ROUND_TRIP, "vango_bus_round_trip_seconds", seconds, kind=kind)


def record_store_write(seconds: float) -> None:
    _observe(STORE_WRITE, "vango_store_write_seconds", seconds)


def record_bytes(received: int = 0, sent: int = 0) -> None:
    BYTES.received += received  # one event loop per worker: no lock needed
    BYTES.sent += sent
    if _sink is not None:
        if received:
            _to_sink("count", "vango_bytes_received_total", received, {})
        if sent:
            _to_sink("count", "vango_bytes_sent_total", sent, {})


def record_count(name: str, amount: float, labels: Mapping[str, str]) -> None:
    """A counter of :mod:`vango_mp.metrics` moved: tell the sink, log a refusal (one line each)."""
    if name == "vango_refusals_total":
        log.info("refused: %s", labels.get("reason", OTHER), extra={"reason": labels.get("reason", OTHER)})
    if _sink is not None:
        _to_sink("count", name, amount, labels)


class Stopwatch:
    """``with Stopwatch() as t: ...; t.seconds`` — monotonic, for the record_* calls."""

    __slots__ = ("start", "seconds")

    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


# -- GC pauses ---------------------------------------------------------------------

_gc_started = 0.0


def _gc_callback(phase: str, info: dict[str, Any]) -> None:
    global _gc_started
    if phase == "start":
        _gc_started = time.perf_counter()
    elif _gc_started:
        GC_PAUSE.labels(generation=str(info.get("generation", 0))).observe(time.perf_counter() - _gc_started)
        _gc_started = 0.0


def watch_gc() -> None:
    """Time every collection of this process (idempotent); a worker calls it after the fork."""
    if _gc_callback not in gc.callbacks:
        gc.callbacks.append(_gc_callback)


# -- the legacy counters and the gauges, as collectors ------------------------------


class CounterRows:
    """Exposes :mod:`vango_mp.metrics`' counters (``inc``) and a gauge provider through the registry."""

    def __init__(self, rows: Any, gauges: Any = None) -> None:
        self.rows, self.gauges = rows, gauges

    def collect(self) -> Iterable[Metric]:
        rows = list(self.rows()) + list(self.gauges() if self.gauges is not None else [])
        yield from families(rows)


def families(rows: Iterable[tuple[str, Mapping[str, str], float]]) -> list[Metric]:
    """Counter (``*_total``) and gauge families from (name, labels, value) rows."""
    grouped: dict[str, list[tuple[Mapping[str, str], float]]] = {}
    for name, labels, value in rows:
        grouped.setdefault(name, []).append((labels, value))
    out: list[Metric] = []
    from .. import metrics as legacy  # help texts live with the counters

    for name, samples in sorted(grouped.items()):
        keys = sorted({k for labels, _ in samples for k in labels})
        doc = legacy._HELP.get(name, name)
        fam: Metric = (CounterMetricFamily(name, doc, labels=keys) if name.endswith("_total")
                       else GaugeMetricFamily(name, doc, labels=keys))
        for labels, value in samples:
            fam.add_metric([str(labels.get(k, "")) for k in keys], value)  # type: ignore[attr-defined]
        out.append(fam)
    return out
