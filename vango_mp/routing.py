"""Routing without sessions or HTTP: canonical URLs, typed route patterns, layouts, route middleware.

Everything here is pure — a URL string in, a :class:`Resolution` out — so
the server-side render of a first load and a live navigation call the same
:meth:`Router.resolve` (``App.resolve``) and agree on the page, its
parameters, its layouts and its status::

    >>> router = Router({"/items/{id:int}": Item}, layouts={"/": Shell})
    >>> r = router.resolve("/items//42/?q=x")
    >>> r.url, r.canonical, r.redirect, r.params, r.query
    ('/items/42?q=x', False, '/items/42?q=x', {'id': 42}, {'q': ['x']})

**Where decoding happens.** Callers pass the URL as it travels on the wire:
a first load's raw request target (Tornado's ``request.uri`` — not the
``path`` argument Tornado hands a handler, which it has already decoded)
and, in a live session, the URL the client sends (``location.pathname +
location.search``, which browsers percent-encode). :func:`canonicalize`
first brings any input to the form a browser sends: characters a browser
percent-encodes (space, non-ASCII, ``"``, ``<``, ``>``, `````, ``{``, ``}``)
are encoded as UTF-8, ``%XX`` escapes are kept as they are, and a ``%`` not
followed by two hex digits is a literal percent sign (``%25``). So
``/hello/Zoë Smith`` and ``/hello/Zo%C3%AB%20Smith`` have the same canonical
URL. The matcher then splits the canonical path at ``/`` and percent-decodes
each segment exactly once (UTF-8): ``name == "Zoë Smith"`` either way, and
``%2F`` never separates segments. (Text that was decoded already and still
contains ``%XX`` is read as an escape — as a browser's address bar does.)

**Precedence.** Patterns are compared segment by segment from the left; at
the first segment where two patterns differ, a static segment beats an
``int`` parameter, which beats a ``str`` parameter, which beats a ``path``
catch-all. The order of the routes dict never matters, and two patterns
that would match the same paths (``/a/{x}`` and ``/a/{y}``) are refused when
the router is built. E.g. ``/items/new`` < ``/items/{id:int}`` <
``/items/{slug}`` < ``/items/{rest:path}``.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from http import HTTPStatus
from typing import Any, Union
from urllib.parse import unquote

from .urls import CanonicalURL, InvalidPath, canonicalize, canonicalize_path, is_canonical, parse_query
from .vdom.component import component
from .vdom.nodes import ComponentNode, Node, h

__all__ = [
    "CanonicalURL", "InvalidPath", "canonicalize", "canonicalize_path", "is_canonical", "parse_query",
    "Kind", "Segment", "parse_pattern", "Route", "Match", "PageRoute", "Router", "Resolution",
    "RouteContext", "Redirect", "Deny", "RouteMiddleware", "NotFoundPage", "ErrorPage",
    "NOT_FOUND", "INVALID", "MAX_INT",
]

Page = Callable[..., Any]

#: The largest value an ``{name:int}`` parameter takes (a signed 64-bit int, as the reference's Go ``int``).
MAX_INT = 2**63 - 1
#: ``Resolution.pattern`` of an unknown path (the not-found page's key).
NOT_FOUND = "<not found>"
#: ``Resolution.pattern`` of a URL that is no path at all (status 400).
INVALID = "<invalid>"


# region Canonical URLs: vango_mp.urls ---------------------------------------

def _split(path: str) -> list[str]:
    """The segments of a canonical path, each percent-decoded once."""
    if path == "/":
        return []
    return [unquote(seg, errors="strict") if "%" in seg else seg for seg in path[1:].split("/")]


# endregion
# region Patterns -----------------------------------------------------------------


class Kind(IntEnum):
    """What a pattern segment matches; the value is its precedence (lower wins)."""

    STATIC = 0
    INT = 1
    STR = 2
    PATH = 3


_KINDS = {None: Kind.STR, "str": Kind.STR, "int": Kind.INT, "path": Kind.PATH}
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z_]+))?\}")
_DIGITS = re.compile(r"[0-9]{1,19}")


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment of a pattern: static ``text``, or a parameter named ``text`` of ``kind``."""

    kind: Kind
    text: str

    @property
    def shape(self) -> tuple[int, str]:
        """What it matches, whatever a parameter is called."""
        return (self.kind, self.text if self.kind is Kind.STATIC else "")


