"""Live navigation: the page a session shows is a function of its URL.

A tab keeps one WebSocket and one session for the whole visit. The session's
tree is rooted in :func:`RouterView`, which renders the route its
:class:`Location` points at: the app's layouts for that route, outermost
first, around the page (keyed by its route pattern, so another page replaces
it while the layouts — and their state — stay). Navigating sets the
location's URL signal; the session re-renders like after any event and sends
the diff as one NAV frame carrying the URL, the history mode and the title
(docs/PROTOCOL.md). The server-rendered page is built the same way, so its
element ids match the first live render.

For pages and handlers: :func:`use_head` (title and meta tags),
:func:`use_query` (read and write the query string, as LiveView's
push_patch), :func:`navigate` (from event handlers and effects),
:func:`keep_alive` (a page that keeps its state while the user is
elsewhere).

Prefetch follows the reference's PrefetchConfig: 10 entries per session,
30 s each, 5 requests per second per session. A prefetch renders
synchronously on the session's loop, so at most one runs per session and
per worker at a time (within the reference's 2 and 50), and writes are
dropped while it does. A path this app does not know shows its not-found
page (404) live; a link to another app on the same origin needs
``data-vango-reload`` (the client then does a full load).
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from .protocol import NAV_LOAD, NAV_PUSH, NAV_REPLACE
from .ratelimit import TokenBucket
from .reactive import Signal, signal
from .vdom.component import ComponentInstance, component, current_instance, use_context
from .routing import INVALID, NOT_FOUND, Resolution
from .vdom.mount import Aside, Root
from .vdom.nodes import Node, count_nodes

__all__ = ["Location", "RouterView", "mount", "navigate", "use_head", "use_query", "Query", "keep_alive"]

# Reference defaults (PrefetchConfig): entries per session, their lifetime, requests per second.
PREFETCH_ENTRIES, PREFETCH_TTL, PREFETCH_RATE, PREFETCH_BURST = 10, 30.0, 5.0, 5
KEPT_PAGES = 5  # kept-alive pages per session (LRU)
_KEEP_ALIVE = "__vango_keep_alive__"


def keep_alive(page: Any) -> Any:
    """Mark a page to keep its state in the session when the user navigates away, so Back restores it.

    ``@keep_alive`` above ``@component``. Bounded: the last KEPT_PAGES such
    pages per session (LRU); they count in the session's memory estimate and
    are dropped first under memory pressure.
    """
    setattr(getattr(page, "__vango_component__", page), _KEEP_ALIVE, True)
    return page

_current: contextvars.ContextVar[Location | None] = contextvars.ContextVar("vango_location", default=None)


def resolve(app: Any, url: str, *, user: Any = None) -> Resolution:
    """Resolve ``url`` (path and query, as sent on the wire) with the app's router."""
    return app.resolve(url, user=user)


_NO_ENTRIES: dict[str, Any] = {}  # Location.kept / .prefetched until their first page; never written to
_NO_META: dict[str, str] = {}  # Location.meta of a page without use_head(meta=...); never written to
_NO_PATTERNS: frozenset[str] = frozenset()  # not a singleton in CPython 3.10+: one to share
MAX_REDIRECTS = 5  # route middleware redirecting in a loop ends here


@dataclass(slots=True)
class Pending:
    """A navigation the next NAV frame announces."""

    url: str
    mode: int
    scroll: bool = True  # False: the client keeps its scroll position (and focus)


