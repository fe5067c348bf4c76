"""The metrics sink (SetMetricsSink), fixed reason codes, and the merged exposition."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping

import pytest
from prometheus_client.parser import text_string_to_metric_families

from vango_mp import metrics
from vango_mp.observability import exposition, prom, set_metrics_sink


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, float, dict[str, str]]] = []

    def count(self, name: str, value: float, labels: Mapping[str, str]) -> None:
        self.seen.append(("count", name, value, dict(labels)))

    def observe(self, name: str, value: float, labels: Mapping[str, str]) -> None:
        self.seen.append(("observe", name, value, dict(labels)))


@pytest.fixture
def sink() -> Iterator[Recorder]:
    rec = Recorder()
    set_metrics_sink(rec)
    yield rec
    set_metrics_sink(None)


def test_sink_hears_counters_and_histograms(sink: Recorder) -> None:
    metrics.inc("vango_events_total")
    prom.record_event("/counter", 0.002, 3)
    prom.record_bytes(received=10, sent=20)
    assert ("count", "vango_events_total", 1, {}) in sink.seen
    assert ("observe", "vango_event_latency_seconds", 0.002, {"route": "/counter"}) in sink.seen
    assert ("observe", "vango_patches_per_event", 3, {}) in sink.seen
    assert ("count", "vango_bytes_sent_total", 20, {}) in sink.seen


def test_reason_outside_the_fixed_codes_is_other(sink: Recorder) -> None:
    before = metrics.counters[("vango_refusals_total", (("reason", "other"),))]
    metrics.inc("vango_refusals_total", reason="Session expired: 'abc123'")  # text, not a code
    metrics.inc("vango_refusals_total", reason="csrf")
    assert metrics.counters[("vango_refusals_total", (("reason", "other"),))] == before + 1
    assert ("count", "vango_refusals_total", 1, {"reason": "csrf"}) in sink.seen
    assert not any("abc123" in str(labels) for *_, labels in sink.seen)


def test_a_sink_that_raises_is_removed_not_propagated() -> None:
    class Broken(Recorder):
        def count(self, name: str, value: float, labels: Mapping[str, str]) -> None:
            raise RuntimeError("down")

    broken = Broken()
    set_metrics_sink(broken)
    metrics.inc("vango_events_total")  # logged, not raised
    prom.record_event("/x", 0.001, 1)
    assert prom._sink is None and broken.seen == []


def test_merged_exposition_labels_each_worker_once_per_family() -> None:
    prom.record_event("/counter", 0.004, 2)
    wire = exposition.local_samples()
    text = exposition.render({"0": wire, "1": wire}).decode()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    lat = fams["vango_event_latency_seconds"]
    assert lat.type == "histogram"
    assert {s.labels["worker"] for s in lat.samples} == {"0", "1"}
    assert text.count("# TYPE vango_event_latency_seconds histogram") == 1


def test_gc_pauses_are_timed_by_generation() -> None:
    def count() -> float:
        return sum(s.value for m in prom.REGISTRY.collect() if m.name == "vango_gc_pause_seconds"
                   for s in m.samples if s.name.endswith("_count") and s.labels.get("generation") == "2")

    prom.watch_gc()
    prom.watch_gc()  # idempotent: one callback
    before = count()
    gc.collect()
    assert count() == before + 1