def parse_pattern(pattern: str) -> tuple[Segment, ...]:
    """The segments of a route pattern (``"/"`` has none).

    A segment is static text (written decoded: ``/café``), or a whole-segment
    parameter: ``{name}`` or ``{name:str}`` (one segment, any text without
    ``/``), ``{name:int}`` (ASCII digits, 0..2**63-1, given to the page as an
    int) or ``{name:path}`` (the rest of the path, slashes included; one or
    more segments; last only). ValueError for anything else.

    >>> [s.kind.name for s in parse_pattern("/files/{id:int}/{rest:path}")]
    ['STATIC', 'INT', 'PATH']
    """
    if not isinstance(pattern, str) or not pattern.startswith("/"):
        raise ValueError(f"route pattern must start with '/': {pattern!r}")
    if pattern == "/":
        return ()
    segments: list[Segment] = []
    names: set[str] = set()
    parts = pattern[1:].split("/")
    for i, part in enumerate(parts):
        if not part:
            raise ValueError(f"route pattern {pattern!r}: empty segment (a '//' or a trailing '/')")
        if part in (".", ".."):
            raise ValueError(f"route pattern {pattern!r}: a {part!r} segment")
        m = _PARAM.fullmatch(part)
        if m is None:
            if "{" in part or "}" in part:
                raise ValueError(f"route pattern {pattern!r}: {part!r} — a parameter is a whole segment, "
                                 "{name}, {name:str}, {name:int} or {name:path}")
            if "?" in part or "#" in part:
                raise ValueError(f"route pattern {pattern!r}: '?' and '#' have no place in a pattern")
            segments.append(Segment(Kind.STATIC, part))
            continue
        name, typ = m.group(1), m.group(2)
        kind = _KINDS.get(typ)
        if kind is None:
            raise ValueError(f"route pattern {pattern!r}: unknown parameter type {typ!r} (str, int or path)")
        if kind is Kind.PATH and i != len(parts) - 1:
            raise ValueError(f"route pattern {pattern!r}: {{{name}:path}} must be the last segment")
        if name in names:
            raise ValueError(f"route pattern {pattern!r}: parameter {name!r} twice")
        names.add(name)
        segments.append(Segment(kind, name))
    return tuple(segments)


def _match(segments: Sequence[Segment], parts: Sequence[str], *, prefix: bool = False) -> dict[str, Any] | None:
    """Parameters when ``segments`` match the decoded ``parts`` (all of them, or a leading run if ``prefix``)."""
    n = len(segments)
    if n > len(parts) or (not prefix and n < len(parts) and not (n and segments[-1].kind is Kind.PATH)):
        return None
    params: dict[str, Any] = {}
    for i, seg in enumerate(segments):
        part = parts[i]
        kind = seg.kind
        if kind is Kind.STATIC:
            if part != seg.text:
                return None
        elif kind is Kind.STR:
            if "/" in part:  # an encoded slash (%2F): never inside a one-segment parameter
                return None
            params[seg.text] = part
        elif kind is Kind.INT:
            if not _DIGITS.fullmatch(part):
                return None
            value = int(part)
            if value > MAX_INT:
                return None
            params[seg.text] = value
        else:
            params[seg.text] = "/".join(parts[i:])
    return params


# endregion
# region Routes and middleware -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Match:
    """A matched route: the page component and its (typed, decoded) path parameters."""

    pattern: str
    page: Page
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RouteContext:
    """What a route middleware decides on: the canonical URL, the route, its parameters, the user."""

    url: str
    path: str
    pattern: str
    params: Mapping[str, Any]
    query: Mapping[str, list[str]]
    user: Any
    page: Page


@dataclass(frozen=True, slots=True)
class Redirect:
    """A middleware's answer: go to ``to`` instead — a path on this site (``/login?next=/admin``).

    ``status`` is the first load's (302 by default); a live navigation
    replaces the URL. Other hosts: not from a route middleware (use
    ``redirect(url, external=True)`` in an app route).
    """

    to: str
    status: int = 302

    def __post_init__(self) -> None:
        if self.status not in (301, 302, 303, 307, 308):
            raise ValueError(f"Redirect: not a redirect status: {self.status}")
        if not isinstance(self.to, str) or not self.to.startswith("/") or self.to.startswith("//"):
            raise ValueError(f"Redirect: {self.to!r} is not a path on this site (start with one '/')")
        canonicalize(self.to)  # InvalidPath (a ValueError): a backslash, a control character...


