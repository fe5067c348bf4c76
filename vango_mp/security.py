"""CSRF tokens, the WebSocket origin policy, cookies, hosts and what proxies may tell us.

Secure by default, as the reference runtime: same-origin WebSocket check,
double-submit CSRF token signed with the supervisor's shared secret (so a
token minted by one worker validates on every other), Secure cookies on
secure requests. ``--dev`` turns the origin check and CSRF off.

Proxies: ``X-Forwarded-For``, ``X-Forwarded-Proto`` and ``X-Forwarded-Host``
are believed only from a peer in ``trusted_proxies`` (addresses or CIDRs).
Everything that asks "what did the browser use?" goes through
:func:`request_scheme`, :func:`request_host` and :func:`client_ip`:
the Secure flag of cookies, the same-origin check, redirects to the
canonical host, the client address that limits count.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Sequence
from typing import Any, Protocol
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


def _trusted(ip: str, trusted: Sequence[str]) -> bool:
    if not trusted:
        return False
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr in net for net in networks(tuple(trusted)))


@functools.lru_cache(maxsize=32)
def networks(specs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Parsed ``trusted_proxies``/``ops_networks`` entries (an address is a /32 or /128); ValueError if bad."""
    return tuple(ipaddress.ip_network(spec.strip(), strict=False) for spec in specs)


class _Request(Protocol):
    """What these helpers read of a request (``tornado.httputil.HTTPServerRequest`` has it)."""

    protocol: str
    host: str
    remote_ip: str | None
    headers: Any


def _forwarded(request: _Request, header: str, trusted_proxies: Sequence[str]) -> str | None:
    """The first value of a forwarding header, when the direct peer is a trusted proxy."""
    value = request.headers.get(header)
    if not value or not _trusted(request.remote_ip or "", trusted_proxies):
        return None
    # The first entry is what the client-facing proxy saw; ours append after it.
    first = value.split(",", 1)[0].strip()
    return first or None


def request_scheme(request: _Request, trusted_proxies: Sequence[str]) -> str:
    """``"https"`` or ``"http"``: how the browser reached us.

    TLS here, or ``X-Forwarded-Proto`` from a trusted proxy (a TLS proxy in
    front of plain-HTTP workers is the usual deployment).
    """
    if request.protocol == "https":
        return "https"
    proto = (_forwarded(request, "X-Forwarded-Proto", trusted_proxies) or "").lower()
    return proto if proto in ("http", "https") else request.protocol


def request_host(request: _Request, trusted_proxies: Sequence[str]) -> str:
    """The host (and port) the browser asked for: ``X-Forwarded-Host`` from a trusted proxy, else Host."""
    return (_forwarded(request, "X-Forwarded-Host", trusted_proxies) or request.host or "").lower()


def request_origin(request: _Request, trusted_proxies: Sequence[str]) -> str:
    """``scheme://host[:port]`` of the page the browser shows, for same-origin checks."""
    return f"{request_scheme(request, trusted_proxies)}://{request_host(request, trusted_proxies)}"


def is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


# -- operational endpoints -------------------------------------------------------

_FORWARDING = ("X-Forwarded-For", "X-Real-IP", "Forwarded")


def ops_allowed(request: _Request, *, trusted_proxies: Sequence[str], ops_networks: Sequence[str],
                ops_token: str) -> bool:
    """Whether a request may see health details and metrics.

    Yes with ``Authorization: Bearer <ops_token>``, or from a loopback
    client, or from a client in ``ops_networks``. The client is the address
    :func:`client_ip` resolves through trusted proxies; a request a loopback
    peer forwards *without* being a trusted proxy (a local nginx nobody told
    us about) counts as coming from outside, not from loopback.
    """
    if ops_token:
        scheme, _, given = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), ops_token.encode()):
            return True
    if local_client(request, trusted_proxies):
        return True
    if not ops_networks or _forwarded_blind(request, trusted_proxies):
        return False
    ip = client_ip(request.remote_ip or "", request.headers.get("X-Forwarded-For"), trusted_proxies)
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr in net for net in networks(tuple(ops_networks)))


def _forwarded_blind(request: _Request, trusted_proxies: Sequence[str]) -> bool:
    """Forwarding headers from a peer that is not a trusted proxy: we cannot tell who the client is."""
    return not _trusted(request.remote_ip or "", trusted_proxies) and any(request.headers.get(h) for h in _FORWARDING)