class Location:
    """One session's (or one server render's) URL as reactive state, and where it navigates."""

    # One per session: slots, no instance dict (~200 B less).
    __slots__ = (
        "app", "allowed_redirect_hosts", "context", "resolved", "url", "title", "keep_patterns", "meta",
        "leaving_title", "pending", "root", "view", "kept", "prefetched", "prefetching", "prefetch_title",
        "_prefetch_rate",
    )

    def __init__(self, app: Any, url: str, *, allowed_redirect_hosts: list[str] | None = None,
                 user: Any = None) -> None:
        self.app = app
        self.allowed_redirect_hosts = tuple(allowed_redirect_hosts or ())  # () is one shared object
        self.context: dict[str, Any] = {}  # the Root's context: its "path" and "params" follow the URL
        self.resolved, _ = self._follow(url, user)  # route guards see the user from the first render
        self.url: Signal[str] = signal(self.resolved.url)
        self.title = self._default_title(self.resolved)
        # Replaced, never changed in place, so most sessions share _NO_PATTERNS (a set() is 216 B).
        self.keep_patterns = frozenset((self.resolved.pattern,)) if self.resolved.keep_alive else _NO_PATTERNS
        self.meta: dict[str, str] = _NO_META  # <meta name=…> of the page shown (use_head); replaced, never changed
        self.leaving_title = self.title  # the title of the page a navigation leaves (kept with it if kept alive)
        self.pending: Pending | None = None
        self.root: Root | None = None  # set by mount()
        self.view: ComponentInstance | None = None  # the RouterView instance (set as it renders)
        # Oldest first (a dict keeps insertion order). Most sessions never keep or prefetch a page:
        # both start as the shared _NO_ENTRIES and get a dict of their own on the first insert.
        self.kept: dict[str, tuple[Aside, str]] = _NO_ENTRIES  # pattern -> (page, its title)
        self.prefetched: dict[str, tuple[Aside, str, float]] = _NO_ENTRIES  # url -> (page, title, expiry)
        self.prefetching = False  # use_head writes go to prefetch_title meanwhile
        self.prefetch_title = ""
        self._prefetch_rate = TokenBucket(PREFETCH_RATE, PREFETCH_BURST)

    def go(self, url: str, mode: int = NAV_PUSH) -> None:
        """Point the location at ``url`` (a path, or an allowed external URL); the NAV frame follows the render.

        A canonicalising redirect shows the page at once and replaces the
        URL; a middleware redirect is followed (at most MAX_REDIRECTS); a URL
        the router calls invalid is left to a full page load (its 400).
        """
        parts = urlsplit(url)
        if parts.scheme or parts.netloc:
            self._external(url)
            return
        resolved, replaced = self._follow(url, getattr(self.context.get("session"), "user", None))
        if replaced and mode == NAV_PUSH:
            mode = NAV_REPLACE
        if resolved.pattern == INVALID:
            self.pending = Pending(url, NAV_LOAD)  # the browser loads it and gets the router's 400 page
            return
        if resolved.keep_alive:
            self.keep_patterns |= {resolved.pattern}
        if resolved.pattern != self.resolved.pattern:
            self.leaving_title = self.title
            self.title = self._default_title(resolved)  # the new page sets its own with use_head
            self.meta = _NO_META
            self._bring_back(resolved)
        self.resolved = resolved
        self.context.update(path=resolved.url, params=resolved.params)
        self.pending = Pending(resolved.url, mode)
        self.url.set(resolved.url)

    def _follow(self, url: str, user: Any) -> tuple[Resolution, bool]:
        """Resolve ``url``, following middleware redirects (at most MAX_REDIRECTS); a canonicalising
        redirect shows its page at once. (resolution, whether the URL was replaced)."""
        resolved = resolve(self.app, url, user=user)
        for _ in range(MAX_REDIRECTS):
            if resolved.redirect is None:
                return resolved, False
            if resolved.redirect == resolved.url:  # not canonical: this page, under its canonical URL
                return resolved, True
            resolved = resolve(self.app, resolved.redirect, user=user)
        raise ValueError(f"navigation to {url!r}: more than {MAX_REDIRECTS} redirects")

    def _default_title(self, resolved: Resolution) -> str:
        app_title = str(getattr(self.app, "title", ""))
        return f"Not found · {app_title}" if resolved.pattern == NOT_FOUND else app_title

    def _external(self, url: str) -> None:
        host = urlsplit(url).hostname or ""
        if urlsplit(url).scheme not in ("http", "https") or host not in self.allowed_redirect_hosts:
            raise ValueError(f"navigate({url!r}): {host or 'that URL'} is not in allowed_redirect_hosts")
        self.pending = Pending(url, NAV_LOAD)

    # -- pages kept aside: kept alive, or prefetched --------------------------------

    def _bring_back(self, resolved: Resolution) -> None:
        """Before rendering ``resolved``: adopt its prefetched or kept-alive page, if there is one
        and its parent (the innermost layout, or the RouterView) is still there."""
        if self.root is None:
            return
        entry = self.prefetched.pop(resolved.url, None)
        kept = self.kept.pop(resolved.pattern, None)
        for found in (entry, kept):
            if found is None:
                continue
            aside, title = found[0], found[1]
            fresh = found is kept or entry is not None and entry[2] >= time.monotonic()
            if fresh and not getattr(aside.inst.parent, "disposed", True):
                self.root.adopt(aside)
                self.title = title
                return
            aside.dispose()

    def keep(self, inst: ComponentInstance) -> bool:
        """Root.keeper: a page of a ``keep_alive`` route leaving the tree is kept aside (LRU)."""
        if inst.key not in self.keep_patterns and not getattr(inst.fn, _KEEP_ALIVE, False):
            return False
        if not isinstance(inst.key, str):
            return False
        if self.kept is _NO_ENTRIES:
            self.kept = {}
        self.kept[str(inst.key)] = (Aside(inst, []), self.leaving_title)
        while len(self.kept) > KEPT_PAGES:
            self.kept.pop(next(iter(self.kept)))[0].dispose()
        return True

    def prefetch(self, url: str) -> bool:
        """Render ``url``'s page aside (effects held back, nothing observable), for the click that follows."""
        if self.root is None or self.view is None or not self._prefetch_rate.allow():
            return False
        now = time.monotonic()
        for key in [k for k, v in self.prefetched.items() if v[2] < now]:
            self.prefetched.pop(key)[0].dispose()
        resolved = resolve(self.app, url, user=getattr(self.context.get("session"), "user", None))
        if (resolved.redirect is not None or resolved.url in self.prefetched or resolved.pattern == self.resolved.pattern
                or resolved.pattern in self.kept or resolved.status != 200 or resolved.layouts != self.resolved.layouts):
            return False  # a page under other layouts has no parent to wait in: it renders on the click
        parent = self._page_parent()
        if parent is None:
            return False
        self.prefetching, self.prefetch_title = True, str(getattr(self.app, "title", ""))
        try:
            aside = self.root.render_aside(parent, page_node(resolved))
        finally:
            self.prefetching = False
        if self.prefetched is _NO_ENTRIES:
            self.prefetched = {}
        self.prefetched[resolved.url] = (aside, self.prefetch_title, now + PREFETCH_TTL)
        while len(self.prefetched) > PREFETCH_ENTRIES:
            self.prefetched.pop(next(iter(self.prefetched)))[0].dispose()
        return True

    def _page_parent(self) -> ComponentInstance | None:
        """The instance the current page is a child of: the innermost layout, or the RouterView."""
        scope = self.view
        for layout in self.resolved.layouts:
            fn = getattr(layout, "__vango_component__", layout)
            scope = next((c for c in (scope.children.values() if scope else ()) if c.fn is fn and c.key is None), None)
        return scope

    def drop_aside(self) -> int:
        """Dispose every kept and prefetched page (memory pressure); how many."""
        asides = [v[0] for v in self.kept.values()] + [v[0] for v in self.prefetched.values()]
        self.kept.clear()
        self.prefetched.clear()
        for aside in asides:
            aside.dispose()
        return len(asides)

    def aside_nodes(self) -> int:
        """Resolved nodes held by kept and prefetched pages (the session's memory estimate counts them)."""
        return sum(count_nodes(v[0].inst.output) for v in (*self.kept.values(), *self.prefetched.values()))

    def take(self) -> Pending | None:
        """The navigation to announce with the next frame, if any (once)."""
        pending, self.pending = self.pending, None
        return pending

    def query(self) -> dict[str, list[str]]:
        self.url.get()  # a dependency: the reader re-renders when the URL changes
        return self.resolved.query


