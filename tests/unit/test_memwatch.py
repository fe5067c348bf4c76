"""supervisor.memwatch: machine-level pressure from heartbeats, notices, and whom to recycle."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pytest

from supervisor.memwatch import BACKOFF_CAP, MemoryWatch
from supervisor.slots import Slot
from vango_mp.memory import Budget, PressureLevel
from vango_mp.settings import Settings

MIB = 1024 * 1024


@dataclass(eq=False)
class Peer:
    pid: int
    slot: int
    rss: int

    @property
    def stats(self) -> dict[str, Any]:
        return {"rss": self.rss}


@dataclass
class Hub:
    peers: list[Peer]
    told: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)

    def live_peers(self) -> list[Peer]:
        return list(self.peers)

    def tell(self, peer: Peer, kind: str, body: dict[str, Any]) -> None:
        self.told.append((peer.pid, kind, body))


def watch(**settings: Any) -> MemoryWatch:
    return MemoryWatch(Settings(worker_heartbeat=1.0, **settings), Budget(1000 * MIB, "memory_budget"), rng=lambda: 0.0)


def slots(*pids: int) -> list[Slot]:
    return [Slot(i, None, pid=pid) for i, pid in enumerate(pids)]  # type: ignore[arg-type]


def test_the_machine_level_is_the_summed_rss_against_the_whole_budget() -> None:
    w = watch()
    notice = w.observe([Peer(1, 0, 300 * MIB), Peer(2, 1, 300 * MIB)], 2, now=0.0)
    assert notice.level is PressureLevel.NONE and notice.share == 500 * MIB and notice.rss == 600 * MIB
    w.observe([Peer(1, 0, 450 * MIB), Peer(2, 1, 460 * MIB)], 2, now=1.0)
    assert w.observe([Peer(1, 0, 450 * MIB), Peer(2, 1, 460 * MIB)], 2, now=2.5).level is PressureLevel.HIGH


def test_a_rise_counts_after_one_heartbeat_a_fall_at_once() -> None:
    w = watch()
    high = [Peer(1, 0, 480 * MIB), Peer(2, 1, 480 * MIB)]
    assert w.observe(high, 2, now=10.0).level is PressureLevel.NONE  # could be two readings of different ages
    assert w.observe(high, 2, now=10.5).level is PressureLevel.NONE
    assert w.observe(high, 2, now=11.1).level is PressureLevel.CRITICAL
    assert w.observe([Peer(1, 0, 100 * MIB)], 2, now=11.2).level is PressureLevel.NONE


def test_every_worker_is_told_once_per_change_and_newcomers_at_once() -> None:
    hub = Hub([Peer(1, 0, 10 * MIB), Peer(2, 1, 10 * MIB)])
    w = watch()
    w.check(hub, slots(1, 2), now=0.0)  # type: ignore[arg-type]
    w.check(hub, slots(1, 2), now=0.1)  # type: ignore[arg-type]
    assert [(pid, kind) for pid, kind, _ in hub.told] == [(1, "memory.pressure"), (2, "memory.pressure")]
    assert hub.told[0][2] == {"level": "none", "share": 500 * MIB, "rss": 20 * MIB, "budget": 1000 * MIB,
                              "workers": 2}
    hub.peers.append(Peer(3, 2, 10 * MIB))  # TTIN: a third slot, so the share changes for everyone
    w.check(hub, slots(1, 2, 3), now=0.2)  # type: ignore[arg-type]
    assert sorted(pid for pid, _, _ in hub.told[2:]) == [1, 2, 3]
    assert {body["share"] for _, _, body in hub.told[2:]} == {1000 * MIB // 3}


def test_a_worker_above_max_worker_rss_long_enough_is_recycled() -> None:
    w = watch(max_worker_rss=100 * MIB, memory_recycle_after=5.0)
    assert w.due_recycle({1: 150 * MIB, 2: 50 * MIB}, now=0.0) is None
    assert w.due_recycle({1: 150 * MIB, 2: 50 * MIB}, now=4.9) is None
    assert w.due_recycle({1: 150 * MIB, 2: 50 * MIB}, now=5.0) == 1
    assert w.due_recycle({1: 150 * MIB, 2: 50 * MIB}, now=5.1) is None  # picked once; timing starts over


def test_dipping_under_the_limit_starts_the_clock_over() -> None:
    w = watch(max_worker_rss=100 * MIB, memory_recycle_after=5.0)
    w.due_recycle({1: 150 * MIB}, now=0.0)
    w.due_recycle({1: 90 * MIB}, now=3.0)
    assert w.due_recycle({1: 150 * MIB}, now=6.0) is None
    assert w.due_recycle({1: 150 * MIB}, now=11.0) == 1


def test_the_default_limit_is_the_share_of_the_hard_limit_and_zero_never_recycles() -> None:
    w = watch()
    w.observe([Peer(1, 0, 0)], 2, now=0.0)
    assert w.limit() == int(500 * MIB * 0.9)
    never = watch(memory_recycle_after=0.0)
    assert never.due_recycle({1: 10 ** 12}, now=0.0) is None
    assert never.due_recycle({1: 10 ** 12}, now=1e6) is None


def test_jitter_spreads_workers_that_crossed_together() -> None:
    draws = iter([0.0, 1.0])
    w = MemoryWatch(Settings(max_worker_rss=1, memory_recycle_after=4.0), Budget(1000 * MIB, "x"),
                    rng=lambda: next(draws))
    w.due_recycle({1: 2, 2: 2}, now=0.0)
    assert w.due_recycle({1: 2, 2: 2}, now=4.0) == 1
    assert w.due_recycle({2: 2}, now=4.5) is None  # its delay drew the full 25 % jitter
    assert w.due_recycle({2: 2}, now=5.0) == 2


def test_while_a_reload_runs_nobody_is_picked_but_the_clock_runs() -> None:
    hub = Hub([Peer(1, 0, 200 * MIB)])
    w = watch(max_worker_rss=100 * MIB, memory_recycle_after=1.0)
    assert w.check(hub, slots(1), now=0.0, can_recycle=False) is None  # type: ignore[arg-type]
    assert w.check(hub, slots(1), now=2.0, can_recycle=False) is None  # type: ignore[arg-type]
    picked = w.check(hub, slots(1), now=2.1)  # type: ignore[arg-type]
    assert picked is not None and picked.pid == 1


# ---------------------------------------------------------------- owned memory and the storm guard


@dataclass(eq=False)
class OwnedPeer:
    pid: int
    slot: int
    rss: int
    owned: int

    @property
    def stats(self) -> dict[str, Any]:
        return {"rss": self.rss, "owned": self.owned}


def test_recycling_decides_on_owned_memory_when_the_worker_reports_it() -> None:
    """A fresh worker's RSS is mostly the preloaded app it shares: over a limit its USS is well under."""
    hub = Hub([OwnedPeer(1, 0, rss=60 * MIB, owned=8 * MIB)])  # type: ignore[list-item]
    w = watch(max_worker_rss=40 * MIB, memory_recycle_after=1.0)
    for now in (0.0, 5.0, 50.0):
        assert w.check(hub, slots(1), now=now) is None  # type: ignore[arg-type]
    hub.peers[0].owned = 41 * MIB  # type: ignore[attr-defined]
    w.check(hub, slots(1), now=51.0)  # type: ignore[arg-type]
    picked = w.check(hub, slots(1), now=52.5)  # type: ignore[arg-type]
    assert picked is not None and picked.pid == 1


