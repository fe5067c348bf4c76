"""vango_mp.memory: levels, thresholds, the budget (cgroup v2/v1, physical) and the monitor."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psutil
import pytest

from supervisor.cli import build_parser, flag_values
from supervisor.config import ConfigError, load_settings
from vango_mp.memory import (Budget, MemoryMonitor, PressureLevel, Sample, Thresholds, cgroup_limit,
                             detect_budget, trim_heap, worker_count)
from vango_mp.settings import Settings

MIB = 1024 * 1024


def test_levels_are_the_reference_names_in_order() -> None:
    assert [str(level) for level in PressureLevel] == ["none", "low", "high", "critical"]
    assert PressureLevel.NONE < PressureLevel.LOW < PressureLevel.HIGH < PressureLevel.CRITICAL
    assert PressureLevel.parse("high") is PressureLevel.HIGH
    assert PressureLevel.parse("bogus") is PressureLevel.NONE


def test_thresholds_are_fractions_of_the_share_and_bound_each_level() -> None:
    t = Thresholds.of(100 * MIB, Settings())
    assert (t.soft, t.hard, t.critical) == (80 * MIB, 90 * MIB, 95 * MIB)
    assert t.level(t.soft - 1) is PressureLevel.NONE
    assert t.level(t.soft) is PressureLevel.LOW
    assert t.level(t.hard) is PressureLevel.HIGH
    assert t.level(t.critical) is PressureLevel.CRITICAL


def fake_cgroup(tmp: Path, proc_line: str, files: dict[str, str]) -> tuple[str, str]:
    tmp.mkdir(parents=True, exist_ok=True)
    proc = tmp / "cgroup"
    proc.write_text(proc_line + "\n")
    root = tmp / "fs"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(root), str(proc)


def test_cgroup_v2_limit_is_the_smallest_on_the_way_up(tmp_path: Path) -> None:
    root, proc = fake_cgroup(tmp_path, "0::/app/worker", {
        "memory.max": "max", "app/memory.max": str(512 * MIB), "app/worker/memory.max": "max",
    })
    assert cgroup_limit(root, proc) == Budget(512 * MIB, f"cgroup v2 memory.max ({root})")


def test_cgroup_v2_in_a_namespace_reads_the_mount_root(tmp_path: Path) -> None:
    # Inside a cgroup namespace /proc says "/" and the mount is our own cgroup.
    root, proc = fake_cgroup(tmp_path, "0::/", {"memory.max": str(300 * MIB)})
    assert cgroup_limit(root, proc).bytes == 300 * MIB  # type: ignore[union-attr]


def test_cgroup_v2_path_missing_under_the_mount_walks_from_what_exists(tmp_path: Path) -> None:
    root, proc = fake_cgroup(tmp_path, "0::/not/visible/here", {"memory.max": str(200 * MIB)})
    assert cgroup_limit(root, proc).bytes == 200 * MIB  # type: ignore[union-attr]


def test_cgroup_v1_fallback_and_its_unlimited_value(tmp_path: Path) -> None:
    root, proc = fake_cgroup(tmp_path, "4:memory:/job", {"memory/job/memory.limit_in_bytes": str(256 * MIB)})
    assert cgroup_limit(root, proc) == Budget(256 * MIB, "cgroup v1 memory.limit_in_bytes")
    root, proc = fake_cgroup(tmp_path / "u", "4:cpuacct,memory:/job",
                             {"memory/job/memory.limit_in_bytes": "9223372036854771712"})
    assert cgroup_limit(root, proc) is None


def test_hybrid_hierarchy_reads_v2_under_unified(tmp_path: Path) -> None:
    root, proc = fake_cgroup(tmp_path, "0::/svc", {"unified/svc/memory.max": str(128 * MIB)})
    assert cgroup_limit(root, proc).bytes == 128 * MIB  # type: ignore[union-attr]


def test_no_cgroup_information_means_no_limit(tmp_path: Path) -> None:
    assert cgroup_limit(str(tmp_path), str(tmp_path / "missing")) is None


def test_budget_is_the_smallest_of_flag_cgroup_and_physical(tmp_path: Path) -> None:
    physical = psutil.virtual_memory().total
    root, proc = fake_cgroup(tmp_path, "0::/", {"memory.max": str(physical // 2)})
    assert detect_budget(0, cgroup_root=root, proc_cgroup=proc).bytes == physical // 2
    assert detect_budget(64 * MIB, cgroup_root=root, proc_cgroup=proc) == Budget(64 * MIB, "memory_budget")
    assert detect_budget(physical * 4, cgroup_root=root, proc_cgroup=proc).bytes == physical // 2
    none_root, none_proc = fake_cgroup(tmp_path / "n", "0::/", {"memory.max": "max"})
    assert detect_budget(0, cgroup_root=none_root, proc_cgroup=none_proc) == Budget(physical, "physical memory")


def test_the_share_starts_as_budget_over_workers() -> None:
    assert worker_count(Settings(workers=3)) == 3
    assert worker_count(Settings(workers=0)) >= 1


def test_trim_heap_runs_or_says_it_cannot() -> None:
    assert trim_heap() in (True, False)


def test_force_check_reads_acts_and_records_the_level_after_the_actions() -> None:
    rss = [95 * MIB]
    seen: list[Sample] = []

    def act(sample: Sample) -> Sample:
        seen.append(sample)
        rss[0] = 50 * MIB
        return Sample(rss[0], PressureLevel.NONE, sample.at)

    monitor = MemoryMonitor(Thresholds.of(100 * MIB, Settings()), interval=0, on_check=act, rss=lambda: rss[0])
    after = monitor.force_check()
    assert seen[0].level is PressureLevel.CRITICAL and seen[0].rss == 95 * MIB
    assert after.level is PressureLevel.NONE and monitor.level is PressureLevel.NONE


def test_monitor_checks_every_interval_and_pause_skips_checks() -> None:
    async def go() -> tuple[int, int]:
        calls: list[float] = []
        monitor = MemoryMonitor(Thresholds.of(100 * MIB, Settings()), interval=0.01,
                                on_check=lambda s: calls.append(s.at) and None, rss=lambda: 10 * MIB)
        monitor.start()
        deadline = time.monotonic() + 5
        while len(calls) < 5 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        running = len(calls)
        monitor.pause()
        paused_at = len(calls)
        await asyncio.sleep(0.1)
        during_pause = len(calls) - paused_at
        monitor.resume()
        monitor.stop()
        return running, during_pause

    running, during_pause = asyncio.run(go())
    assert running >= 5 and during_pause == 0


def test_a_failing_check_does_not_stop_the_timer() -> None:
    async def go() -> int:
        calls: list[int] = []

        def boom(sample: Sample) -> Sample | None:
            calls.append(1)
            raise RuntimeError("oops")

        monitor = MemoryMonitor(Thresholds.of(100 * MIB, Settings()), interval=0.01, on_check=boom, rss=lambda: 1)
        monitor.start()
        deadline = time.monotonic() + 5
        while len(calls) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        monitor.stop()
        return len(calls)

    assert asyncio.run(go()) >= 3


def test_memory_flags_reach_the_settings() -> None:
    args = build_parser().parse_args([
        "--memory-budget", "256MiB", "--memory-interval", "100ms", "--max-detached", "50",
        "--resume-window", "2m", "--max-worker-rss", "96MiB",
    ])
    settings, sources = load_settings(flag_values(args), {}, None)
    assert settings.memory_budget == 256 * MIB and settings.memory_interval == pytest.approx(0.1)
    assert settings.max_detached == 50 and settings.resume_window == 120.0
    assert settings.max_worker_rss == 96 * MIB
    assert sources["memory_budget"] == "flag --memory-budget"


def test_ratios_must_be_ordered() -> None:
    with pytest.raises(ConfigError, match="memory_hard_ratio"):
        load_settings({}, {"VANGO_MEMORY_HARD_RATIO": "0.97"}, None)
    settings, _ = load_settings({}, {"VANGO_MEMORY_CRITICAL_RATIO": "0.99", "VANGO_MEMORY_RECYCLE_AFTER": "0"}, None)
    assert settings.memory_critical_ratio == 0.99 and settings.memory_recycle_after == 0.0