@dataclass(frozen=True, slots=True)
class Deny:
    """A middleware's answer: refuse with ``status`` (403 by default), showing ``page``
    (default :func:`ErrorPage`, with ``status`` and ``message``)."""

    status: int = 403
    message: str = ""
    page: Page | None = None

    def __post_init__(self) -> None:
        if not 400 <= self.status <= 599:
            raise ValueError(f"Deny: {self.status} is not an error status (400..599)")


#: ``fn(ctx) -> None | Redirect | Deny``: None allows.
RouteMiddleware = Callable[[RouteContext], Union[Redirect, Deny, None]]


@dataclass(frozen=True, slots=True)
class PageRoute:
    """A page with options, as a value of the routes dict: ``{"/old": PageRoute(Gone, status=410)}``.

    ``status``: the HTTP status of its first load (a page can still set
    another while rendering, with ``use_response().status``);
    ``keep_alive``: the live navigation may keep its state for Back;
    ``middleware``: route middleware for this route only, run after the app's.
    """

    page: Page
    status: int = 200
    keep_alive: bool = False
    middleware: Sequence[RouteMiddleware] = ()


class Route:
    """One page route: its pattern compiled to segments, precedence ``rank``, page and options."""

    __slots__ = ("pattern", "page", "segments", "rank", "status", "keep_alive", "middleware")

    def __init__(self, pattern: str, page: Page, *, status: int = 200, keep_alive: bool = False,
                 middleware: Sequence[RouteMiddleware] = ()) -> None:
        if not callable(page):
            raise TypeError(f"route {pattern!r}: the page must be a component, not {type(page).__name__}")
        if not 100 <= status <= 599:
            raise ValueError(f"route {pattern!r}: status {status} is not an HTTP status")
        self.pattern = pattern
        self.page = page
        self.segments = parse_pattern(pattern)
        if any(s.kind is not Kind.STATIC and s.text == "key" for s in self.segments):
            raise ValueError(f"route {pattern!r}: 'key' is reserved (a component's key), name the parameter otherwise")
        self.rank = tuple(int(s.kind) for s in self.segments)
        self.status = status
        self.keep_alive = keep_alive
        self.middleware = tuple(middleware)

    def match(self, path: str) -> Match | None:
        """The match of a path (canonicalised here; query ignored), or None."""
        try:
            parts = _split(canonicalize(path).path)
        except InvalidPath:
            return None
        params = _match(self.segments, parts)
        return Match(self.pattern, self.page, params) if params is not None else None

    def __repr__(self) -> str:
        return f"Route({self.pattern!r}, {getattr(self.page, '__name__', self.page)})"


# endregion
# region Default pages -----------------------------------------------------------------


@component
def NotFoundPage() -> Node:
    """The page of an unknown path when the app names none: ``#not-found``, status 404."""
    return h.main(h.h1("Page not found"), h.p("Nothing lives at this address."), h.p(h.a("Home", href="/")),
                  id="not-found")


