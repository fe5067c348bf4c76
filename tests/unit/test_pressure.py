"""vango_mp.pressure: what a worker does at each memory level, against a model of its RSS.

The model: RSS = what the live sessions are estimated to hold (vango_mp.cost)
+ ``extra`` (garbage, fragmentation), so each test knows exactly what an
eviction gives back.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest

from vango_mp import cost
from vango_mp.demo import app
from vango_mp.memory import PressureLevel, Sample, Thresholds
from vango_mp.pressure import PressureResponse
from tests.unit.fakes import Conn
from vango_mp.protocol import Close
from vango_mp.session import Session, State
from vango_mp.sessions import Refused
from vango_mp.settings import Settings
from vango_mp.worker import Worker


class World:
    """A worker context with sessions, a clock, and RSS = estimated sessions + extra."""

    def __init__(self, loop: asyncio.AbstractEventLoop, **settings: Any) -> None:
        self.loop = loop
        self.settings = Settings(cold_after=0, max_detached=0, **settings)
        self.worker = Worker(self.settings, 0, app, secrets.token_bytes(32))
        self.manager = self.worker.owner
        self.extra = 0
        self.now = 1000.0
        self.collections = 0
        self.thresholds = Thresholds(100, 80, 90, 95)
        self.response = PressureResponse(self.manager, self.settings, thresholds=lambda: self.thresholds,
                                         measure=self.rss, collect=self.collect, trim=lambda: True,
                                         clock=lambda: self.now)

    def collect(self) -> None:
        self.collections += 1

    def rss(self) -> int:
        cost.refresh(self.manager)
        return self.extra + sum(cost.entry_cost(e) for e in self.manager.entries())

    def session(self, *, attached: bool, data: bytes = b"") -> Session:
        async def open_() -> Session:  # a session binds to the running loop
            await self.manager.admit("10.0.0.1", "b")
            return self.manager.open("/counter", "10.0.0.1")

        s = self.loop.run_until_complete(open_())
        conn = Conn()
        self.manager.attach(s, conn)
        if data:
            s.data["blob"] = data
            s.cost_stale = True
        if not attached:
            self.manager.detach(s)
        cost.refresh([s])
        return s

    def limits(self, soft: int, hard: int, critical: int | None = None) -> None:
        self.thresholds = Thresholds(critical or hard * 2, soft, hard, critical or hard * 2)

    def check(self) -> Sample:
        rss = self.rss()
        return self.response(Sample(rss, self.thresholds.level(rss), self.now))


@pytest.fixture
def world() -> Any:
    loop = asyncio.new_event_loop()
    yield World(loop)
    loop.close()


def live(sessions: list[Session]) -> list[bool]:
    return [s.alive for s in sessions]


def test_none_does_nothing(world: World) -> None:
    sessions = [world.session(attached=i % 2 == 0) for i in range(4)]
    world.limits(soft=world.rss() + 1, hard=world.rss() * 2)
    after = world.check()
    assert after.level is PressureLevel.NONE and all(live(sessions)) and world.collections == 0


def test_low_evicts_detached_least_recently_used_until_under_soft(world: World) -> None:
    attached = [world.session(attached=True) for _ in range(2)]
    detached = [world.session(attached=False) for _ in range(8)]
    each = cost.entry_cost(detached[0])
    world.limits(soft=world.rss() - int(3.5 * each), hard=world.rss() + 10 * each)
    world.response.last_gc = world.now  # inside the cooldown: no collection before evicting
    after = world.check()
    assert live(detached) == [False] * 4 + [True] * 4
    assert all(live(attached)) and after.level is PressureLevel.NONE
    assert world.manager.evictions == {"memory_low": 4} and world.manager.refusing is None
    assert world.collections == 1  # after the evictions: that is where the garbage is


def test_a_session_over_max_memory_per_session_goes_first(world: World) -> None:
    detached = [world.session(attached=False) for _ in range(4)]
    big = world.session(attached=False, data=b"x" * (4 * 1024 * 1024))  # the most recently used
    world.limits(soft=world.rss() - 10, hard=world.rss() * 2)
    world.check()
    assert not big.alive and all(live(detached))
    assert world.manager.evictions == {"memory_oversized": 1}


def test_high_evicts_every_detached_cold_too_and_refuses_until_under_soft(world: World) -> None:
    attached = [world.session(attached=True) for _ in range(3)]
    detached = [world.session(attached=False) for _ in range(3)]
    world.manager.freeze(detached[0])  # cold tier
    rss = world.rss()
    gone = sum(cost.entry_cost(e) for e in world.manager.detached_lru())
    world.limits(soft=rss - gone - 5_000, hard=rss - 1)  # high; evicting every detached leaves it low
    world.check()
    assert world.manager.detached_count == 0 and all(live(attached))
    assert world.manager.refusing == "server busy"
    with pytest.raises(Refused) as refused:
        world.loop.run_until_complete(world.manager.admit("10.0.0.2", "b"))
    assert refused.value.code == Close.SERVER_BUSY
    world.now += 1  # still between soft and hard: still refusing (hysteresis)
    world.check()
    assert world.manager.refusing == "server busy"
    world.limits(soft=world.rss() + 1, hard=world.rss() + 1_000_000)
    world.check()
    assert world.manager.refusing is None


def test_attached_sessions_stay_while_detached_ones_can_cover(world: World) -> None:
    attached = [world.session(attached=True) for _ in range(3)]
    detached = [world.session(attached=False) for _ in range(3)]
    rss = world.rss()
    world.limits(soft=rss - 1, hard=rss - 1)  # high; the detached ones alone bring it under hard
    world.check()
    assert all(live(attached)) and not any(live(detached))


def test_critical_closes_attached_oversized_first_then_longest_idle(world: World) -> None:
    sessions = [world.session(attached=True) for _ in range(5)]
    big = world.session(attached=True, data=b"x" * (4 * 1024 * 1024))
    for i, s in enumerate(sessions):
        s.last_active = world.now - 100 + i  # sessions[0] idle longest
    big.last_active = world.now  # the most active of all
    each = cost.entry_cost(sessions[0])
    rss = world.rss()
    world.limits(soft=rss - cost.entry_cost(big) - 2 * each, hard=rss - cost.entry_cost(big) - each + 1)
    conns = [s.conn for s in [big, *sessions]]
    after = world.check()
    assert not big.alive and big.state is State.CLOSED
    assert live(sessions) == [False, True, True, True, True]
    assert conns[0].closed == (Close.MEMORY_PRESSURE, "server under memory pressure")  # type: ignore[union-attr]
    assert world.manager.evictions == {"memory_oversized": 1, "memory_critical": 1}
    assert after.level < PressureLevel.HIGH


def test_closing_that_gives_nothing_back_pauses_for_the_cooldown(world: World) -> None:
    sessions = [world.session(attached=True) for _ in range(6)]
    world.extra = 10 ** 9  # memory the sessions do not explain: closing them will not help
    world.limits(soft=10, hard=20)
    world.response.measure = lambda: world.extra  # closing does not move RSS
    world.check()
    closed_first = sum(not s.alive for s in sessions)
    assert closed_first == 1  # a round closes at most a quarter; this one did not help: stop
    world.now += 1
    world.check()
    assert sum(not s.alive for s in sessions) == closed_first  # paused
    world.now += world.settings.gc_cooldown
    world.check()
    assert sum(not s.alive for s in sessions) > closed_first


def test_garbage_is_collected_first_when_the_cooldown_allows(world: World) -> None:
    detached = [world.session(attached=False) for _ in range(3)]
    world.extra = 1_000_000
    rss = world.rss()
    world.limits(soft=rss - 10, hard=rss + 10)
    world.response.collect = lambda: setattr(world, "extra", 0)  # the pressure was all garbage
    world.check()
    assert all(live(detached))  # nothing evicted: collecting was enough
    world.extra = 1_000_000  # again, but inside the cooldown: evict
    world.now += 1
    world.check()
    assert not all(live(detached))


def test_machine_level_high_refuses_even_a_worker_under_soft(world: World) -> None:
    world.limits(soft=10 ** 9, hard=2 * 10 ** 9)
    world.response.set_machine_level(PressureLevel.HIGH, PressureLevel.NONE)
    assert world.manager.refusing == "server busy"
    world.check()
    assert world.manager.refusing == "server busy"
    world.response.set_machine_level(PressureLevel.LOW, PressureLevel.NONE)
    assert world.manager.refusing is None


def test_a_store_keeps_the_sessions_evicted_for_memory(world: World) -> None:
    kept: list[str] = []
    detached = [world.session(attached=False) for _ in range(3)]
    world.manager.keeper = Keeper(kept)
    world.limits(soft=1, hard=world.rss() * 2)
    world.check()
    assert kept == [s.id for s in detached] and not any(live(detached))


def test_a_collection_that_gave_back_a_lot_may_repeat_inside_the_cooldown(world: World) -> None:
    detached = [world.session(attached=False) for _ in range(3)]
    world.extra = 5 * 1024 * 1024  # garbage piling up (page renders, closed sessions)
    rss = world.rss()
    world.limits(soft=rss - 10, hard=rss + 10)
    world.response.collect = lambda: setattr(world, "extra", 0)
    world.check()
    world.extra = 5 * 1024 * 1024  # more garbage, inside the cooldown: the last collection was worth it
    world.now += 1
    world.check()
    assert all(live(detached))  # collected again, not evicted


def test_rss_exactly_at_soft_still_evicts_down_under_it(world: World) -> None:
    # RSS moves in pages and a budget can put soft on a page boundary: "at soft" is low, not none.
    detached = [world.session(attached=False) for _ in range(3)]
    world.limits(soft=world.rss(), hard=world.rss() * 2)
    after = world.check()
    assert not detached[0].alive and after.level is PressureLevel.NONE


class Keeper:
    """Stands in for the store's writer: records what is saved before an eviction."""

    def __init__(self, kept: list[str]) -> None:
        self.kept = kept

    def save(self, sessions: list[Session]) -> int:
        self.kept.extend(s.id for s in sessions)
        return len(sessions)

    def on_detach(self, session: Session) -> None:
        pass

    def on_open(self, session: Session) -> None:
        pass

    def forget(self, session_ids: list[str]) -> None:
        pass


def test_pages_rendered_ahead_go_before_any_session(world: World) -> None:
    attached = world.session(attached=True)
    detached = world.session(attached=False)
    location = attached.root.context["location"]
    assert location.prefetch("/todos") and location.prefetched
    attached.cost_stale = True
    aside = cost.NODE_BYTES * location.aside_nodes()  # what the prefetched page is estimated to hold
    world.limits(soft=world.rss() - aside // 2, hard=world.rss() * 2)  # low: what the prefetch holds is enough
    world.check()
    assert not location.prefetched and detached.alive and attached.alive
