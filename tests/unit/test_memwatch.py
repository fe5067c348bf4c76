"""supervisor.memwatch: machine-level pressure from heartbeats, notices, and whom to recycle."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from supervisor.memwatch import MemoryWatch
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
