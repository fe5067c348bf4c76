"""Canonical URLs: any URL brought to the one form a browser sends, and query strings parsed.

Pure functions, shared by the router (:mod:`vango_mp.routing`) for first
loads and live navigations; see that module's docstring for where decoding
happens.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote_to_bytes

__all__ = ["CanonicalURL", "InvalidPath", "canonicalize", "canonicalize_path", "is_canonical", "parse_query"]




class InvalidPath(ValueError):
    """A URL that cannot be canonicalised: an absolute URL, a backslash, a NUL or control
    character, or a percent-escape that does not decode as UTF-8 (answered with 400)."""


def _encoder(also: str) -> Callable[[str], str]:
    """Percent-encode what a browser would (non-printable-ASCII and ``also``); keep ``%XX``, encode a lone ``%``."""
    pattern = re.compile(r"%(?![0-9A-Fa-f]{2})|[^\x21-\x7e]|[" + re.escape(also) + "]")

    def escape(m: re.Match[str]) -> str:
        return "".join(f"%{b:02X}" for b in m.group().encode("utf-8"))

    def encode(text: str) -> str:
        return pattern.sub(escape, text) if text else text

    return encode


# The WHATWG URL standard's percent-encode sets (path, query, fragment) beyond controls, space and non-ASCII.
_encode_path = _encoder('"#<>?`{}')
_encode_query = _encoder('"#<>')
_encode_fragment = _encoder('"<>`')
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DOT = frozenset({".", "%2e"})
_DOTDOT = frozenset({"..", ".%2e", "%2e.", "%2e%2e"})


@dataclass(frozen=True, slots=True)
class CanonicalURL:
    """A canonical URL in parts: ``path`` (percent-encoded), ``query`` and ``fragment`` (without ``?``/``#``).

    ``changed``: the input was not canonical — a first load answers with a
    redirect to :attr:`url`, a live navigation replaces the browser's URL.
    """

    path: str
    query: str = ""
    fragment: str = ""
    changed: bool = False

    @property
    def url(self) -> str:
        """``path?query#fragment`` (without an empty ``?`` or ``#``)."""
        url = self.path
        if self.query:
            url += "?" + self.query
        if self.fragment:
            url += "#" + self.fragment
        return url


def canonicalize(url: str) -> CanonicalURL:
    """The canonical form of ``url`` (a path, with query and fragment if any), and whether it changed.

    The path: percent-encoded as a browser sends it (see the module doc),
    duplicate slashes collapsed, ``.`` and ``..`` segments resolved (also
    spelt ``%2e``; ``..`` never climbs above the root), no trailing slash
    except for ``/``, a leading ``/`` added. The query and fragment are kept
    as they are, except characters a browser would have percent-encoded
    (and an empty ``?`` or ``#`` is dropped). Raises :class:`InvalidPath`
    for an absolute URL (``https://x/``, ``javascript:``), a backslash, a
    control character or NUL (``%00`` too), or an escape that is not UTF-8.

    >>> canonicalize("/a//b/./c/../d/?x=1").url
    '/a/b/d?x=1'
    >>> canonicalize("/a/b").changed, canonicalize("/a/b/").changed
    (False, True)
    >>> canonicalize("/hello/Zoë Smith").path
    '/hello/Zo%C3%AB%20Smith'
    """
    if not isinstance(url, str):
        raise TypeError(f"canonicalize() takes a str, not {type(url).__name__}")
    rest, has_hash, fragment = url.partition("#")
    path, has_query, query = rest.partition("?")
    if _SCHEME.match(path):
        raise InvalidPath(f"{url!r} is an absolute URL, not a path")
    if "\\" in path:
        raise InvalidPath(f"{url!r}: a backslash in the path")
    if _CONTROL.search(path):
        raise InvalidPath(f"{url!r}: a control character in the path")
    try:
        encoded = _encode_path(path)
        query_out = _encode_query(_CONTROL.sub(lambda m: f"%{ord(m.group()):02X}", query))
        fragment_out = _encode_fragment(_CONTROL.sub(lambda m: f"%{ord(m.group()):02X}", fragment))
    except UnicodeEncodeError:
        raise InvalidPath(f"{url!r}: not valid Unicode text") from None
    segments: list[str] = []
    for seg in encoded.split("/"):
        low = seg.lower()
        if not seg or low in _DOT:
            continue
        if low in _DOTDOT:
            if segments:
                segments.pop()
            continue
        if "%" in seg:
            raw = unquote_to_bytes(seg)
            if b"\0" in raw:
                raise InvalidPath(f"{url!r}: a NUL byte in the path")
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidPath(f"{url!r}: a percent-escape that is not UTF-8") from None
        segments.append(seg)
    canonical = "/" + "/".join(segments)
    changed = (canonical != path or query_out != query or fragment_out != fragment
               or (bool(has_query) and not query) or (bool(has_hash) and not fragment))
    return CanonicalURL(canonical, query_out, fragment_out, changed)


def canonicalize_path(url: str) -> str:
    """The canonical URL of ``url`` as one string (see :func:`canonicalize`).

    >>> canonicalize_path("//items/../items/7/?sort=name")
    '/items/7?sort=name'
    """
    return canonicalize(url).url


def is_canonical(url: str) -> bool:
    """Whether ``url`` is its own canonical form (False too when it is no valid path at all)."""
    try:
        return not canonicalize(url).changed
    except InvalidPath:
        return False


def parse_query(query: str) -> dict[str, list[str]]:
    """A query string (without ``?``) as a dict of lists: every value of each name, in order.

    Names keep the order they first appear in; ``+`` is a space; each
    name and value is percent-decoded once (UTF-8, invalid bytes replaced);
    blank values are kept.

    >>> parse_query("q=a+b&tag=x&tag=y&empty=")
    {'q': ['a b'], 'tag': ['x', 'y'], 'empty': ['']}
    """
    out: dict[str, list[str]] = {}
    for name, value in parse_qsl(query, keep_blank_values=True, errors="replace"):
        out.setdefault(name, []).append(value)
    return out
