"""The HTTP side of an app: its own routes, middleware, responses, and the CSRF token in forms.

Pages are components served over the live socket; everything else an app
needs over plain HTTP — JSON endpoints, OAuth callbacks, webhooks, form
posts — is an *app route*::

    @app.route("/api/items/{item_id}", methods=["GET", "DELETE"])
    async def item(request: Request) -> Response: ...

A route handler (sync or async) takes a :class:`Request` and returns a
:class:`Response`, or a dict/list (sent as JSON), a str (text), bytes, or
None (204). Middleware — callables ``(request, call_next) -> Response``,
usually ``async`` and awaiting ``call_next(request)``, listed in
``App(middleware=[...])`` outermost first — wrap every app route and every
page's server-side render (not ``/_vango/*``, not the WebSocket).

Unsafe methods (POST, PUT, PATCH, DELETE) are CSRF-checked before any
middleware runs: the request must carry this browser's token, in the form
field ``_csrf`` (:func:`csrf_input` renders it) or the ``X-CSRF-Token``
header, equal to its CSRF cookie (double submit, as the reference).
``csrf=False`` on a route exempts it (a webhook another server calls);
``--dev`` turns the check off.

Responses set status, headers and cookies, and redirect. Cookies follow the
reference's strict policy (``SetCookieStrict``): HttpOnly and SameSite=Lax
unless asked otherwise, and Secure — on a plain-HTTP request the cookie is
refused with :class:`SecureCookiesRequired`, except with ``--dev``,
``secure_cookies = false`` or from a loopback client (local development:
browsers treat ``localhost`` as a secure context). :func:`redirect` goes to
relative paths only; ``redirect(url, external=True)`` goes to an absolute
URL whose host is in ``allowed_redirect_hosts`` (the reference's
``ValidateExternalRedirectURL``), and is refused otherwise.

A page can do the same while it renders on the server: :func:`use_response`
gives the response of the server-side render (None in a live session), and
:func:`use_request` the request.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union
from urllib.parse import urlsplit, urlunsplit

import tornado.httputil

from .security import SecureCookiesRequired, host_matches
from .vdom import Node, h, use_context

CSRF_FIELD = "_csrf"  # form field carrying the token
CSRF_HEADER = "X-CSRF-Token"  # header carrying the token (fetch/XHR)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
METHODS = frozenset({"GET", "HEAD", "OPTIONS", *UNSAFE_METHODS})
RESERVED_PREFIX = "/_vango/"
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SAMESITE = ("Lax", "Strict", "None")
_CONTROL = re.compile(r"[\x00-\x20\x7f\\]")  # in a redirect target: encode spaces, never a backslash


class RedirectNotAllowed(ValueError):
    """A redirect to a URL the policy refuses (absolute without ``external=True``, or a host not allowed)."""


# -- requests ----------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class Request:
    """One HTTP request as an app route, a middleware or a page's server-side render sees it.

    ``headers`` is case-insensitive; ``query`` and ``form`` keep the first
    value of each name (``query_all``/``form_all`` every value). ``scheme``,
    ``host`` and ``client_ip`` are what the browser used and where it is,
    through trusted proxies. ``state`` is scratch space middleware hands on
    to the handler (e.g. the user).
    """

    method: str
    path: str
    params: dict[str, str]
    query_all: dict[str, list[str]]
    headers: tornado.httputil.HTTPHeaders
    cookies: dict[str, str]
    body: bytes
    form_all: dict[str, list[str]]
    client_ip: str
    scheme: str
    host: str
    csp_nonce: str
    _csrf: Callable[[], str] = field(repr=False)
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in self.query_all.items() if v}

    @property
    def form(self) -> dict[str, str]:
        """Fields of a urlencoded or multipart body."""
        return {k: v[0] for k, v in self.form_all.items() if v}

    @property
    def secure(self) -> bool:
        return self.scheme == "https"

    @property
    def csrf_token(self) -> str:
        """This browser's CSRF token (set as its cookie by this response when it had none)."""
        return self._csrf()

    def json(self) -> Any:
        """The body parsed as JSON (ValueError when it is not)."""
        return json.loads(self.body or b"null")


# -- responses ---------------------------------------------------------------------


