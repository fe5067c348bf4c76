"""LoopHistogram exposes what prometheus_client's Histogram would for the same observations."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from vango_mp.observability.tally import LoopHistogram

BOUNDS = (0, 0.001, 0.5, 1, 2.5, 10)
values = st.floats(min_value=-1, max_value=20, allow_nan=False) | st.sampled_from(BOUNDS)


def _exposed(collector: object) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)  # type: ignore[arg-type]
    return generate_latest(registry)


@given(st.lists(st.tuples(values, st.sampled_from(["/a", "/b/{id}"])), max_size=40))
def test_labelled_exposition_is_prometheus_clients(observations: list[tuple[float, str]]) -> None:
    ours = LoopHistogram("t_seconds", "Test.", BOUNDS, label="route")
    registry = CollectorRegistry(auto_describe=False)
    theirs = Histogram("t_seconds", "Test.", ["route"], buckets=BOUNDS, registry=registry)
    for value, route in observations:
        ours.observe(value, route)
        theirs.labels(route=route).observe(value)
    assert _exposed(ours) == generate_latest(registry)


@given(st.lists(values, max_size=40))
def test_unlabelled_exposition_is_prometheus_clients(observations: list[float]) -> None:
    ours = LoopHistogram("t_count", "Test.", BOUNDS)
    registry = CollectorRegistry(auto_describe=False)
    theirs = Histogram("t_count", "Test.", buckets=BOUNDS, registry=registry)
    for value in observations:
        ours.observe(value)
        theirs.observe(value)
    assert _exposed(ours) == generate_latest(registry)