def test_a_slot_is_recycled_at_most_once_per_interval() -> None:
    w = watch(max_worker_rss=10 * MIB, memory_recycle_after=1.0, recycle_min_interval=30.0)
    assert w.due_recycle({1: 20 * MIB}, now=0.0, slots={1: 0}) is None
    assert w.due_recycle({1: 20 * MIB}, now=1.0, slots={1: 0}) == 1
    # Its successor (pid 2) is under the limit at first, then grows over it: a new bloat, base interval.
    assert w.due_recycle({2: 5 * MIB}, now=2.0, slots={2: 0}) is None
    assert w.due_recycle({2: 20 * MIB}, now=3.0, slots={2: 0}) is None
    assert w.due_recycle({2: 20 * MIB}, now=20.0, slots={2: 0}) is None  # due since 4.0, held by the guard
    assert w.due_recycle({2: 20 * MIB}, now=31.0, slots={2: 0}) == 2
    # Another slot has its own guard.
    assert w.due_recycle({3: 20 * MIB}, now=32.0, slots={3: 1}) is None
    assert w.due_recycle({3: 20 * MIB}, now=33.0, slots={3: 1}) == 3


def test_a_successor_over_the_limit_from_birth_doubles_the_interval_and_one_under_resets_it() -> None:
    w = watch(max_worker_rss=10 * MIB, memory_recycle_after=1.0, recycle_min_interval=30.0)
    w.due_recycle({1: 20 * MIB}, now=0.0, slots={1: 0})
    assert w.due_recycle({1: 20 * MIB}, now=1.0, slots={1: 0}) == 1
    w.due_recycle({2: 20 * MIB}, now=5.0, slots={2: 0})  # over at its first reading: the limit is too small
    assert w.due_recycle({2: 20 * MIB}, now=40.0, slots={2: 0}) is None  # 30 s passed, but now it is 60 s
    assert w.due_recycle({2: 20 * MIB}, now=61.0, slots={2: 0}) == 2
    w.due_recycle({3: 20 * MIB}, now=62.0, slots={3: 0})  # again: 120 s
    assert w.due_recycle({3: 20 * MIB}, now=180.0, slots={3: 0}) is None
    assert w.due_recycle({3: 20 * MIB}, now=181.5, slots={3: 0}) == 3
    w.due_recycle({4: 5 * MIB}, now=182.0, slots={4: 0})  # a successor under the limit: back to 30 s
    w.due_recycle({4: 20 * MIB}, now=190.0, slots={4: 0})
    assert w.due_recycle({4: 20 * MIB}, now=212.0, slots={4: 0}) == 4


