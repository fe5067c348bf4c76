"""CSRF tokens, the WebSocket origin policy, cookies and client-IP resolution.

Secure by default, as the reference runtime: same-origin WebSocket check,
double-submit CSRF token signed with the supervisor's shared secret (so a
token minted by one worker validates on every other), Secure cookies on
secure requests. ``--dev`` turns the origin check and CSRF off.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from urllib.parse import urlsplit

CSRF_COOKIE = "vango_csrf"
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_session_id() -> str:
    """A session id with 192 bits from ``secrets`` (never logged whole)."""
    return secrets.token_urlsafe(24)


def redact(session_id: str | None) -> str:
    """The loggable prefix of a session id."""
    return (session_id or "-")[:6] + "…"


def mint_csrf(secret: bytes) -> str:
    """A fresh token: random nonce plus its HMAC under the shared secret."""
    nonce = secrets.token_bytes(16)
    mac = hmac.new(secret, b"csrf:" + nonce, hashlib.sha256).digest()[:16]
    return f"{_b64(nonce)}.{_b64(mac)}"


def verify_csrf(secret: bytes, token: str, cookie: str | None) -> bool:
    """True when the token matches the cookie and carries a valid signature."""
    if not cookie or not hmac.compare_digest(token.encode(), cookie.encode()):
        return False
    try:
        nonce_s, mac_s = token.split(".", 1)
        nonce = base64.urlsafe_b64decode(nonce_s + "=" * (-len(nonce_s) % 4))
        mac = base64.urlsafe_b64decode(mac_s + "=" * (-len(mac_s) % 4))
    except ValueError:
        return False
    expected = hmac.new(secret, b"csrf:" + nonce, hashlib.sha256).digest()[:16]
    return hmac.compare_digest(mac, expected)


def normalize_origin(origin: str) -> tuple[str, str, int] | None:
    """(scheme, lowercase host, effective port), or None when not a bare origin."""
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    scheme = parts.scheme.lower()
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS.get(scheme, 0)


def origin_allowed(origin: str | None, host: str, scheme: str, allowed: list[str]) -> bool:
    """Same-origin check, plus an explicit allowlist.

    A request without an Origin header (non-browser clients) is allowed, as
    in the reference; a browser always sends one on WebSocket upgrades.
    """
    if origin is None:
        return True
    got = normalize_origin(origin)
    if got is None:
        return False
    if got == normalize_origin(f"{scheme}://{host}"):
        return True
    return any(got == normalize_origin(a) for a in allowed)


def client_ip(remote_ip: str, forwarded_for: str | None, trusted_proxies: list[str]) -> str:
    """The client address that limits count: X-Forwarded-For only via a trusted proxy."""
    if not forwarded_for or not _trusted(remote_ip, trusted_proxies):
        return remote_ip
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    # Walk from the nearest hop back, skipping our own proxies.
    for hop in reversed(hops):
        if not _trusted(hop, trusted_proxies):
            return hop
    return hops[0] if hops else remote_ip


def _trusted(ip: str, trusted: list[str]) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr in ipaddress.ip_network(net, strict=False) for net in trusted)


def cookie_flags(secure_request: bool, secure_cookies: bool) -> dict[str, object]:
    """Cookie attributes: SameSite=Lax, Secure on secure requests when enabled.

    The CSRF cookie is read by no script (the token also travels in the
    page), so it stays HttpOnly.
    """
    flags: dict[str, object] = {"samesite": "Lax", "httponly": True, "path": "/"}
    if secure_cookies and secure_request:
        flags["secure"] = True
    return flags
