"""Which session store the settings pick, and the store_url checks at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.config import ConfigError, load_settings, render_toml
from vango_mp.settings import Settings
from vango_mp.stores import open_store
from vango_mp.stores.redis import RedisStore
from vango_mp.stores.sqlite import SqliteStore

SECRET = "ab" * 32


def test_store_url_wins_then_state_dir_then_none(tmp_path: Path) -> None:
    assert open_store(Settings(), b"k" * 32) is None
    sqlite = open_store(Settings(state_dir=str(tmp_path)), b"k" * 32)
    assert isinstance(sqlite, SqliteStore) and sqlite.status() is None
    sqlite.close()
    redis = open_store(Settings(state_dir=str(tmp_path), store_url="redis://:pw@127.0.0.1:1/0"), b"k" * 32)
    assert isinstance(redis, RedisStore)
    assert redis.where == "redis://***@127.0.0.1:1/0"  # never the password in logs


def test_store_url_needs_a_redis_url_and_the_shared_secret() -> None:
    env = {"VANGO_STORE_URL": "redis://10.0.0.5:6379/0", "VANGO_PERSISTENCE_SECRET": SECRET}
    settings, sources = load_settings(env=env)
    assert settings.store_url == "redis://10.0.0.5:6379/0"
    assert "redis://" not in render_toml(settings, sources)  # --print-config hides it (it may hold a password)
    with pytest.raises(ConfigError, match="store_url.*persistence_secret"):
        load_settings(env={"VANGO_STORE_URL": "redis://10.0.0.5:6379/0"})
    with pytest.raises(ConfigError, match="store_url.*expected redis://"):
        load_settings(env={"VANGO_STORE_URL": "http://10.0.0.5/", "VANGO_PERSISTENCE_SECRET": SECRET})