@dataclass(slots=True)
class Cookie:
    name: str
    value: str
    max_age: int | None = None
    path: str = "/"
    domain: str | None = None
    httponly: bool = True
    samesite: str = "Lax"


class Response:
    """Status, headers, cookies and body of an HTTP answer.

    ``Response.json(data)``, ``Response.text(s)`` and ``Response.html(s)``
    set the content type; :meth:`redirect` turns it into a redirect.
    """

    __slots__ = ("status", "headers", "body", "cookies", "redirect_to", "external")

    def __init__(self, body: str | bytes = b"", status: int = 200, headers: Mapping[str, str] | None = None,
                 content_type: str | None = None) -> None:
        self.status = status
        self.headers = tornado.httputil.HTTPHeaders(dict(headers or {}))
        self.body = body.encode() if isinstance(body, str) else bytes(body)
        self.cookies: list[Cookie] = []
        self.redirect_to: str | None = None
        self.external = False
        if content_type is None and self.body and "Content-Type" not in self.headers:
            content_type = "text/plain; charset=utf-8" if isinstance(body, str) else "application/octet-stream"
        if content_type is not None:
            self.headers["Content-Type"] = content_type

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
        body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        return cls(body.encode(), status, headers, "application/json; charset=utf-8")

    @classmethod
    def text(cls, text: str, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
        return cls(text.encode(), status, headers, "text/plain; charset=utf-8")

    @classmethod
    def html(cls, html: str, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
        return cls(html.encode(), status, headers, "text/html; charset=utf-8")

    def set_header(self, name: str, value: str) -> None:
        """Set (replace) a header; Tornado refuses control characters when it is sent."""
        self.headers[name] = value

    def set_cookie(self, name: str, value: str, *, max_age: int | None = None, path: str = "/",
                   domain: str | None = None, httponly: bool = True, samesite: str = "Lax") -> None:
        """A cookie under the strict policy (Secure on https, refused on plain HTTP: see the module doc).

        ``samesite="None"`` (cross-site use) is allowed only because the
        cookie is always Secure when sent.
        """
        if samesite not in _SAMESITE:
            raise ValueError(f"samesite must be one of {', '.join(_SAMESITE)}, not {samesite!r}")
        self.cookies.append(Cookie(name, value, max_age, path, domain, httponly, samesite))

    def delete_cookie(self, name: str, *, path: str = "/", domain: str | None = None) -> None:
        self.cookies.append(Cookie(name, "", 0, path, domain))

    def redirect(self, url: str, status: int = 303, *, external: bool = False) -> Response:
        """Redirect (303 by default: the browser then GETs ``url``, whatever the method was).

        Relative paths only (``/thanks?x=1``), so a ``next`` parameter
        cannot send the user off-site; ``external=True`` allows an absolute
        http(s) URL whose host is in ``allowed_redirect_hosts``, checked when
        the response is sent. Raises :class:`RedirectNotAllowed` otherwise.
        """
        if status not in (301, 302, 303, 307, 308):
            raise ValueError(f"not a redirect status: {status}")
        if not external and not is_relative_url(url):
            raise RedirectNotAllowed(f"redirect to {url!r}: only relative paths (pass external=True for another host)")
        self.status, self.redirect_to, self.external = status, url, external
        self.body = b""
        return self


def redirect(url: str, status: int = 303, *, external: bool = False) -> Response:
    """A response redirecting to ``url``; see :meth:`Response.redirect`."""
    return Response().redirect(url, status, external=external)


def is_relative_url(url: str) -> bool:
    """A path on this site: starts with one ``/``, no scheme, no backslash or control characters."""
    return url.startswith("/") and not url.startswith("//") and not _CONTROL.search(url)


def validate_external_redirect_url(url: str, allowed_hosts: Sequence[str]) -> str | None:
    """The canonical form of an absolute http(s) ``url`` whose host is allowed, else None (reference
    ``ValidateExternalRedirectURL``); no credentials, backslashes or control characters."""
    if not allowed_hosts or _CONTROL.search(url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    host = parts.hostname.lower() + (f":{port}" if port else "")
    if not any(host_matches(host, allowed) for allowed in allowed_hosts):
        return None
    return urlunsplit((parts.scheme.lower(), host, parts.path or "/", parts.query, parts.fragment))


def to_response(result: Any) -> Response:
    """What a handler returned, as a Response."""
    if isinstance(result, Response):
        return result
    if result is None:
        return Response(status=204)
    if isinstance(result, (dict, list)):
        return Response.json(result)
    if isinstance(result, str):
        return Response.text(result)
    if isinstance(result, (bytes, bytearray)):
        return Response(bytes(result))
    raise TypeError(f"a route handler returned {type(result).__name__}: return a Response, dict, list, str or bytes")


# -- routes and middleware -----------------------------------------------------------

Handler = Callable[[Request], Any]
CallNext = Callable[[Request], Awaitable[Response]]
Middleware = Callable[[Request, CallNext], Union[Response, Awaitable[Response]]]


class HTTPRoute:
    """One app route: a path pattern (``{name}`` matches a segment), its methods and handler."""

    __slots__ = ("pattern", "methods", "handler", "csrf", "_regex")

    def __init__(self, pattern: str, handler: Handler, methods: Iterable[str] = ("GET",), *,
                 csrf: bool = True) -> None:
        if not pattern.startswith("/"):
            raise ValueError(f"route pattern must start with '/': {pattern!r}")
        if pattern.startswith(RESERVED_PREFIX):
            raise ValueError(f"{RESERVED_PREFIX}* is vango's own: {pattern!r}")
        wanted = {m.upper() for m in methods}
        unknown = wanted - METHODS
        if unknown or not wanted:
            raise ValueError(f"route {pattern!r}: unknown methods {sorted(unknown) or methods!r}")
        if "GET" in wanted:
            wanted.add("HEAD")
        self.pattern, self.handler, self.methods, self.csrf = pattern, handler, frozenset(wanted), csrf
        parts = _PARAM.split(pattern)
        regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts))
        self._regex = re.compile(f"^{regex}/?$" if pattern != "/" else "^/$")

    def match(self, path: str) -> dict[str, str] | None:
        m = self._regex.match(path)
        return m.groupdict() if m else None

    async def __call__(self, request: Request) -> Response:
        result = self.handler(request)
        if inspect.isawaitable(result):
            result = await result
        return to_response(result)


def chain(middleware: Sequence[Middleware], endpoint: CallNext) -> CallNext:
    """``endpoint`` wrapped by ``middleware``, the first one outermost."""
    call = endpoint
    for mw in reversed(middleware):
        call = _wrap(mw, call)
    return call


def _wrap(mw: Middleware, call_next: CallNext) -> CallNext:
    async def run(request: Request) -> Response:
        result = mw(request, call_next)
        if inspect.isawaitable(result):
            result = await result
        if not isinstance(result, Response):
            raise TypeError(f"middleware {getattr(mw, '__qualname__', mw)!r} returned "
                            f"{type(result).__name__}, not a Response")
        return result

    return run


# -- in components -------------------------------------------------------------------


def csrf_token() -> str:
    """This browser's CSRF token, for a form or a fetch header rendered by a component.

    Call it while rendering. In the server-side render of a page it is the
    token of the request's cookie; in a live session, the token of the
    browser the session belongs to (``session.csrf_token``), or ``""`` when
    the session does not know it.
    """
    token = use_context("csrf")
    if token is None:
        token = getattr(use_context("session"), "csrf_token", None)
    return str(token or "")


def csrf_input() -> Node:
    """``<input type="hidden" name="_csrf" value=TOKEN>``: put it inside a form that posts to an app route."""
    return h.input(type="hidden", name=CSRF_FIELD, value=csrf_token())


def use_request() -> Request | None:
    """The HTTP request of the server-side render; None in a live session (it has no request)."""
    return use_context("request")


def use_response() -> Response | None:
    """The response of the server-side render (set status, headers, cookies, redirect); None in a live session."""
    return use_context("response")


__all__ = [
    "CSRF_FIELD", "CSRF_HEADER", "CallNext", "Cookie", "HTTPRoute", "Middleware", "RedirectNotAllowed", "Request", "Response",
    "SecureCookiesRequired", "chain", "csrf_input", "csrf_token", "is_relative_url", "redirect", "to_response",
    "use_request", "use_response", "validate_external_redirect_url",
]
