"""Memory budget, pressure levels and the per-worker MemoryMonitor.

The *budget* is the smallest of ``memory_budget`` (when set), the cgroup
limit (v2 ``memory.max`` of our cgroup or any ancestor; v1
``memory.limit_in_bytes`` as a fallback) and physical memory. Workers share
it: a worker's *share* is budget / number of workers until the supervisor's
``memory.pressure`` broadcast says otherwise (it knows how many slots run).

Each worker reads its own RSS (psutil ``memory_info()``, a cheap
``/proc/self/statm`` read) every ``memory_interval`` seconds and places it on
the reference's MemoryPressureLevel scale, with thresholds as fractions of its
share (``memory_*_ratio``)::

    level     RSS r against the share S           default
    none      r < soft                            soft     = 0.80 * S
    low       soft <= r < hard                    hard     = 0.90 * S
    high      hard <= r < critical                critical = 0.95 * S
    critical  r >= critical (near the OOM killer)

What a worker does at each level is :mod:`vango_mp.pressure`'s job; this
module only measures. RSS counts pages shared with the supervisor (the
preloaded app) in every worker, so the sum over workers overstates the
machine's use a little: a safe error for a budget.

What a worker *owns* -- its USS, pages no other process maps -- is what the
supervisor recycles on (:class:`OwnedMemory`): a fresh worker's RSS is
mostly the preloaded app it shares with the template, its USS is small.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import enum
import logging
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from .settings import Settings

log = logging.getLogger("vango_mp.memory")

# cgroup v1 reports "no limit" as a huge page-rounded number (2**63 - 4096 on x86-64).
UNLIMITED_V1 = 1 << 62
_MIB = 1024 * 1024


class PressureLevel(enum.IntEnum):
    """The reference's MemoryPressureLevel; ``str()`` is the lower-case name used on the wire."""

    NONE = 0  # below soft
    LOW = 1  # between soft and hard
    HIGH = 2  # above hard
    CRITICAL = 3  # near OOM

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, name: object) -> PressureLevel:
        """The level named ``name`` (``"high"``); NONE for anything unknown."""
        try:
            return cls[str(name).upper()]
        except KeyError:
            return cls.NONE


@dataclass(frozen=True, slots=True)
class Budget:
    """Bytes the whole server may use, and where that figure came from."""

    bytes: int
    source: str


@dataclass(frozen=True, slots=True)
class Thresholds:
    """A worker's share of the budget and the byte thresholds of each level."""

    share: int
    soft: int
    hard: int
    critical: int

    @classmethod
    def of(cls, share: int, settings: Settings) -> Thresholds:
        """Thresholds of ``share`` bytes with the configured ratios."""
        return cls(
            share,
            int(share * settings.memory_soft_ratio),
            int(share * settings.memory_hard_ratio),
            int(share * settings.memory_critical_ratio),
        )

    def level(self, rss: int) -> PressureLevel:
        """The pressure level of ``rss`` bytes."""
        if rss >= self.critical:
            return PressureLevel.CRITICAL
        if rss >= self.hard:
            return PressureLevel.HIGH
        if rss >= self.soft:
            return PressureLevel.LOW
        return PressureLevel.NONE


@dataclass(frozen=True, slots=True)
class Sample:
    """One RSS reading and its level."""

    rss: int
    level: PressureLevel
    at: float  # time.monotonic()


# ---------------------------------------------------------------- the budget


def detect_budget(configured: int = 0, *, cgroup_root: str = "/sys/fs/cgroup",
                  proc_cgroup: str = "/proc/self/cgroup") -> Budget:
    """The smallest of ``configured`` (0 = not set), the cgroup limit and physical memory."""
    candidates = [Budget(psutil.virtual_memory().total, "physical memory")]
    limit = cgroup_limit(cgroup_root, proc_cgroup)
    if limit is not None:
        candidates.append(limit)
    if configured > 0:
        candidates.append(Budget(configured, "memory_budget"))
    return min(candidates, key=lambda b: b.bytes)


def cgroup_limit(cgroup_root: str = "/sys/fs/cgroup", proc_cgroup: str = "/proc/self/cgroup") -> Budget | None:
    """Our cgroup's memory limit (v2 first, then v1), or None when unlimited or unknown."""
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:  # not Linux, or /proc not mounted
        return None
    paths: dict[str, str] = {}
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            paths["v2"] = path
        elif "memory" in controllers.split(","):
            paths["v1"] = path
    root = Path(cgroup_root)
    if "v2" in paths:
        # Hybrid hierarchies mount the v2 tree at .../unified.
        for mount in (root, root / "unified"):
            found = _walk_up(mount, paths["v2"], "memory.max")
            if found is not None:
                return Budget(found, f"cgroup v2 memory.max ({mount})")
    if "v1" in paths:
        found = _walk_up(root / "memory", paths["v1"], "memory.limit_in_bytes")
        if found is not None:
            return Budget(found, "cgroup v1 memory.limit_in_bytes")
    return None