def test_the_backoff_is_capped_and_zero_turns_the_guard_off() -> None:
    w = watch(max_worker_rss=10 * MIB, memory_recycle_after=1.0, recycle_min_interval=1000.0)
    now, pid = 0.0, 1
    for _ in range(6):  # every successor over from birth
        w.due_recycle({pid: 20 * MIB}, now=now, slots={pid: 0})
        now += 1.0
        while w.due_recycle({pid: 20 * MIB}, now=now, slots={pid: 0}) != pid:
            now += 100.0
        pid += 1
    guard = w._guards[0]
    assert guard.interval == BACKOFF_CAP
    off = watch(max_worker_rss=10 * MIB, memory_recycle_after=1.0, recycle_min_interval=0.0)
    off.due_recycle({1: 20 * MIB}, now=0.0, slots={1: 0})
    assert off.due_recycle({1: 20 * MIB}, now=1.0, slots={1: 0}) == 1
    off.due_recycle({2: 20 * MIB}, now=1.5, slots={2: 0})
    assert off.due_recycle({2: 20 * MIB}, now=2.5, slots={2: 0}) == 2


def test_a_held_recycle_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    w = watch(max_worker_rss=10 * MIB, memory_recycle_after=1.0, recycle_min_interval=30.0)
    w.due_recycle({1: 20 * MIB}, now=0.0, slots={1: 0})
    w.due_recycle({1: 20 * MIB}, now=1.0, slots={1: 0})
    with caplog.at_level(logging.WARNING, logger="vango_mp.supervisor.memory"):
        for now in (3.0, 5.0, 6.0, 7.0, 8.0):
            w.due_recycle({2: 20 * MIB}, now=now, slots={2: 0})
    held = [r.getMessage() for r in caplog.records if "storm guard" in r.getMessage()]
    assert len(held) == 1 and "pid 2 (slot 0)" in held[0]
    assert any("already above" in r.getMessage() for r in caplog.records)


def test_a_hup_keeps_the_guards() -> None:
    w = watch(max_worker_rss=10 * MIB, memory_recycle_after=1.0, recycle_min_interval=30.0)
    w.due_recycle({1: 20 * MIB}, now=0.0, slots={1: 0})
    assert w.due_recycle({1: 20 * MIB}, now=1.0, slots={1: 0}) == 1
    w.reconfigure(Settings(max_worker_rss=10 * MIB, memory_recycle_after=1.0, recycle_min_interval=30.0),
                  Budget(1000 * MIB, "memory_budget"))
    w.due_recycle({2: 5 * MIB}, now=2.0, slots={2: 0})
    w.due_recycle({2: 20 * MIB}, now=3.0, slots={2: 0})
    assert w.due_recycle({2: 20 * MIB}, now=10.0, slots={2: 0}) is None
