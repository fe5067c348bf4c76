"""Per-server counts of sessions and handshakes, kept by the hub for every worker.

Limits such as ``max_sessions`` and ``max_sessions_per_ip`` are documented
per server; each worker only sees its own shard, so the hub counts for all
of them. A worker asks before it lets something in (``census.enter``: the
hub checks the sums and counts it, so two workers admitting at once cannot
overshoot) and reports what leaves or moves in without asking
(``census.change``: a session handed over, ended, a handshake done). A
worker that goes away takes its counts with it.

Messages (worker -> hub)::

    census.enter   request   {"kind", "ip", "total", "per_ip"} -> None | "refusal reason"
    census.change  broadcast {"kind", "ip", "delta"}   (to the hub only, never forwarded)
"""

from __future__ import annotations

from collections import Counter
from typing import Any

KINDS = ("sessions", "handshakes")
REASONS = {
    "sessions": ("max sessions reached", "too many sessions from this IP address"),
    "handshakes": ("too many concurrent handshakes", "too many concurrent handshakes from this IP address"),
}


class Census:
    """Counts by kind, worker pid and client IP; answers whether one more fits."""

    def __init__(self) -> None:
        self._by_ip: dict[str, Counter[tuple[int, str]]] = {kind: Counter() for kind in KINDS}
        self._totals: dict[str, Counter[int]] = {kind: Counter() for kind in KINDS}

    def enter(self, pid: int, body: Any) -> str | None:
        """Count one more ``kind`` from ``ip`` for worker ``pid`` if the limits allow; else why not."""
        kind, ip, total, per_ip = _fields(body)
        if total and sum(self._totals[kind].values()) >= total:
            return REASONS[kind][0]
        if per_ip and self.count(kind, ip) >= per_ip:
            return REASONS[kind][1]
        self._add(kind, pid, ip, 1)
        return None

    def change(self, pid: int, body: Any) -> None:
        """Something counted left worker ``pid`` (delta -1) or arrived there without asking (+1)."""
        if not isinstance(body, dict) or body.get("kind") not in KINDS or not isinstance(body.get("delta"), int):
            raise ValueError("census.change wants {'kind', 'ip', 'delta': int}")
        self._add(body["kind"], pid, str(body.get("ip", "")), body["delta"])

    def forget(self, pid: int) -> None:
        """Worker ``pid`` is gone: so is everything it held."""
        for kind in KINDS:
            self._totals[kind].pop(pid, None)
            counts = self._by_ip[kind]
            for key in [k for k in counts if k[0] == pid]:
                del counts[key]

    def count(self, kind: str, ip: str | None = None) -> int:
        if ip is None:
            return sum(self._totals[kind].values())
        return sum(n for (_, addr), n in self._by_ip[kind].items() if addr == ip)

    def ips(self, kind: str) -> set[str]:
        """Every client IP with something of ``kind`` counted."""
        return {addr for (_, addr) in self._by_ip[kind]}

    def _add(self, kind: str, pid: int, ip: str, delta: int) -> None:
        self._totals[kind][pid] += delta
        self._by_ip[kind][(pid, ip)] += delta
        if self._by_ip[kind][(pid, ip)] <= 0:
            del self._by_ip[kind][(pid, ip)]
        if self._totals[kind][pid] <= 0:
            del self._totals[kind][pid]


def _fields(body: Any) -> tuple[str, str, int, int]:
    if not isinstance(body, dict) or body.get("kind") not in KINDS:
        raise ValueError("census.enter wants {'kind', 'ip', 'total', 'per_ip'}")
    return body["kind"], str(body.get("ip", "")), int(body.get("total") or 0), int(body.get("per_ip") or 0)
