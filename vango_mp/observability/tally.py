"""A histogram written from one event loop: plain int buckets, exposed through the registry.

``prometheus_client``'s ``Histogram.observe`` takes a lock for its sum and
another for the bucket (with a scan of the bounds): ~4 µs, twice per click
on the hot path. A worker records from its one event loop, so plain ints
and a ``bisect`` carry the same figures; the registry reads them, in the
same exposition, when it is scraped.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence

from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString


class _Series:
    __slots__ = ("counts", "sum")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * buckets  # per bucket, not cumulative; the last one is +Inf
        self.sum = 0.0


class LoopHistogram:
    """``observe(value, label)`` for one label (or none); collected as a Prometheus histogram.

    ``tests/unit/test_tally.py`` checks its exposition against ``prometheus_client``'s own Histogram.
    """

    def __init__(self, name: str, doc: str, bounds: Sequence[float], label: str | None = None) -> None:
        self.name, self.doc, self.label = name, doc, label
        self.bounds = tuple(bounds)  # upper bounds, inclusive (le), ascending
        self._series: dict[str, _Series] = {}
        if label is None:
            self._series[""] = _Series(len(self.bounds) + 1)  # shown at zero from the start, as prometheus_client

    def observe(self, value: float, label: str = "") -> None:
        series = self._series.get(label)
        if series is None:
            series = self._series[label] = _Series(len(self.bounds) + 1)
        series.counts[bisect_left(self.bounds, value)] += 1
        series.sum += value

    def collect(self) -> Iterable[Metric]:
        fam = HistogramMetricFamily(self.name, self.doc, labels=[self.label] if self.label else None)
        les = [floatToGoString(b) for b in self.bounds] + ["+Inf"]
        for label, series in list(self._series.items()):
            running, buckets = 0, []
            for le, n in zip(les, series.counts):
                running += n
                buckets.append((le, running))
            fam.add_metric([label] if self.label else [], buckets, series.sum)
        yield fam
