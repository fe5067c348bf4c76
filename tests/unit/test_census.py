"""The hub's census: server-wide counts of sessions and handshakes by worker and IP."""

from __future__ import annotations

import pytest

from supervisor.census import Census


def enter(c: Census, pid: int, ip: str, *, total: int = 0, per_ip: int = 0, kind: str = "sessions") -> str | None:
    return c.enter(pid, {"kind": kind, "ip": ip, "total": total, "per_ip": per_ip})


def test_limits_add_up_over_workers() -> None:
    c = Census()
    assert enter(c, 1, "a", total=3) is None
    assert enter(c, 2, "b", total=3) is None
    assert enter(c, 2, "a", total=3) is None
    assert enter(c, 1, "c", total=3) == "max sessions reached"
    assert enter(c, 1, "a", per_ip=2) == "too many sessions from this IP address"
    c.change(2, {"kind": "sessions", "ip": "a", "delta": -1})  # one of worker 2's ended
    assert enter(c, 1, "a", total=3, per_ip=2) is None
    assert c.count("sessions") == 3 and c.count("sessions", "a") == 2


def test_a_worker_that_goes_away_takes_its_counts_along() -> None:
    c = Census()
    for ip in ("a", "a", "b"):
        assert enter(c, 7, ip) is None
    assert enter(c, 8, "a") is None
    c.forget(7)
    assert c.count("sessions") == 1 and c.count("sessions", "a") == 1


def test_kinds_are_counted_apart_and_bad_messages_refused() -> None:
    c = Census()
    assert enter(c, 1, "a", per_ip=1, kind="handshakes") is None
    assert enter(c, 1, "a", per_ip=1) is None
    assert enter(c, 1, "a", per_ip=1, kind="handshakes") == "too many concurrent handshakes from this IP address"
    with pytest.raises(ValueError):
        c.enter(1, {"kind": "bogus"})
    with pytest.raises(ValueError):
        c.change(1, {"kind": "sessions", "ip": "a", "delta": "1"})
