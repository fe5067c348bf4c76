"""The App an author hands to ``vango-mp --app``: page routes, layouts, hooks, HTTP extras.

Page routing itself — canonical URLs, typed parameters, precedence,
layouts, route middleware, the not-found page — is pure and lives in
:mod:`vango_mp.routing`; ``Route``, ``Match`` and the rest are re-exported
here for older imports. A page component receives its path parameters as
keyword props::

    app = App({"/": Home, "/items/{id:int}": Item, "/files/{rest:path}": File},
              layouts={"/": Shell}, not_found=Missing)
    app.resolve("/items/7?tab=2")   # Resolution: page Item, params {"id": 7}, layouts (Shell,)
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

from .assets import Assets, activate
from .authcheck import AuthCheckConfig
from .headers import CSPOptions, default_csp_options
from .routes import HTTPRoute, Middleware
from .routing import (
    INVALID,
    NOT_FOUND,
    CanonicalURL,
    Deny,
    ErrorPage,
    InvalidPath,
    Match,
    NotFoundPage,
    PageRoute,
    Redirect,
    Resolution,
    Route,
    RouteContext,
    RouteMiddleware,
    Router,
    canonicalize,
    canonicalize_path,
    is_canonical,
    parse_query,
)

__all__ = [
    "App", "Route", "Match", "PageRoute", "Resolution", "RouteContext", "Redirect", "Deny", "RouteMiddleware",
    "NotFoundPage", "ErrorPage", "InvalidPath", "CanonicalURL", "canonicalize", "canonicalize_path",
    "is_canonical", "parse_query", "canonical_path", "NOT_FOUND", "INVALID",
]

Page = Callable[..., Any]
H = TypeVar("H", bound=Callable[..., Any])
# Bumped when the tree a route mounts changes shape (hook ids move): sealed blobs of the old shape are stale.
_TREE_SHAPE = b"tree:layouts+keyed-page"


def canonical_path(path: str) -> str:
    """The path part of a request target, without query, fragment or duplicate slashes (app routes).

    Pages use :func:`vango_mp.routing.canonicalize` (dot segments, trailing
    slash, encoding); this older form is what app routes are matched on.
    """
    p = urlsplit(path).path or "/"
    return re.sub(r"/{2,}", "/", p)


class App:
    """What ``--app module:attr`` names: routes plus the session and auth hooks.

    ``auth_func(request) -> user | None`` authenticates a handshake (and every
    resume); ``on_session_start(request, session)`` and
    ``on_session_resume(request, session)`` run before the handshake completes
    (the latter may raise to refuse). ``auth_resume_policy`` is ``"strict"``
    (default) or ``"trust_session_id"``, see :mod:`vango_mp.auth`.
    ``auth_check``: an :class:`~vango_mp.authcheck.AuthCheckConfig` -- how
    often a logged-in user is checked again, and what an expired session
    does (:mod:`vango_mp.authlife`).
    ``prefetch``: every internal link is rendered ahead on hover, focus or
    touch (else only links with ``data-prefetch``; see vango_mp.navigation).
    ``reconnect_toast``: the client shows "Reconnecting…" while its socket
    stays down over two seconds (False: the app shows its own, from
    ``window.vango.state``).
    ``csp``: the Content-Security-Policy of every response
    (:class:`~vango_mp.headers.CSPOptions`; default
    :func:`~vango_mp.headers.default_csp_options`, stricter
    :func:`~vango_mp.headers.hardened_csp_options`).
    ``middleware``: callables ``(request, call_next) -> Response`` wrapping
    every app route (:meth:`route`) and page render, the first outermost
    (see :mod:`vango_mp.routes`).
    ``static_dir``: files served under fingerprinted URLs (:meth:`asset`,
    :mod:`vango_mp.assets`); a relative path is taken from the directory of
    the file that creates the App.

    Pages (:mod:`vango_mp.routing`): ``routes`` maps a pattern (``/items``,
    ``/items/{id:int}``, ``/u/{name}``, ``/files/{rest:path}``) to a page
    component or a :class:`~vango_mp.routing.PageRoute` (a status, keep-alive,
    own middleware). ``layouts`` maps a route prefix to a layout component
    taking the page as ``children`` (nested outermost first, the longest
    prefix innermost). ``route_middleware``: ``fn(ctx) -> None | Redirect |
    Deny`` on every matched route (auth guards). ``not_found``: the page of an
    unknown path, served with 404 (default: one holding ``#not-found``).
    :meth:`resolve` gives all of it for a URL.

    ``on_error(err)``: called with an :class:`~vango_mp.errors.AppError` for
    every error in app code -- a handler (sync or async), effect, task,
    render, or a first load's render -- after it is logged (see
    :mod:`vango_mp.errors` for what the user sees). ``error_page``: a
    component taking ``error`` rendered (status 500) when a first load's render
    raises; without one a plain styled page.

    ``hook_validator(event)`` sees every client hook's ``pushEvent`` before its
    handler; ``island_validator(island_id, payload)`` every island message,
    both ways (islands are refused without one). Raise or return False to refuse.
    """

    def __init__(
        self,
        routes: Mapping[str, Page | PageRoute],
        *,
        title: str = "vango-mp",
        auth_func: Callable[[Any], Any] | None = None,
        on_session_start: Callable[[Any, Any], None] | None = None,
        on_session_resume: Callable[[Any, Any], None] | None = None,
        auth_resume_policy: str = "strict",
        auth_check: AuthCheckConfig | None = None,
        allow_trust_session_id_in_production: bool = False,
        reconnect_toast: bool = True,
        prefetch: bool = False,
        csp: CSPOptions | None = None,
        middleware: Sequence[Middleware] = (),
        static_dir: str | os.PathLike[str] | None = None,
        layouts: Mapping[str, Page] | None = None,
        route_middleware: Sequence[RouteMiddleware] = (),
        not_found: Page | None = None,
        hook_validator: Callable[[Any], Any] | None = None,
        island_validator: Callable[[str, Any], Any] | None = None,
        on_error: Callable[[Any], None] | None = None,
        error_page: Page | None = None,
    ) -> None:
        self.title = title
        # Errors (vango_mp.errors): on_error(AppError) hears every handler/render/task error;
        # error_page(error) is the component of a first load's 500 page (else a plain one).
        self.on_error = on_error
        self.error_page = error_page
        # JS interop (vango_mp.interop): raise (or return False) to refuse a hook event / island message.
        self.hook_validator = hook_validator
        self.island_validator = island_validator
        self.reconnect_toast = reconnect_toast
        self.prefetch = prefetch
        self.csp = csp if csp is not None else default_csp_options()
        self.router = Router(routes, layouts=layouts, middleware=route_middleware, not_found=not_found)
        self.routes: list[Route] = list(self.router.routes)  # in precedence order
        self.not_found: Page = self.router.not_found
        self.auth_func = auth_func
        self.on_session_start = on_session_start
        self.on_session_resume = on_session_resume
        self.auth_resume_policy = auth_resume_policy
        self.auth_check = auth_check  # an AuthCheckConfig: periodic and on-demand revalidation (vango_mp.authcheck)
        self.allow_trust_session_id_in_production = allow_trust_session_id_in_production
        self.schema = self._schema_hash()
        self.middleware: list[Middleware] = list(middleware)
        self.http_routes: list[HTTPRoute] = []
        if static_dir is not None and not os.path.isabs(static_dir):
            caller = sys._getframe(1).f_globals.get("__file__")  # the app's module, not the CWD of a service
            static_dir = os.path.join(os.path.dirname(os.path.abspath(caller)) if caller else os.getcwd(), static_dir)
        self.assets = Assets(static_dir)
        if static_dir is not None:
            activate(self.assets)

    def asset(self, name: str) -> str:
        """The fingerprinted URL of ``name`` in ``static_dir`` (see :func:`vango_mp.assets.asset`)."""
        return self.assets.url(name)

    def route(self, pattern: str, *, methods: Iterable[str] = ("GET",), csrf: bool = True) -> Callable[[H], H]:
        """Decorator: serve ``pattern`` over plain HTTP with the decorated handler (an app route).

        ``methods`` it answers (GET also answers HEAD; another method gets
        405); unsafe ones are CSRF-checked unless ``csrf=False``. App routes
        are matched before pages. See :mod:`vango_mp.routes`.
        """
        def register(handler: H) -> H:
            self.http_routes.append(HTTPRoute(pattern, handler, methods, csrf=csrf))
            return handler

        return register

    def match_http(self, path: str) -> list[tuple[HTTPRoute, dict[str, str]]]:
        """Every app route whose pattern matches ``path``, in registration order, with its parameters."""
        clean = canonical_path(path)
        found = []
        for route in self.http_routes:
            params = route.match(clean)
            if params is not None:
                found.append((route, params))
        return found

    def routes_schema(self) -> str:
        """Fingerprint of the routes alone (``--dev``: a blob from edited page code still resumes)."""
        h = hashlib.blake2b(digest_size=8)
        h.update(_TREE_SHAPE)
        for route in self.routes:
            h.update(route.pattern.encode() + b"\0")
        return h.hexdigest()

    def _schema_hash(self) -> str:
        """Fingerprint of the routes and page code: blobs from another app version are stale."""
        h = hashlib.blake2b(digest_size=8)
        h.update(_TREE_SHAPE)
        parts: list[tuple[str, Page]] = [(route.pattern, route.page) for route in self.routes]
        parts += [("layout " + prefix, layout) for _, prefix, layout in self.router.layouts]
        parts.append((NOT_FOUND, self.not_found))
        for name, page in parts:
            code = getattr(getattr(page, "__wrapped__", page), "__code__", None)
            h.update(name.encode() + b"\0" + getattr(page, "__qualname__", "").encode())
            if code is not None:
                h.update(code.co_code)
        return h.hexdigest()

    def match(self, path: str) -> Match | None:
        """The route ``path`` leads to (canonicalised; query ignored; precedence as :meth:`resolve`), or None.

        No middleware runs; ``params`` are typed and decoded
        (``{"id": 7}`` for ``/items/{id:int}``).
        """
        found = self.router.match(path)
        if found is None:
            return None
        route, params = found
        return Match(route.pattern, route.page, params)

    def resolve(self, url: str, *, user: Any = None, run_middleware: bool = True) -> Resolution:
        """Where ``url`` leads: canonical URL or redirect, status, layouts, page, params, query.

        ``url`` is the path and query as sent on the wire (a first load's raw
        ``request.uri``; in a live session the URL the client sends) — the
        router decodes each parameter once. ``user`` is handed to the route
        middleware. See :meth:`vango_mp.routing.Router.resolve`.

        >>> app.resolve("/items/7/").redirect          # not canonical: 308 on a first load
        '/items/7'
        """
        return self.router.resolve(url, user=user, run_middleware=run_middleware)
