"""Rolling replacement of workers, one slot at a time.

A HUP reloads every slot; the memory watch recycles one bloated worker. Both
take the same steps per slot: fork the successor into the slot (it accepts
on the same socket), wait until it reports ready, then SIGTERM the old
worker, which hands its sessions over and exits; only then the next slot.
A successor that dies or is not ready in ``worker_boot_timeout`` aborts the
reload and the old worker keeps serving.

:class:`RollingReload` is the :class:`~supervisor.arbiter.Arbiter`'s share of
this: the arbiter calls :meth:`~RollingReload.step_reload` on every loop turn
while :attr:`reload` is set.
"""

from __future__ import annotations

import collections
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vango_mp.memory import detect_budget
from vango_mp.settings import Settings

from .config import ConfigError
from .hub import Hub
from .memwatch import MemoryWatch
from .notify import Notifier
from .slots import Slot, Worker

log = logging.getLogger("vango_mp.supervisor")


@dataclass
class Reload:
    """Progress of a rolling reload (HUP), or of recycling one bloated worker: one slot at a time."""

    queue: collections.deque[int]  # slots still to replace
    kind: str = "reload"  # or "recycle" (memwatch: RSS stayed above max_worker_rss)
    slot: int = -1  # the slot being replaced now
    successor: int | None = None  # forked, not yet ready
    old: int | None = None  # told to stop, not yet exited
    since: float = field(default_factory=time.monotonic)


class RollingReload:
    """The reload and recycle steps of the arbiter (mixed into it; it provides what is declared here)."""

    settings: Settings
    reload_settings: Callable[[], Settings] | None
    notifier: Notifier
    memwatch: MemoryWatch
    hub: Hub | None
    slots: list[Slot]
    workers: dict[int, Worker]
    stopping: bool
    reload: Reload | None

    if TYPE_CHECKING:  # the arbiter's own methods these steps call
        def slot_of(self, index: int) -> Slot | None: ...
        def spawn_worker(self, slot: Slot, *, successor: bool = False) -> int: ...
        def stop_worker(self, pid: int | None, sig: int, deadline: float) -> None: ...
        def is_ready(self, pid: int | None) -> bool: ...
        def status_line(self) -> str: ...

    def begin_reload(self) -> None:
        """HUP: re-read the config, then replace each slot's worker in turn (a recycle becomes its first step)."""
        if self.stopping or (self.reload is not None and self.reload.kind == "reload"):
            log.warning("HUP ignored: %s", "stopping" if self.stopping else "a reload is in progress")
            return
        try:
            self.apply_new_settings()
        except ConfigError as exc:
            log.error("HUP: keeping the old config: %s", exc)
            return
        self.notifier.reloading()
        queue = collections.deque(s.index for s in self.slots if not s.retiring)
        if self.reload is not None:
            self.reload.kind, self.reload.queue = "reload", collections.deque(i for i in queue if i != self.reload.slot)
        else:
            self.reload = Reload(queue)
        log.info("rolling reload of %d slots", len(self.reload.queue))

    def apply_new_settings(self) -> None:
        if self.reload_settings is None:
            return
        new = self.reload_settings()
        for key in ("bind", "app", "workers", "runtime_dir"):
            if getattr(new, key) != getattr(self.settings, key):
                log.warning("HUP: %s changed; that takes a restart", key)
                setattr(new, key, getattr(self.settings, key))
        self.settings = new
        self.memwatch = MemoryWatch(new, detect_budget(new.memory_budget))

    def step_reload(self) -> None:
        """Advance: spawn the successor, wait until it is ready, stop the old one, next slot."""
        r = self.reload
        assert r is not None
        if r.successor is not None:
            return self.promote_successor(r)
        if r.old is not None and r.old in self.workers:
            return  # one slot at a time: the old worker is still draining
        r.old = None
        while r.queue:
            slot = self.slot_of(r.queue.popleft())
            # Skip slots that are gone, retiring, or respawning anyway (with the new settings).
            if slot is not None and not slot.retiring and slot.pid is not None:
                r.slot, r.since = slot.index, time.monotonic()
                r.successor = self.spawn_worker(slot, successor=True)
                return
        self.finish_reload()

    def promote_successor(self, r: Reload) -> None:
        """Once the successor is ready, it owns the slot and the old worker drains."""
        slot = self.slot_of(r.slot)
        assert slot is not None and r.successor is not None
        if self.is_ready(r.successor):
            r.old, slot.pid, slot.successor, r.successor = slot.pid, r.successor, None, None
            self.stop_worker(r.old, signal.SIGTERM, time.monotonic() + self.settings.graceful_timeout)
            log.info("reload: slot %d now served by pid %d", slot.index, slot.pid)
        elif time.monotonic() - r.since > self.settings.worker_boot_timeout:
            self.stop_worker(r.successor, signal.SIGKILL, time.monotonic())
            self.abort_reload(f"replacement in slot {slot.index} not ready in time")

    def abort_reload(self, reason: str) -> None:
        if self.reload is None:
            return
        log.error("%s aborted: %s", self.reload.kind, reason)
        if self.reload.kind == "reload":
            self.notifier.ready(f"reload failed: {reason}")
        self.reload = None

    def finish_reload(self) -> None:
        kind, self.reload = self.reload.kind if self.reload else "reload", None
        if kind == "recycle":
            log.info("worker recycled")
            return
        log.info("rolling reload complete")
        self.notifier.ready(self.status_line())

    def check_memory(self) -> None:
        """Tell workers the machine-level memory pressure; recycle one whose RSS stays too high."""
        if self.hub is None or self.stopping:
            return
        slot = self.memwatch.check(self.hub, [s for s in self.slots if not s.retiring], time.monotonic(),
                                   can_recycle=self.reload is None)
        if slot is not None:
            self.reload = Reload(collections.deque([slot.index]), kind="recycle")
