"""supervisor.reload: the rolling replacement steps, driven through a fake Workforce (no processes)."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field

from supervisor.reload import RollingReload
from supervisor.slots import Slot
from vango_mp.settings import Settings


@dataclass
class FakeWorkforce:
    """Slots 0..n-1 served by pids 100, 101, ...; successors get 200, 201, ..."""

    slots: list[Slot]
    running: set[int] = field(default_factory=set)
    ready: set[int] = field(default_factory=set)
    stopped: list[tuple[int, int]] = field(default_factory=list)  # (pid, signal)
    next_pid: int = 200

    @classmethod
    def of(cls, n: int) -> FakeWorkforce:
        slots = [Slot(i, None, pid=100 + i) for i in range(n)]  # type: ignore[arg-type]
        return cls(slots, running={100 + i for i in range(n)})

    def slot_of(self, index: int) -> Slot | None:
        return next((s for s in self.slots if s.index == index), None)

    def spawn_worker(self, slot: Slot, *, successor: bool = False) -> int:
        pid, self.next_pid = self.next_pid, self.next_pid + 1
        assert successor
        slot.successor = pid
        self.running.add(pid)
        return pid

    def stop_worker(self, pid: int | None, sig: int, deadline: float) -> None:
        assert pid is not None
        self.stopped.append((pid, sig))

    def is_ready(self, pid: int | None) -> bool:
        return pid in self.ready

    def is_running(self, pid: int) -> bool:
        return pid in self.running


@dataclass
class FakeNotifier:
    said: list[str] = field(default_factory=list)

    def reloading(self) -> None:
        self.said.append("RELOADING=1")

    def ready(self, status: str = "") -> None:
        self.said.append(f"READY=1 {status}")


def rolling(workforce: FakeWorkforce, **settings: float) -> tuple[RollingReload, FakeNotifier, list[int]]:
    notifier, done = FakeNotifier(), []
    r = RollingReload(workforce, notifier, settings=lambda: Settings(**settings),  # type: ignore[arg-type]
                      status_line=lambda: "2/2 workers ready", on_slot_done=lambda: done.append(1))
    return r, notifier, done


def test_one_slot_at_a_time_successor_ready_before_the_old_worker_stops() -> None:
    w = FakeWorkforce.of(2)
    r, notifier, done = rolling(w)
    r.begin_reload([0, 1])
    r.step()
    assert w.slots[0].successor == 200 and w.stopped == []
    r.step()  # not ready yet: the old worker keeps accepting
    assert w.stopped == [] and w.slots[0].pid == 100
    w.ready.add(200)
    r.step()
    assert w.slots[0].pid == 200 and w.slots[0].successor is None and w.stopped == [(100, signal.SIGTERM)]
    r.step()  # the old worker is still draining: slot 1 waits
    assert w.slots[1].successor is None
    w.running.discard(100)
    r.step()
    assert done == [1] and w.slots[1].successor == 201
    w.ready.add(201)
    r.step()
    w.running.discard(101)
    r.step()
    assert not r.busy and notifier.said == ["RELOADING=1", "READY=1 2/2 workers ready"]


def test_a_successor_not_ready_in_time_is_killed_and_the_reload_aborted() -> None:
    w = FakeWorkforce.of(1)
    r, notifier, _ = rolling(w, worker_boot_timeout=0.0)
    r.begin_reload([0])
    r.step()
    r.step()
    assert (200, signal.SIGKILL) in w.stopped and not r.busy
    assert w.slots[0].pid == 100 and notifier.said[-1].startswith("READY=1 reload failed")


def test_a_recycle_under_way_becomes_the_first_step_of_a_reload() -> None:
    w = FakeWorkforce.of(2)
    r, _, _ = rolling(w)
    r.begin_recycle(1)
    r.step()
    assert w.slots[1].successor == 200 and not r.reloading
    r.begin_reload([0, 1])
    assert r.reloading and list(r.current.queue) == [0]  # type: ignore[union-attr]
    r.begin_recycle(0)  # ignored: one replacement at a time
    assert r.current is not None and r.current.kind == "reload"
