"""Sealed blobs: round trip, tamper, foreign id, stale schema, age, rotation, unserializable state."""

from __future__ import annotations

import time

import pytest

from vango_mp import persist
from vango_mp.persist import BlobRejected

KEY, OLD = b"k" * 32, b"o" * 32


def payload(**extra: object) -> dict:
    return {"id": "sid-1", "schema": "s1", "ts": time.time(), "signals": {"App/0": 3}, **extra}


def test_round_trip() -> None:
    blob = persist.seal(payload(), KEY)
    assert persist.unseal(blob, [KEY], session_id="sid-1", schema="s1")["signals"] == {"App/0": 3}


def test_previous_secret_still_accepted() -> None:
    blob = persist.seal(payload(), OLD)
    assert persist.unseal(blob, [KEY, OLD], session_id="sid-1", schema="s1")["id"] == "sid-1"


@pytest.mark.parametrize("flip", [5, 40, -1])
def test_tampered_blob_rejected(flip: int) -> None:
    blob = bytearray(persist.seal(payload(), KEY))
    blob[flip] ^= 0x01
    with pytest.raises(BlobRejected, match="tampered"):
        persist.unseal(bytes(blob), [KEY], session_id="sid-1", schema="s1")


def test_unknown_secret_rejected() -> None:
    with pytest.raises(BlobRejected, match="tampered"):
        persist.unseal(persist.seal(payload(), b"x" * 32), [KEY], session_id="sid-1", schema="s1")


def test_foreign_id_rejected() -> None:
    with pytest.raises(BlobRejected, match="foreign id"):
        persist.unseal(persist.seal(payload(), KEY), [KEY], session_id="sid-2", schema="s1")


def test_stale_schema_rejected() -> None:
    with pytest.raises(BlobRejected, match="stale schema"):
        persist.unseal(persist.seal(payload(), KEY), [KEY], session_id="sid-1", schema="s2")


def test_too_old_rejected() -> None:
    blob = persist.seal(payload(ts=time.time() - 100), KEY)
    with pytest.raises(BlobRejected, match="too old"):
        persist.unseal(blob, [KEY], session_id="sid-1", schema="s1", max_age=10)


@pytest.mark.parametrize("blob", [b"", b"VS1", b"junk" * 20, "text"])
def test_malformed_rejected(blob: object) -> None:
    with pytest.raises(BlobRejected):
        persist.unseal(blob, [KEY], session_id="sid-1", schema="s1")  # type: ignore[arg-type]


def test_unserializable_fails_loudly_in_debug() -> None:
    with pytest.raises(persist.Unserializable, match="'cb'.*function"):
        persist.portable({"ok": 1, "cb": lambda: None}, debug=True, what="session key")


def test_unserializable_reported_not_silently_dropped_in_production(caplog: pytest.LogCaptureFixture) -> None:
    from vango_mp import metrics

    before = metrics.counters[("vango_persist_dropped_total", (("what", "signal"),))]
    out = persist.portable({"ok": 1, "obj": object()}, debug=False, what="signal")
    assert out == {"ok": 1}
    assert "cannot be persisted" in caplog.text
    assert metrics.counters[("vango_persist_dropped_total", (("what", "signal"),))] == before + 1
