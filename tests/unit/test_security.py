"""CSRF tokens, origin policy and client-IP resolution."""

from __future__ import annotations

import pytest

from vango_mp import security


def test_csrf_token_verifies_only_with_matching_cookie_and_secret() -> None:
    token = security.mint_csrf(b"s" * 32)
    assert security.verify_csrf(b"s" * 32, token, token)
    assert not security.verify_csrf(b"s" * 32, token, None)
    assert not security.verify_csrf(b"s" * 32, token, security.mint_csrf(b"s" * 32))
    assert not security.verify_csrf(b"t" * 32, token, token)
    assert not security.verify_csrf(b"s" * 32, "garbage", "garbage")


@pytest.mark.parametrize(
    "origin, host, scheme, ok",
    [
        (None, "a.com", "http", True),
        ("http://a.com", "a.com", "http", True),
        ("http://A.com:80", "a.com", "http", True),
        ("https://a.com", "a.com", "http", False),
        ("http://a.com:8080", "a.com", "http", False),
        ("http://evil.com", "a.com", "http", False),
        ("http://a.com/path", "a.com", "http", False),
        ("null", "a.com", "http", False),
    ],
)
def test_same_origin(origin: str | None, host: str, scheme: str, ok: bool) -> None:
    assert security.origin_allowed(origin, host, scheme, []) is ok


def test_allowlisted_origin() -> None:
    assert security.origin_allowed("https://app.example:443", "api.example", "https", ["https://app.example"])


def test_forwarded_for_only_from_trusted_proxy() -> None:
    assert security.client_ip("10.0.0.9", "1.2.3.4", []) == "10.0.0.9"
    assert security.client_ip("10.0.0.9", "1.2.3.4", ["10.0.0.0/8"]) == "1.2.3.4"
    assert security.client_ip("10.0.0.9", "6.6.6.6, 1.2.3.4, 10.0.0.7", ["10.0.0.0/8"]) == "1.2.3.4"
    assert security.client_ip("8.8.8.8", "1.2.3.4", ["10.0.0.0/8"]) == "8.8.8.8"


def test_session_ids_are_long_and_redacted() -> None:
    sid = security.new_session_id()
    assert len(sid) >= 32 and security.redact(sid) != sid and len(security.redact(sid)) <= 8
