"""Routes, path parameters and the App an author hands to ``vango-mp --app``.

A route pattern is a path whose segments may be ``{name}`` parameters; the
page component receives the parameters as keyword props.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from .assets import Assets, activate
from .headers import CSPOptions, default_csp_options
from .routes import HTTPRoute, Middleware
from .vdom.component import component
from .vdom.mount import Root

Page = Callable[..., Any]
H = TypeVar("H", bound=Callable[..., Any])
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(slots=True, frozen=True)
class Match:
    """A resolved route: the page component and its path parameters."""

    pattern: str
    page: Page
    params: dict[str, str]


class Route:
    """One pattern compiled to a regex; ``{name}`` matches one path segment."""

    __slots__ = ("pattern", "page", "_regex")

    def __init__(self, pattern: str, page: Page) -> None:
        if not pattern.startswith("/"):
            raise ValueError(f"route pattern must start with '/': {pattern!r}")
        self.pattern = pattern
        self.page = page
        parts = _PARAM.split(pattern)
        regex = "".join(
            re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts)
        )
        self._regex = re.compile(f"^{regex}/?$" if pattern != "/" else "^/$")

    def match(self, path: str) -> Match | None:
        m = self._regex.match(path)
        return Match(self.pattern, self.page, m.groupdict()) if m else None


def canonical_path(path: str) -> str:
    """The path part of a request target, without query, fragment or duplicate slashes."""
    p = urlsplit(path).path or "/"
    return re.sub(r"/{2,}", "/", p)


class App:
    """What ``--app module:attr`` names: routes plus the session and auth hooks.

    ``auth_func(request) -> user | None`` authenticates a handshake (and every
    resume); ``on_session_start(request, session)`` and
    ``on_session_resume(request, session)`` run before the handshake completes
    (the latter may raise to refuse). ``auth_resume_policy`` is ``"strict"``
    (default) or ``"trust_session_id"``, see :mod:`vango_mp.auth`.
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
    """

    def __init__(
        self,
        routes: Mapping[str, Page],
        *,
        title: str = "vango-mp",
        auth_func: Callable[[Any], Any] | None = None,
        on_session_start: Callable[[Any, Any], None] | None = None,
        on_session_resume: Callable[[Any, Any], None] | None = None,
        auth_resume_policy: str = "strict",
        allow_trust_session_id_in_production: bool = False,
        reconnect_toast: bool = True,
        csp: CSPOptions | None = None,
        middleware: Sequence[Middleware] = (),
        static_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.title = title
        self.reconnect_toast = reconnect_toast
        self.csp = csp if csp is not None else default_csp_options()
        self.routes = [Route(pattern, page) for pattern, page in routes.items()]
        self.auth_func = auth_func
        self.on_session_start = on_session_start
        self.on_session_resume = on_session_resume
        self.auth_resume_policy = auth_resume_policy
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

    def _schema_hash(self) -> str:
        """Fingerprint of the routes and page code: blobs from another app version are stale."""
        h = hashlib.blake2b(digest_size=8)
        for route in self.routes:
            code = getattr(getattr(route.page, "__wrapped__", route.page), "__code__", None)
            h.update(route.pattern.encode() + b"\0" + getattr(route.page, "__qualname__", "").encode())
            if code is not None:
                h.update(code.co_code)
        return h.hexdigest()

    def match(self, path: str) -> Match | None:
        """The first route matching ``path`` (query string ignored), or None."""
        clean = canonical_path(path)
        for route in self.routes:
            found = route.match(clean)
            if found is not None:
                return found
        return None

    def mount(
        self, path: str, *, worker: int, session: Any = None, on_dirty: Callable[[], None] | None = None,
        values: dict[str, Any] | None = None, render: bool = True, context: Mapping[str, Any] | None = None,
    ) -> Root:
        """Mount the page for ``path`` (LookupError when no route matches) and render it.

        The one way a page is built: for the stateless SSR (no session), a new
        session, and a session remounted from its sealed ``values`` (which the
        caller renders itself, ``render=False``: see ``Root.render_over``).
        ``context`` adds to what ``use_context`` sees (the SSR puts the
        request's ``csrf`` token there).
        """
        match = self.match(path)
        if match is None:
            raise LookupError(path)
        context = {**(context or {}), "worker": worker, "session": session, "path": path, "params": match.params}
        root = Root(component(match.page)(**match.params), context=context, on_dirty=on_dirty)
        if values:
            root.restore_signal_values(values)
        if render:
            root.render_initial()
        return root
