"""What one worker tells the status page about itself, and its last ten minutes.

:class:`History` samples the worker's RSS and session count every
:data:`SAMPLE_EVERY` seconds into a ring of :data:`SAMPLES` points (ten
minutes), whether or not anyone is watching: a status page opened during an
incident must show what led to it. :func:`worker_report` is the answer to the
``status.report`` bus request (and the local worker's own row).
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .. import metrics

SAMPLE_EVERY = 5.0  # seconds between history points
SAMPLES = 120  # 10 minutes of points


class History:
    """A ring of (seconds ago, RSS bytes, sessions) and the events/s of the last sample period."""

    def __init__(self, report: Callable[[], dict[str, Any]], *, every: float = SAMPLE_EVERY,
                 samples: int = SAMPLES, clock: Callable[[], float] = time.monotonic) -> None:
        self.report, self.every, self.clock = report, every, clock
        self.points: deque[tuple[float, int, int]] = deque(maxlen=samples)
        self.started = clock()
        self._events = (self.started, 0.0)  # (when, vango_events_total then)
        self.events_per_s = 0.0

    def sample(self) -> None:
        """Take one point (a timer calls this every ``every`` seconds)."""
        now = self.clock()
        rep = self.report()
        s = rep["sessions"]
        self.points.append((now, int(rep["rss_bytes"]), int(s["attached"]) + int(s["detached"])))
        total = events_total()
        then, before = self._events
        if now > then:
            self.events_per_s = max(0.0, (total - before) / (now - then))
        self._events = (now, total)

    def wire(self) -> list[list[float]]:
        """The points as [seconds ago, rss, sessions], oldest first (msgpack-ready)."""
        now = self.clock()
        return [[round(now - t, 1), rss, n] for t, rss, n in self.points]


def events_total() -> float:
    return sum(v for (name, _), v in metrics.counters.items() if name == "vango_events_total")


def worker_report(slot: int, health: dict[str, Any], history: History) -> dict[str, Any]:
    """This worker's row of the status page: sessions, memory against its limits, rates, history."""
    mem = health.get("memory", {})
    return {
        "slot": slot,
        "pid": os.getpid(),
        "uptime": round(time.monotonic() - history.started, 1),
        "sessions": dict(health["sessions"]),
        "rss": int(health["rss_bytes"]),
        "limits": {k: int(mem.get(k, 0) or 0) for k in ("share", "soft", "hard", "critical")},
        "pressure": str(health["pressure"]),
        "refusing": bool(mem.get("refusing")),
        "events_per_s": round(history.events_per_s, 2),
        "evictions": dict(metrics.by_label("vango_evictions_total", "reason")),
        "refusals": dict(metrics.by_label("vango_refusals_total", "reason")),
        "store": store_health(health),
        "history": history.wire(),
    }


def store_health(health: dict[str, Any]) -> str:
    """One word or two for the session store: ``redis: ok``, ``redis: down``, ``local``."""
    redis = health.get("redis")
    if redis:
        return f"redis: {redis if isinstance(redis, str) else redis.get('status', redis)}"
    return "local"