@component
def ErrorPage(status: int = 500, message: str = "") -> Node:
    """A refusal (route middleware :class:`Deny`) or an invalid URL (400): ``#route-error``."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return h.main(h.h1(f"{status} {phrase}"), h.p(message) if message else None, h.p(h.a("Home", href="/")),
                  id="route-error", data_status=str(status))


@functools.lru_cache(maxsize=256)
def _slot_prop(layout: Page) -> str:
    """The prop a layout takes its content in: ``children``, else ``page``."""
    fn = getattr(layout, "__vango_component__", layout)
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return "children"
    if "children" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return "children"
    if "page" in params:
        return "page"
    raise TypeError(f"layout {getattr(fn, '__name__', fn)!r} must take the page as a `children` (or `page`) prop")


# endregion
# region Resolution --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Resolution:
    """Where a URL leads, for the first load and for a live navigation alike.

    ``url``: the canonical URL (path, query, fragment); ``path`` its
    percent-encoded path; ``query``: :func:`parse_query` of its query.
    ``pattern``: the matched route's pattern (:data:`NOT_FOUND`,
    :data:`INVALID` otherwise), also the page's key. ``page`` with
    ``params`` (typed, decoded once); ``layouts`` outermost first.
    ``status``: the first load's status when the page is shown (the route's,
    404, 400, or a :class:`Deny`'s). ``redirect``: where the browser should
    go instead — the canonical URL when the input was not (``canonical`` is
    False; ``redirect_status`` 308) or a middleware's :class:`Redirect`
    target (its status; ``decision`` holds it). An unknown path is never
    redirected. ``error``: why a URL was invalid (``url`` is then the input,
    unusable as a Location). ``props``: what the page gets when not its
    ``params`` (the default error page's status and message).

    A live navigation that gets a canonical redirect (``redirect == url``)
    shows this resolution at once and replaces the URL; any other redirect
    is resolved again.
    """

    url: str
    path: str
    query: dict[str, list[str]]
    pattern: str
    page: Page
    params: dict[str, Any] = field(default_factory=dict)
    layouts: tuple[Page, ...] = ()
    status: int = 200
    redirect: str | None = None
    redirect_status: int | None = None
    canonical: bool = True
    decision: Redirect | Deny | None = None
    keep_alive: bool = False
    error: str | None = None
    props: dict[str, Any] | None = None

    @property
    def found(self) -> bool:
        """A route matched (even if its middleware denied it)."""
        return self.pattern not in (NOT_FOUND, INVALID)

    @property
    def http_status(self) -> int:
        """The first load's status: the redirect's when there is one, else :attr:`status`."""
        return self.redirect_status if self.redirect is not None and self.redirect_status else self.status

    def tree(self) -> ComponentNode:
        """``Layout1(children=Layout2(children=Page(key=pattern, **params)))``, ready for a Root.

        Each layout is an unkeyed component at the same place whatever the
        page, so a vdom Root re-rendering another route under the same
        layouts keeps their instances (and state); the page is keyed by its
        pattern, so another route replaces the page alone.

        >>> r = Router({"/items/{id:int}": Item}, layouts={"/": Shell}).resolve("/items/7")
        >>> node = r.tree()   # Shell(children=Item(key="/items/{id:int}", id=7))
        """
        props = self.params if self.props is None else self.props
        node: ComponentNode = component(self.page)(key=self.pattern, **props)
        for layout in reversed(self.layouts):
            node = component(layout)(**{_slot_prop(layout): node})
        return node


class Router:
    """Page routes, layouts by prefix, route middleware and the not-found page; see :meth:`resolve`.

    ``routes``: pattern → page (a component) or :class:`PageRoute`.
    ``layouts``: route prefix → layout component (see :meth:`layouts_for`).
    ``middleware``: :data:`RouteMiddleware` run, in order, on every matched
    route (not on unknown paths). ``not_found``: the page of an unknown
    path (default :func:`NotFoundPage`).
    """

    def __init__(
        self,
        routes: Mapping[str, Page | PageRoute],
        *,
        layouts: Mapping[str, Page] | None = None,
        middleware: Sequence[RouteMiddleware] = (),
        not_found: Page | None = None,
    ) -> None:
        built = []
        for pattern, target in routes.items():
            if isinstance(target, PageRoute):
                built.append(Route(pattern, target.page, status=target.status, keep_alive=target.keep_alive,
                                   middleware=target.middleware))
            else:
                built.append(Route(pattern, target))
        built.sort(key=lambda r: r.rank)
        shapes: dict[tuple[tuple[int, str], ...], str] = {}
        for route in built:
            shape = tuple(s.shape for s in route.segments)
            if shape in shapes:
                raise ValueError(f"routes {shapes[shape]!r} and {route.pattern!r} match the same paths")
            shapes[shape] = route.pattern
        self.routes: tuple[Route, ...] = tuple(built)
        chain = []
        for prefix, layout in (layouts or {}).items():
            if not callable(layout):
                raise TypeError(f"layout {prefix!r}: not a component: {layout!r}")
            _slot_prop(layout)  # refuse a layout without a children/page prop now, not at its first render
            chain.append((parse_pattern(prefix), prefix, layout))
        chain.sort(key=lambda item: len(item[0]))
        prefixes: dict[tuple[tuple[int, str], ...], str] = {}
        for segments, prefix, _ in chain:
            shape = tuple(s.shape for s in segments)
            if shape in prefixes:
                raise ValueError(f"layouts {prefixes[shape]!r} and {prefix!r} have the same prefix")
            prefixes[shape] = prefix
        self.layouts: tuple[tuple[tuple[Segment, ...], str, Page], ...] = tuple(chain)
        self.middleware: tuple[RouteMiddleware, ...] = tuple(middleware)
        self.not_found: Page = not_found if not_found is not None else NotFoundPage
        self._route_layouts = {r.pattern: self._layouts_of(r.segments) for r in self.routes}

    def _layouts_of(self, segments: tuple[Segment, ...]) -> tuple[Page, ...]:
        shapes = [s.shape for s in segments]
        return tuple(layout for prefix, _, layout in self.layouts
                     if len(prefix) <= len(shapes) and [s.shape for s in prefix] == shapes[:len(prefix)])

    def layouts_for(self, pattern: str) -> tuple[Page, ...]:
        """The layouts around a route, outermost first: those whose prefix starts its pattern.

        The prefix is compared segment by segment, by what a segment
        matches: ``"/items"`` wraps ``/items`` and ``/items/{id:int}``, not
        ``/itemsets`` nor ``/{slug}``; ``"/"`` wraps every route.
        """
        found = self._route_layouts.get(pattern)
        return found if found is not None else self._layouts_of(parse_pattern(pattern))

    def _layouts_at(self, parts: list[str]) -> tuple[Page, ...]:
        """The layouts of an unknown path: those whose prefix matches the path's leading segments."""
        return tuple(layout for prefix, _, layout in self.layouts if _match(prefix, parts, prefix=True) is not None)

    def match(self, url: str) -> tuple[Route, dict[str, Any]] | None:
        """The route a URL (canonicalised here) leads to with its parameters, or None."""
        try:
            parts = _split(canonicalize(url).path)
        except InvalidPath:
            return None
        return self._match(parts)

    def _match(self, parts: list[str]) -> tuple[Route, dict[str, Any]] | None:
        for route in self.routes:
            params = _match(route.segments, parts)
            if params is not None:
                return route, params
        return None

    def resolve(self, url: str, *, user: Any = None, run_middleware: bool = True) -> Resolution:
        """Where ``url`` (path and query, as sent: see the module doc) leads; never raises for a bad URL.

        Canonicalise; match (precedence in the module doc); run the route
        middleware with ``user`` (skipped with ``run_middleware=False``): the
        first that returns a :class:`Redirect` or :class:`Deny` decides.
        Unknown path: the not-found page, 404. Invalid URL: :func:`ErrorPage`, 400.

        >>> Router({"/": Home}).resolve("/nope").status
        404
        """
        try:
            canon = canonicalize(url)
        except InvalidPath as err:
            return Resolution(url=url, path="", query={}, pattern=INVALID, page=ErrorPage,
                              layouts=self._layouts_at([]), status=400, canonical=False, error=str(err),
                              props={"status": 400, "message": "This address is not valid."})
        parts = _split(canon.path)
        query = parse_query(canon.query)
        found = self._match(parts)
        if found is None:
            return Resolution(url=canon.url, path=canon.path, query=query, pattern=NOT_FOUND, page=self.not_found,
                              layouts=self._layouts_at(parts), status=404, canonical=not canon.changed)
        route, params = found
        decision: Redirect | Deny | None = None
        if run_middleware:
            ctx = RouteContext(canon.url, canon.path, route.pattern, params, query, user, route.page)
            for mw in (*self.middleware, *route.middleware):
                decision = mw(ctx)
                if decision is None:
                    continue
                if not isinstance(decision, (Redirect, Deny)):
                    raise TypeError(f"route middleware {getattr(mw, '__qualname__', mw)!r} returned "
                                    f"{type(decision).__name__}: return None, Redirect or Deny")
                break
        common: dict[str, Any] = dict(url=canon.url, path=canon.path, query=query, pattern=route.pattern,
                                      params=params, layouts=self._route_layouts[route.pattern],
                                      canonical=not canon.changed, decision=decision, keep_alive=route.keep_alive)
        if isinstance(decision, Deny):
            page = decision.page if decision.page is not None else ErrorPage
            props = None if decision.page is not None else {"status": decision.status, "message": decision.message}
            return Resolution(page=page, status=decision.status, props=props, **common)
        if isinstance(decision, Redirect):
            return Resolution(page=route.page, status=route.status, redirect=canonicalize_path(decision.to),
                              redirect_status=decision.status, **common)
        return Resolution(page=route.page, status=route.status, redirect=canon.url if canon.changed else None,
                          redirect_status=308 if canon.changed else None, **common)


# endregion
