"""Config loading: precedence, value formats, and one-line errors naming the key."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from supervisor import cli
from supervisor.config import (FIELDS, ConfigError, load_settings, parse_bind, parse_duration,
                               parse_size, render_toml)
from vango_mp.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "vango.toml"
    path.write_text(text)
    return str(path)


def test_defaults_without_any_source() -> None:
    settings, sources = load_settings({}, {}, None)
    assert settings == Settings()
    assert set(sources.values()) == {"default"}


def test_precedence_flag_over_env_over_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'workers = 3\nbind = "0.0.0.0:9000"\ngraceful_timeout = "1m"\n')
    env = {"VANGO_WORKERS": "5", "VANGO_BIND": "127.0.0.1:7000"}
    settings, sources = load_settings({"workers": "7"}, env, path)
    assert settings.workers == 7 and sources["workers"] == "flag --workers"
    assert settings.bind == "127.0.0.1:7000" and sources["bind"] == "env VANGO_BIND"
    assert settings.graceful_timeout == 60.0 and sources["graceful_timeout"].startswith("file ")


def test_vango_config_env_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "workers = 4\n")
    assert load_settings({}, {"VANGO_CONFIG": path}, None)[0].workers == 4


@pytest.mark.parametrize("text,seconds", [("30", 30.0), ("250ms", 0.25), ("30s", 30.0), ("5m", 300.0),
                                          ("1.5h", 5400.0), (" 2 s ", 2.0)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text,size", [("65536", 65536), ("64KiB", 65536), ("512MiB", 512 * 2**20),
                                       ("1GB", 10**9), ("2k", 2048)])
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_env_values_are_parsed_by_type() -> None:
    env = {"VANGO_DEV": "yes", "VANGO_ALLOWED_ORIGINS": "https://a.example, https://b.example",
           "VANGO_MAX_MESSAGE_SIZE": "1MiB", "VANGO_LOG_FILE": "", "VANGO_MEMORY_SOFT_RATIO": "0.5"}
    settings, _ = load_settings({}, env, None)
    assert settings.dev is True
    assert settings.allowed_origins == ["https://a.example", "https://b.example"]
    assert settings.max_message_size == 2**20
    assert settings.log_file is None and settings.memory_soft_ratio == 0.5


@pytest.mark.parametrize("flags,env,text,key", [
    ({}, {}, "wrokers = 2\n", "wrokers"),                                  # unknown file key
    ({}, {"VANGO_WROKERS": "2"}, "", "VANGO_WROKERS"),                     # unknown env key
    ({"workers": "two"}, {}, "", "workers"),
    ({}, {}, 'graceful_timeout = "soon"\n', "graceful_timeout"),
    ({}, {}, "dev = 1\n", "dev"),                                          # TOML needs a real boolean
    ({}, {}, 'max_message_size = "lots"\n', "max_message_size"),
    ({}, {"VANGO_BIND": "localhost"}, "", "bind"),
    ({}, {}, 'eviction_policy = "fifo"\n', "eviction_policy"),
    ({}, {}, "memory_soft_ratio = 0.95\n", "memory_soft_ratio"),           # above the hard ratio
    ({}, {}, "workers = -1\n", "workers"),
    ({}, {}, "[server]\nworkers = 2\n", "server"),                         # tables are not keys
])
def test_invalid_config_names_the_key(tmp_path: Path, flags: dict, env: dict, text: str, key: str) -> None:
    path = write(tmp_path, text) if text else None
    with pytest.raises(ConfigError) as info:
        load_settings(flags, env, path)
    assert info.value.key == key
    assert "\n" not in str(info.value) and key in str(info.value)


def test_missing_or_malformed_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config"):
        load_settings({}, {}, str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings({}, {}, write(tmp_path, "workers = \n"))


def test_print_config_round_trips(tmp_path: Path) -> None:
    settings, sources = load_settings({"workers": "3", "graceful_timeout": "2m"}, {"VANGO_DEV": "1"}, None)
    text = render_toml(settings, sources)
    again, _ = load_settings({}, {}, write(tmp_path, text))
    assert again == settings
    assert "# flag --workers" in text and "# env VANGO_DEV" in text


def test_shipped_toml_documents_every_key_with_its_default() -> None:
    text = (ROOT / "config" / "vango-mp.toml").read_text()
    documented = {line.lstrip("# ").split(" ")[0] for line in text.splitlines()
                  if line.lstrip("# ").split(" ")[0] in FIELDS}
    assert documented == set(FIELDS)
    settings, _ = load_settings({}, {}, str(ROOT / "config" / "vango-mp.toml"))
    assert settings == Settings()
    assert dataclasses.asdict(settings).keys() <= tomllib.loads(text).keys() | {"log_file", "runtime_dir", "state_dir"}


@pytest.mark.parametrize("bind,expected", [("127.0.0.1:8080", ("127.0.0.1", 8080)), ("[::1]:0", ("::1", 0)),
                                           (":80", ("0.0.0.0", 80))])
def test_parse_bind(bind: str, expected: tuple[str, int]) -> None:
    assert parse_bind(bind) == expected


def test_cli_rejects_bad_config_with_exit_2_and_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--workers", "-3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "workers" in err


def test_cli_unknown_flag_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--wrokers", "2"])
    assert info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_cli_unloadable_app_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--app", "no_such_module_xyz:app"]) == 2
    assert "app (flag --app)" in capsys.readouterr().err


def test_cli_print_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--print-config", "--workers", "2", "--dev"]) == 0
    out = capsys.readouterr().out
    assert tomllib.loads(out)["workers"] == 2 and tomllib.loads(out)["dev"] is True


def test_secrets_must_be_hex_and_are_never_printed() -> None:
    with pytest.raises(ConfigError, match="persistence_secret"):
        load_settings({}, {"VANGO_PERSISTENCE_SECRET": "not-hex"}, None)
    with pytest.raises(ConfigError, match="persistence_secret_previous.*at least 32 bytes.*got 1"):
        load_settings({}, {"VANGO_PERSISTENCE_SECRET_PREVIOUS": "ab"}, None)  # a 1-byte HMAC key
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        load_settings({}, {"VANGO_PERSISTENCE_SECRET": "ab" * 31}, None)
    settings, sources = load_settings({}, {"VANGO_PERSISTENCE_SECRET": "ab" * 32}, None)
    text = render_toml(settings, sources)
    assert "ab" * 32 not in text and "persistence_secret = (set, not shown)" in text
