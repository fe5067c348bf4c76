"""Routes, path parameters and the App an author hands to ``vango-mp --app``.

A route pattern is a path whose segments may be ``{name}`` parameters; the
page component receives the parameters as keyword props.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

Page = Callable[..., Any]
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
    """What ``--app module:attr`` names: the routes of a vango-mp application."""

    def __init__(self, routes: Mapping[str, Page], *, title: str = "vango-mp") -> None:
        self.title = title
        self.routes = [Route(pattern, page) for pattern, page in routes.items()]

    def match(self, path: str) -> Match | None:
        """The first route matching ``path`` (query string ignored), or None."""
        clean = canonical_path(path)
        for route in self.routes:
            found = route.match(clean)
            if found is not None:
                return found
        return None
