"""Server-wide limits on sessions and handshakes, total and per client IP.

``max_sessions``, ``max_sessions_per_ip``, ``max_concurrent_handshakes`` and
``max_concurrent_handshakes_per_ip`` hold for the whole server, not per
worker: with a bus, the hub counts for every worker (``supervisor/census.py``)
and a worker asks it before it admits anything; alone (``--lone``, unit
tests) the counts are this process's. What leaves, or arrives by a move
(adoption, hand-over), is reported without asking.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Protocol

from .bus import HUB, BusClosed, BusError
from .settings import Settings

log = logging.getLogger("vango_mp.census")

SESSIONS, HANDSHAKES = "sessions", "handshakes"
_REASONS = {
    SESSIONS: ("max sessions reached", "too many sessions from this IP address"),
    HANDSHAKES: ("too many concurrent handshakes", "too many concurrent handshakes from this IP address"),
}


class Hub(Protocol):
    """What the census needs of the bus client."""

    async def request(self, peer: int, kind: str, body: Any = None, *, timeout: float | None = None) -> Any: ...

    def broadcast(self, kind: str, body: Any = None) -> None: ...


class Census:
    """Admits sessions and handshakes within the server-wide limits; counts them while they last."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.hub: Hub | None = None  # set once the worker joined the bus
        self._totals: Counter[str] = Counter()
        self._by_ip: dict[str, Counter[str]] = {SESSIONS: Counter(), HANDSHAKES: Counter()}

    def limits(self, kind: str) -> tuple[int, int]:
        s = self.settings
        if kind == SESSIONS:
            return s.max_sessions, s.max_sessions_per_ip
        return s.max_concurrent_handshakes, s.max_concurrent_handshakes_per_ip

    async def enter(self, kind: str, ip: str) -> str | None:
        """Count one more ``kind`` from ``ip``, or say why not (nothing is counted then)."""
        total, per_ip = self.limits(kind)
        if self.hub is None:
            return self._enter_here(kind, ip, total, per_ip)
        try:
            answer = await self.hub.request(HUB, "census.enter", {"kind": kind, "ip": ip, "total": total,
                                                                  "per_ip": per_ip})
        except BusError as err:  # the hub is the only one who knows: refuse rather than overshoot
            log.warning("census unavailable (%s): refusing a %s entry", err, kind)
            return "server busy"
        return answer if isinstance(answer, str) else None

    def change(self, kind: str, ip: str, delta: int) -> None:
        """Something counted left (-1) or arrived by a move (+1)."""
        if self.hub is None:
            self._add(kind, ip, delta)
            return
        try:
            self.hub.broadcast("census.change", {"kind": kind, "ip": ip, "delta": delta})
        except BusClosed:
            pass  # the hub forgets a worker it lost, counts and all

    def _enter_here(self, kind: str, ip: str, total: int, per_ip: int) -> str | None:
        if total and self._totals[kind] >= total:
            return _REASONS[kind][0]
        if per_ip and self._by_ip[kind][ip] >= per_ip:
            return _REASONS[kind][1]
        self._add(kind, ip, 1)
        return None

    def _add(self, kind: str, ip: str, delta: int) -> None:
        self._totals[kind] += delta
        counts = self._by_ip[kind]
        counts[ip] += delta
        if counts[ip] <= 0:
            del counts[ip]