def page_node(r: Resolution) -> Node:
    """The page of a resolution alone, keyed by its route pattern (see ``Resolution.tree``)."""
    return component(r.page)(key=r.pattern, **(r.params if r.props is None else r.props))


@component
def RouterView() -> Node:
    """The route the location points at: its layouts, outermost first, around the keyed page."""
    location: Location = use_context("location")
    location.view = current_instance()
    location.url.get()  # re-render on every navigation
    return location.resolved.tree()


def mount(app: Any, url: str, *, worker: int, session: Any = None, on_dirty: Callable[[], None] | None = None,
          values: dict[str, Any] | None = None, render: bool = True, context: Mapping[str, Any] | None = None,
          allowed_redirect_hosts: list[str] | None = None) -> Root:
    """The one way a page is built: a Root whose top is :func:`RouterView` at ``url``.

    For the server-side render (no session), a new session, and a session
    remounted from its sealed ``values`` (rendered by the caller,
    ``render=False``: see ``Root.render_over``).
    """
    user = session.user if session is not None else (context or {}).get("user")
    location = Location(app, url, allowed_redirect_hosts=allowed_redirect_hosts, user=user)
    ctx = {**(context or {}), "worker": worker, "session": session, "location": location,
           "path": location.resolved.url, "params": location.resolved.params}
    root = Root(RouterView(), context=ctx, on_dirty=on_dirty)
    location.context, location.root = root.context, root
    root.keeper = location.keep
    if values:
        root.restore_signal_values(values)
    if render:
        root.render_initial()
    return root