def _walk_up(mount: Path, cgroup_path: str, name: str) -> int | None:
    """The smallest limit in ``name`` from our cgroup up to the mount's root.

    Inside a cgroup namespace (containers) /proc shows ``/`` and the mount is
    our own cgroup; without one, our path may be missing under a mount that
    shows only a sub-tree, so the walk starts at the deepest directory that exists.
    """
    if not mount.is_dir():
        return None
    here = mount / cgroup_path.strip("/")
    while not here.is_dir() and here != mount:
        here = here.parent
    smallest: int | None = None
    while True:
        value = _read_limit(here / name)
        if value is not None and (smallest is None or value < smallest):
            smallest = value
        if here == mount:
            return smallest
        here = here.parent


def _read_limit(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if not text.isdigit():  # "max" (v2): no limit
        return None
    value = int(text)
    return value if 0 < value < UNLIMITED_V1 else None


def worker_count(settings: Settings) -> int:
    """How many workers share the budget before the supervisor says."""
    return settings.worker_count()


# ---------------------------------------------------------------- process helpers


def process_rss() -> Callable[[], int]:
    """A function returning this process's RSS in bytes."""
    process = psutil.Process()
    return lambda: process.memory_info().rss


def process_uss() -> Callable[[], int]:
    """A function returning the memory this process owns (USS), in bytes; RSS where USS is unreadable.

    USS (psutil ``memory_full_info()``) sums the private pages of every
    mapping from ``/proc/self/smaps_rollup``: a page walk, ~0.3 ms for a
    small worker and more for a big one, so read it every few seconds, not per event.
    """
    process = psutil.Process()

    def read() -> int:
        try:
            return int(process.memory_full_info().uss)
        except (psutil.Error, AttributeError):  # no smaps (not Linux, or hidden /proc)
            return int(process.memory_info().rss)

    return read


class OwnedMemory:
    """This process's USS, re-read when the last reading is older than ``max_age`` seconds."""

    def __init__(self, max_age: float, *, read: Callable[[], int] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self.read = read or process_uss()
        self.clock = clock
        self.value = 0
        self.at = float("-inf")

    def __call__(self) -> int:
        now = self.clock()
        if now - self.at >= self.max_age:
            self.value, self.at = self.read(), now
        return self.value


def _load_malloc_trim() -> Callable[[int], int] | None:
    if platform.libc_ver()[0] != "glibc":  # musl and others have no malloc_trim
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


_malloc_trim = _load_malloc_trim()


def trim_heap() -> bool:
    """Return free heap pages to the OS (glibc ``malloc_trim(0)``); False where unavailable.

    CPython hands objects over 512 bytes to malloc; once freed, glibc keeps
    their pages mapped (so RSS stays up) until the top of the heap is free or
    ``malloc_trim`` releases the free pages in the middle of it.
    """
    if _malloc_trim is None:
        return False
    _malloc_trim(0)
    return True


# ---------------------------------------------------------------- the monitor


class MemoryMonitor:
    """Reads this worker's RSS every ``interval`` seconds and hands each reading to ``on_check``.

    ``on_check(sample)`` acts on the reading and may return the sample taken
    after its actions, which becomes :attr:`last`. ``interval`` 0 turns the
    timer off (:meth:`force_check` still works). Runs on the asyncio loop that
    is current when :meth:`start` is called; never from another thread.
    """

    def __init__(self, thresholds: Thresholds, *, interval: float,
                 on_check: Callable[[Sample], Sample | None] | None = None,
                 rss: Callable[[], int] | None = None) -> None:
        self.thresholds = thresholds
        self.interval = interval
        self.on_check = on_check
        self.measure: Callable[[], int] = rss or process_rss()
        self.last = Sample(0, PressureLevel.NONE, time.monotonic())
        self.paused = False
        self._timer: asyncio.TimerHandle | None = None

    @property
    def level(self) -> PressureLevel:
        """The level after the last check's actions."""
        return self.last.level

    def start(self) -> None:
        """Check now, then every ``interval`` seconds."""
        self.stop()
        self._tick()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def pause(self) -> None:
        """Skip the timer's checks until :meth:`resume` (e.g. while the worker stops)."""
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def set_share(self, thresholds: Thresholds) -> None:
        """New thresholds (the supervisor changed this worker's share)."""
        if thresholds != self.thresholds:
            log.info("memory share now %d MiB (hard limit %d MiB)", thresholds.share // _MIB, thresholds.hard // _MIB)
        self.thresholds = thresholds

    def force_check(self) -> Sample:
        """Read RSS and act on it now, paused or not; the reading after the actions."""
        rss = self.measure()
        sample = Sample(rss, self.thresholds.level(rss), time.monotonic())
        after = self.on_check(sample) if self.on_check is not None else None
        self._record(after or sample)
        return self.last

    def _record(self, sample: Sample) -> None:
        before, self.last = self.last.level, sample
        if sample.level != before:
            say = log.warning if sample.level > before else log.info
            say("memory pressure %s -> %s: RSS %d MiB, soft %d MiB, hard %d MiB", before, sample.level,
                sample.rss // _MIB, self.thresholds.soft // _MIB, self.thresholds.hard // _MIB)

    def _tick(self) -> None:
        self._timer = None
        try:
            if not self.paused:
                self.force_check()
        except Exception:  # a failed check must not stop the next one
            log.exception("memory check failed")
        if self.interval > 0:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self._tick)
