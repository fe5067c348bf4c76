"""The real ``vango-mp`` rejects bad configs (exit 2, one line, nothing forked); the unit file is sane."""

from __future__ import annotations

import os
import subprocess
import tomllib
from pathlib import Path

import pytest

from supervisor.config import parse_duration
from tests.conftest import ROOT, start_server, vango_command
from vango_mp.settings import Settings

pytestmark = pytest.mark.timeout(60)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*vango_command(), *args], capture_output=True, text=True, timeout=20,
                          env={**os.environ, **(env or {})}, cwd=ROOT)


@pytest.mark.parametrize("args,env,key", [
    (["--workers", "lots"], {}, "workers"),
    (["--bind", "nowhere"], {}, "bind"),
    (["--graceful-timeout", "forever"], {}, "graceful_timeout"),
    (["--app", "no_such_module_xyz:app"], {}, "app"),
    ([], {"VANGO_WOKRERS": "2"}, "VANGO_WOKRERS"),
    ([], {"VANGO_EVICTION_POLICY": "fifo"}, "eviction_policy"),
    (["--config", "/nonexistent/vango.toml"], {}, "config"),
])
def test_invalid_config_exits_2_with_one_line_and_forks_nothing(args: list[str], env: dict[str, str], key: str) -> None:
    bind = [] if "--bind" in args else ["--bind", "127.0.0.1:0"]  # never port 8080 should it start
    result = run_cli(*args, *bind, env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and key in result.stderr, result.stderr
    assert "spawned worker" not in result.stderr and result.stdout == ""


def test_an_unusable_state_dir_stops_the_start_with_exit_3(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = run_cli("--workers", "1", "--bind", "127.0.0.1:0", env={"VANGO_STATE_DIR": str(blocker / "state")})
    assert result.returncode == 3, result.stderr
    assert "cannot start" in result.stderr and "a-file" in result.stderr, result.stderr
    assert "spawned worker" not in result.stderr


def test_unknown_file_key_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('workers = 2\ngracefull_timeout = "10s"\n')
    result = run_cli("--config", str(path))
    assert result.returncode == 2 and "gracefull_timeout" in result.stderr


def test_print_config_shows_precedence(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text('workers = 3\ngraceful_timeout = "1m"\nmax_message_size = "128KiB"\n')
    result = run_cli("--config", str(path), "--workers", "4", "--print-config", env={"VANGO_GRACEFUL_TIMEOUT": "45s"})
    assert result.returncode == 0, result.stderr
    effective = tomllib.loads(result.stdout)
    assert (effective["workers"], effective["graceful_timeout"], effective["max_message_size"]) == (4, 45.0, 131072)


def unit_directives() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in (ROOT / "config" / "vango-mp.service").read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_systemd_unit_matches_the_runtime() -> None:
    d = unit_directives()
    expected = {"Type": "notify", "NotifyAccess": "main", "KillMode": "mixed", "Restart": "on-failure",
                "ExecReload": "/bin/kill -HUP $MAINPID", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
                "ProtectHome": "yes", "PrivateTmp": "yes", "RuntimeDirectory": "vango-mp",
                "StateDirectory": "vango-mp", "RuntimeDirectoryMode": "0700"}
    for key, value in expected.items():
        assert d.get(key) == [value], key
    assert parse_duration(d["TimeoutStopSec"][0]) > Settings().graceful_timeout
    assert parse_duration(d["WatchdogSec"][0]) >= 2 * Settings().worker_heartbeat
    assert d["User"] and d["User"] != ["root"]


def test_lone_serves_one_worker_in_process_with_the_config_precedence(tmp_path: Path) -> None:
    """``--lone``: no supervisor, no bus; flags > VANGO_* > TOML > defaults as for a supervised worker."""
    path = tmp_path / "lone.toml"
    path.write_text('memory_interval = "9s"\nmemory_budget = "300MiB"\nmemory_soft_ratio = 0.5\n')
    server = start_server("--lone", "--config", str(path), "--memory-interval", "7s",
                          env={"VANGO_MEMORY_BUDGET": "150MiB", "VANGO_MEMORY_INTERVAL": "8s"})
    try:
        health = server.health()
        assert health["pid"] == server.pid  # the worker is the process we started
        memory = health["memory"]
        assert memory["interval"] == 7.0  # flag over env over file
        assert memory["budget"] <= 150 * 1024 * 1024  # env over file (a smaller cgroup limit wins anyway)
        assert memory["share"] == memory["budget"]  # one worker: the whole budget
        assert memory["soft"] == int(memory["share"] * 0.5)  # from the file
        assert "spawned worker" not in server.output() and "supervisor pid" not in server.output()
    finally:
        assert server.stop() == 0


def test_lone_rejects_a_bad_app_with_exit_2() -> None:
    result = run_cli("--lone", "--app", "no_such_module_xyz:app", "--bind", "127.0.0.1:0")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "app" in result.stderr, result.stderr
