"""SessionStore: sealed blobs in SQLite, taken at most once, expired by the resume window."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from vango_mp import store as store_mod
from vango_mp.store import SessionStore, open_store


def test_take_returns_once(tmp_path: Path) -> None:
    st = SessionStore(str(tmp_path), ttl=60)
    st.save("a", "1.1.1.1", b"blob-a")
    assert st.take("a") == b"blob-a"
    assert st.take("a") is None
    assert st.take("never") is None


def test_two_handles_share_the_file(tmp_path: Path) -> None:
    one, two = SessionStore(str(tmp_path), ttl=60), SessionStore(str(tmp_path), ttl=60)
    assert one.save_many([("a", "ip", b"A"), ("b", "ip", b"B")]) == 2
    assert two.take("b") == b"B" and one.take("b") is None and len(two) == 1


def test_expired_blobs_are_not_returned_and_purged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    st = SessionStore(str(tmp_path), ttl=10)
    st.save("old", "ip", b"x")
    st.save("older", "ip", b"y")
    later = time.time() + 11
    monkeypatch.setattr(store_mod.time, "time", lambda: later)
    assert st.take("old") is None
    assert st.purge() == 1 and len(st) == 0


def test_file_is_private(tmp_path: Path) -> None:
    SessionStore(str(tmp_path / "state"), ttl=1)
    assert (tmp_path / "state" / "sessions.sqlite3").stat().st_mode & 0o077 == 0


def test_no_state_dir_means_no_store(tmp_path: Path) -> None:
    assert open_store(None, 1) is None
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert open_store(str(blocker), 1) is None  # logged, server runs in memory only
