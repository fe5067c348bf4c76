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


# -- proxies and hosts -------------------------------------------------------

class FakeRequest:
    def __init__(self, remote_ip: str, headers: dict[str, str] | None = None, protocol: str = "http",
                 host: str = "app.example") -> None:
        self.remote_ip, self.protocol, self.host = remote_ip, protocol, host
        self.headers = headers or {}


def test_forwarded_proto_only_from_a_trusted_proxy() -> None:
    https = {"X-Forwarded-Proto": "https"}
    assert security.request_scheme(FakeRequest("10.0.0.9", https), ["10.0.0.0/8"]) == "https"
    assert security.request_scheme(FakeRequest("10.0.0.9", https), []) == "http"
    assert security.request_scheme(FakeRequest("8.8.8.8", https), ["10.0.0.0/8"]) == "http"
    assert security.request_scheme(FakeRequest("10.0.0.9", {"X-Forwarded-Proto": "https, http"}),
                                   ["10.0.0.9"]) == "https"
    assert security.request_scheme(FakeRequest("10.0.0.9", {"X-Forwarded-Proto": "gopher"}), ["10.0.0.9"]) == "http"
    assert security.request_scheme(FakeRequest("8.8.8.8", protocol="https"), []) == "https"


def test_forwarded_host_and_origin_only_from_a_trusted_proxy() -> None:
    req = FakeRequest("10.0.0.9", {"X-Forwarded-Host": "Public.Example", "X-Forwarded-Proto": "https"})
    assert security.request_origin(req, ["10.0.0.0/8"]) == "https://public.example"
    assert security.request_origin(req, []) == "http://app.example"


@pytest.mark.parametrize("host, pattern, ok", [
    ("example.com", "example.com", True),
    ("Example.COM:8080", "example.com", True),
    ("example.com:8080", "example.com:8443", False),
    ("example.com:8443", "example.com:8443", True),
    ("a.example.com", "*.example.com", True),
    ("example.com", "*.example.com", False),
    ("evilexample.com", "*.example.com", False),
    ("example.com.evil", "example.com", False),
    ("[::1]:8080", "[::1]", True),
    ("example.com.", "example.com", True),
])
def test_host_patterns(host: str, pattern: str, ok: bool) -> None:
    assert security.host_matches(host, pattern) is ok


def test_host_policy_decisions() -> None:
    open_policy = security.HostPolicy([])
    assert open_policy.decide("anything:1", "GET") == "ok"
    policy = security.HostPolicy(["example.com", "www.example.com"])
    assert policy.decide("example.com", "POST") == "ok"
    assert policy.decide("rebound.attacker.test", "GET") == "refuse"
    canonical = security.HostPolicy(["example.com", "www.example.com"], "example.com")
    assert canonical.decide("www.example.com", "GET") == "redirect"
    assert canonical.decide("rebound.attacker.test", "HEAD") == "redirect"
    assert canonical.decide("rebound.attacker.test", "POST") == "refuse"
    assert canonical.decide("www.example.com", "POST") == "ok"
    assert canonical.decide("rebound.attacker.test", "GET", upgrade=True) == "refuse"
    assert canonical.decide("example.com", "GET") == "ok"


@pytest.mark.parametrize("pattern, ok", [
    ("example.com", True), ("*.example.com:8443", True), ("[::1]:80", True), ("127.0.0.1", True),
    ("exa mple.com", False), ("example.com/path", False), ("http://example.com", False), ("", False),
])
def test_host_pattern_validation(pattern: str, ok: bool) -> None:
    assert security.valid_host_pattern(pattern) is ok


# -- operational endpoints -------------------------------------------------------

def ops(req: FakeRequest, trusted: list[str] | None = None, networks: list[str] | None = None,
        token: str = "") -> bool:
    return security.ops_allowed(req, trusted_proxies=trusted or [], ops_networks=networks or [], ops_token=token)


def test_ops_from_loopback_only_by_default() -> None:
    assert ops(FakeRequest("127.0.0.1")) and ops(FakeRequest("::1"))
    assert not ops(FakeRequest("203.0.113.5"))


def test_ops_a_blind_local_proxy_is_not_loopback() -> None:
    """A local reverse proxy we were not told about forwards the world: not loopback."""
    assert not ops(FakeRequest("127.0.0.1", {"X-Forwarded-For": "203.0.113.5"}))
    assert not ops(FakeRequest("127.0.0.1", {"X-Real-IP": "203.0.113.5"}), networks=["0.0.0.0/0"])
    # Told about it: the client behind it decides.
    assert not ops(FakeRequest("127.0.0.1", {"X-Forwarded-For": "203.0.113.5"}), trusted=["127.0.0.1"])
    assert ops(FakeRequest("127.0.0.1", {"X-Forwarded-For": "203.0.113.5"}), trusted=["127.0.0.1"],
               networks=["203.0.113.0/24"])


def test_ops_token_and_networks() -> None:
    token = "t" * 24
    assert ops(FakeRequest("203.0.113.5", {"Authorization": f"Bearer {token}"}), token=token)
    assert not ops(FakeRequest("203.0.113.5", {"Authorization": "Bearer wrong"}), token=token)
    assert not ops(FakeRequest("203.0.113.5", {"Authorization": "Bearer "}), token="")
    assert ops(FakeRequest("10.1.2.3"), networks=["10.0.0.0/8"])
    assert not ops(FakeRequest("11.1.2.3"), networks=["10.0.0.0/8"])
