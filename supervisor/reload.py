"""Rolling replacement of workers, one slot at a time.

A HUP reloads every slot; the memory watch recycles one bloated worker. Both
take the same steps per slot: fork the successor into the slot (it accepts
on the same socket), wait until it reports ready, then SIGTERM the old
worker, which hands its sessions over and exits; only then the next slot.
A successor that dies or is not ready in ``worker_boot_timeout`` aborts the
reload and the old worker keeps serving.

:class:`RollingReload` is owned by the :class:`~supervisor.arbiter.Arbiter`,
which calls :meth:`RollingReload.step` on every loop turn while one is
under way. It sees the arbiter's workers only through :class:`Workforce`
(structural: the arbiter itself satisfies it) and tells systemd through a
:class:`~supervisor.notify.Notifier`.
"""

from __future__ import annotations

import collections
import logging
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from vango_mp.settings import Settings

from .notify import Notifier
from .slots import Slot

log = logging.getLogger("vango_mp.supervisor")


class Workforce(Protocol):
    """What the reload steps need from whoever owns the slots and worker processes."""

    def slot_of(self, index: int) -> Slot | None: ...

    def spawn_worker(self, slot: Slot, *, successor: bool = False) -> int: ...

    def stop_worker(self, pid: int | None, sig: int, deadline: float) -> None: ...

    def is_ready(self, pid: int | None) -> bool: ...

    def is_running(self, pid: int) -> bool: ...


@dataclass
class Reload:
    """Progress of a rolling reload (HUP), or of recycling one bloated worker: one slot at a time."""

    queue: collections.deque[int]  # slots still to replace
    kind: str = "reload"  # or "recycle" (memwatch: owned memory stayed above max_worker_rss)
    slot: int = -1  # the slot being replaced now
    successor: int | None = None  # forked, not yet ready
    old: int | None = None  # told to stop, not yet exited
    since: float = field(default_factory=time.monotonic)


class RollingReload:
    """Replace the workers of some slots, one at a time, successor first."""

    def __init__(self, workforce: Workforce, notifier: Notifier, *, settings: Callable[[], Settings],
                 status_line: Callable[[], str], on_slot_done: Callable[[], object] = lambda: None) -> None:
        self.workforce = workforce
        self.notifier = notifier
        self.settings = settings  # read at each step: a HUP replaces the settings
        self.status_line = status_line  # the READY=1 status once a reload completes
        self.on_slot_done = on_slot_done  # an old worker has exited (its hand-over passed through the hub)
        self.current: Reload | None = None

    @property
    def busy(self) -> bool:
        return self.current is not None

    @property
    def reloading(self) -> bool:
        """A HUP reload (not a recycle) is under way."""
        return self.current is not None and self.current.kind == "reload"

    def begin_reload(self, slots: Iterable[int]) -> None:
        """Replace every slot in ``slots`` in turn; a recycle under way becomes the first step."""
        self.notifier.reloading()
        queue = collections.deque(slots)
        if self.current is not None:
            r = self.current
            r.kind, r.queue = "reload", collections.deque(i for i in queue if i != r.slot)
        else:
            self.current = Reload(queue)
        log.info("rolling reload of %d slots", len(self.current.queue))

    def begin_recycle(self, slot: int) -> None:
        """Replace the worker of one slot (the memory watch picked it)."""
        if self.current is None:
            self.current = Reload(collections.deque([slot]), kind="recycle")

    def cancel(self) -> None:
        """Forget the reload without a word (the supervisor is stopping)."""
        self.current = None

    def step(self) -> None:
        """Advance: spawn the successor, wait until it is ready, stop the old one, next slot."""
        r = self.current
        if r is None:
            return
        if r.successor is not None:
            return self.promote_successor(r)
        if r.old is not None:
            if self.workforce.is_running(r.old):
                return  # one slot at a time: the old worker is still draining
            r.old = None
            self.on_slot_done()
        while r.queue:
            slot = self.workforce.slot_of(r.queue.popleft())
            # Skip slots that are gone, retiring, or respawning anyway (with the new settings).
            if slot is not None and not slot.retiring and slot.pid is not None:
                r.slot, r.since = slot.index, time.monotonic()
                r.successor = self.workforce.spawn_worker(slot, successor=True)
                return
        self.finish()

    def promote_successor(self, r: Reload) -> None:
        """Once the successor is ready, it owns the slot and the old worker drains."""
        slot = self.workforce.slot_of(r.slot)
        assert slot is not None and r.successor is not None
        settings = self.settings()
        if self.workforce.is_ready(r.successor):
            r.old, slot.pid, slot.successor, r.successor = slot.pid, r.successor, None, None
            self.workforce.stop_worker(r.old, signal.SIGTERM, time.monotonic() + settings.graceful_timeout)
            log.info("%s: slot %d now served by pid %d", r.kind, slot.index, slot.pid)
        elif time.monotonic() - r.since > settings.worker_boot_timeout:
            self.workforce.stop_worker(r.successor, signal.SIGKILL, time.monotonic())
            self.abort(f"replacement in slot {slot.index} not ready in time")

    def abort(self, reason: str) -> None:
        """The successor died or never got ready: the old worker keeps its slot."""
        if self.current is None:
            return
        log.error("%s aborted: %s", self.current.kind, reason)
        if self.current.kind == "reload":
            self.notifier.ready(f"reload failed: {reason}")
        self.current = None

    def finish(self) -> None:
        kind, self.current = self.current.kind if self.current else "reload", None
        if kind == "recycle":
            log.info("worker recycled")
            return
        log.info("rolling reload complete")
        self.notifier.ready(self.status_line())