# -- what pages and handlers call --------------------------------------------------------


def use_head(*, title: str | None = None, meta: Mapping[str, str] | None = None) -> None:
    """Set the document title and ``<meta name=… content=…>`` tags of the page being rendered.

    The server-rendered page carries them in its ``<head>``; every live
    navigation replaces them (the NAV frame carries both).
    """
    location: Location | None = use_context("location")
    if location is None:
        return
    if location.prefetching:  # rendering a page ahead: the page shown keeps its head
        if title is not None:
            location.prefetch_title = title
        return
    if title is not None:
        location.title = title
    if meta is not None:
        location.meta = {str(k): str(v) for k, v in meta.items()}


class Query(Mapping[str, str]):
    """The query string of the current URL: ``q["name"]`` (first value), ``q.all("name")``, ``q.set(name=...)``."""

    def __init__(self, location: Location) -> None:
        self._location = location
        self._values = location.query()

    def __getitem__(self, key: str) -> str:
        return self._values[key][0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def all(self, key: str) -> list[str]:
        return list(self._values.get(key, []))

    def set(self, **changes: str | None) -> None:
        """Change query parameters (None removes one); the URL is replaced, the page re-renders."""
        values = {k: list(v) for k, v in self._location.resolved.query.items()}
        for key, value in changes.items():
            if value is None or value == "":
                values.pop(key, None)
            else:
                values[key] = [str(value)]
        path = urlsplit(self._location.resolved.url).path
        query = urlencode([(k, v) for k, vs in values.items() for v in vs])
        self._location.go(path + ("?" + query if query else ""), NAV_REPLACE)


def use_query() -> Query:
    """The current URL's query string; reading it re-renders the component when the URL changes."""
    location: Location | None = use_context("location")
    if location is None:
        raise RuntimeError("use_query() needs a page mounted by vango_mp (no location in context)")
    return Query(location)


def navigate(path: str, *, replace: bool = False, params: Mapping[str, Any] | None = None,
             scroll: bool = True) -> None:
    """Send the session to ``path`` (from an event handler or effect); ``params`` become its query string.

    ``scroll=False`` keeps the scroll position (and focus) where they are.
    Another origin only if its host is in ``allowed_redirect_hosts`` (a full
    page load); otherwise ValueError.
    """
    location = _current.get()
    if location is None:
        raise RuntimeError("navigate() is for event handlers and effects of a live session")
    if params:
        path += ("&" if "?" in path else "?") + urlencode({k: str(v) for k, v in params.items()})
    location.go(path, NAV_REPLACE if replace else NAV_PUSH)
    if not scroll and location.pending is not None:
        location.pending.scroll = False


def acting(location: Location | None) -> contextvars.Token[Location | None]:
    """Make ``location`` the one :func:`navigate` acts on (a session, around its handlers)."""
    return _current.set(location)


def done_acting(token: contextvars.Token[Location | None]) -> None:
    _current.reset(token)


def acting_location() -> Location | None:
    """The Location a running handler or effect acts on (None outside a live session's step)."""
    return _current.get()