def local_client(request: _Request, trusted_proxies: Sequence[str]) -> bool:
    """The client is on this machine: a loopback address, not relayed by a proxy we were not told about."""
    ip = client_ip(request.remote_ip or "", request.headers.get("X-Forwarded-For"), trusted_proxies)
    return is_loopback(ip) and not _forwarded_blind(request, trusted_proxies)


# -- cookies -----------------------------------------------------------------------


class SecureCookiesRequired(Exception):
    """A cookie on a plain-HTTP request while secure cookies are required (reference ErrSecureCookiesRequired)."""


def strict_cookie_secure(request: _Request, *, trusted_proxies: Sequence[str], secure_cookies: bool,
                         dev: bool) -> bool:
    """Whether a strict cookie gets ``Secure``; raises :class:`SecureCookiesRequired` when it may not be set.

    https (here or at a trusted proxy): Secure. Plain HTTP: allowed without
    Secure under ``--dev``, with ``secure_cookies`` off, or from a loopback
    client (browsers treat localhost as a secure context); refused otherwise.
    """
    if request_scheme(request, trusted_proxies) == "https":
        return True
    if dev or not secure_cookies or local_client(request, trusted_proxies):
        return False
    raise SecureCookiesRequired(
        "secure cookies require HTTPS or trusted proxy headers: this request came over plain HTTP "
        "(serve over https, list the TLS proxy in trusted_proxies, or set secure_cookies = false)"
    )


# -- hosts ---------------------------------------------------------------------

_HOST_PATTERN = re.compile(r"^(\*\.)?(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*)(:\d{1,5})?$")


def split_host(host: str) -> tuple[str, int | None]:
    """``"Example.com:8080"`` -> ("example.com", 8080); ``"[::1]"`` -> ("[::1]", None)."""
    host = host.strip().lower()
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and (not name.startswith("[") or name.endswith("]")):
        return name.rstrip("."), int(port)
    return host.rstrip("."), None


def valid_host_pattern(pattern: str) -> bool:
    """An ``allowed_hosts`` entry: host, ``[v6]``, or ``*.domain``, each with an optional ``:port``."""
    return bool(_HOST_PATTERN.match(pattern.strip().lower()))


def host_matches(host: str, pattern: str) -> bool:
    """``pattern`` without a port matches any port; ``*.example.com`` matches its subdomains only."""
    name, port = split_host(host)
    p_name, p_port = split_host(pattern)
    if p_port is not None and p_port != port:
        return False
    if p_name.startswith("*."):
        return name.endswith(p_name[1:]) and len(name) > len(p_name) - 1
    return name == p_name


class HostPolicy:
    """``allowed_hosts`` and ``canonical_host``: which Host a request may name.

    With no ``allowed_hosts`` every Host is served (set them in production:
    a Host allow-list is what stops DNS rebinding). A host outside the list
    is refused (400), except that a GET/HEAD is redirected to
    ``canonical_host`` when one is set; an allowed host other than the
    canonical one is redirected there too (``www.`` to the bare domain).
    """

    OK, REDIRECT, REFUSE = "ok", "redirect", "refuse"

    def __init__(self, allowed: Sequence[str], canonical: str = "") -> None:
        self.allowed = tuple(a.strip().lower() for a in allowed)
        self.canonical = canonical.strip().lower()

    def allows(self, host: str) -> bool:
        if not self.allowed:
            return True
        if self.canonical and host_matches(host, self.canonical):
            return True
        return any(host_matches(host, pattern) for pattern in self.allowed)

    def decide(self, host: str, method: str, upgrade: bool = False) -> str:
        """OK, REDIRECT (to :attr:`canonical`) or REFUSE for a request naming ``host``."""
        allowed = self.allows(host)
        redirectable = bool(self.canonical) and method in ("GET", "HEAD") and not upgrade
        if redirectable and not host_matches(host, self.canonical):
            return self.REDIRECT
        return self.OK if allowed else self.REFUSE


def cookie_flags(secure_request: bool, secure_cookies: bool) -> dict[str, object]:
    """Cookie attributes: SameSite=Lax, Secure on secure requests when enabled.

    The CSRF cookie is read by no script (the token also travels in the
    page), so it stays HttpOnly.
    """
    flags: dict[str, object] = {"samesite": "Lax", "httponly": True, "path": "/"}
    if secure_cookies and secure_request:
        flags["secure"] = True
    return flags
