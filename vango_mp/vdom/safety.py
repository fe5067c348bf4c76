"""Render safety: the URL policy, attribute rules and raw-text neutralisation.

What the HTML renderer (SSR, FULL frames) and the patch wire form (INSERT,
REPLACE, SET_ATTR) both apply, so that app data placed in a tree can never
become script:

* **URL-bearing attributes** (``href``, ``src``, ``action``, ``formaction``,
  ``poster``, ``cite``, ``background``, ``xlink:href``, ``data`` on
  ``<object>``, every ``srcset`` and ``ping`` entry, the ``to``/``from``/
  ``by``/``values`` of SVG animations, ...) pass a :class:`URLPolicy` (the
  reference's ``vdom.URLPolicy``): relative URLs and the allowed schemes
  (``http``, ``https``, ``mailto``, ``tel`` by default) are kept; any other
  scheme (``javascript:``, ``vbscript:``, ``data:``, ``file:``, ...) is
  *neutralised*: the value becomes ``about:blank`` (a ``srcset``/``ping``
  entry is dropped). The scheme is read the way a browser reads it and more
  suspiciously: case, leading/embedded whitespace and control characters,
  zero-width and full-width characters and HTML character references are
  all seen through. Neutralising (rather than raising) keeps one bad link in
  user data from failing a whole render.
* **Attribute names**: ``on*`` event-handler attributes (``onclick="..."``)
  are refused with :class:`UnsafeAttributeError` naming the element --
  handlers are ``on_click=fn``; so are names that are not attribute names
  and the runtime's own ``data-hid``/``data-ve`` in any case. Tag names
  must be tag names.
* **Raw text**: ``<style>`` and ``<script>`` text is written as is (``ul > li``
  must work) but can never end its element (or a raw-text ancestor such as
  ``<noscript>``/``<textarea>``): every ``</`` becomes ``<\\/``, and in a
  script ``<!--`` becomes ``<\\!--`` (the parser's escaped states could
  otherwise swallow the real end tag). Inside SVG/MathML, where ``<style>``
  is not raw text, it is escaped like any text.

The policy is process-wide (:func:`set_url_policy`); set it before the
workers fork, as an app's configuration would.
"""

from __future__ import annotations

import html as _html
import re
import unicodedata
from dataclasses import dataclass, field

__all__ = [
    "URLPolicy", "DEFAULT_URL_POLICY", "BLOCKED_URL", "UnsafeMarkupError", "UnsafeAttributeError",
    "set_url_policy", "get_url_policy", "url_scheme", "safe_url", "safe_attr", "attr_kind",
    "check_tag", "raw_text", "RAW_TEXT_TAGS",
]

#: What a neutralised URL becomes: inert for href, src, action and the rest alike.
BLOCKED_URL = "about:blank"
#: Schemes allowed by default (relative URLs are always allowed unless the policy says otherwise).
DEFAULT_SCHEMES = frozenset({"http", "https", "mailto", "tel"})
#: ``data:`` media types that may be an image source when ``URLPolicy.data_images`` is on.
SAFE_DATA_IMAGES = frozenset({"image/png", "image/gif", "image/jpeg", "image/webp", "image/avif"})
_CACHE_LIMIT = 4096  # names and URLs may come from data (h.div(**attrs)): keep the caches bounded
#: Elements whose text the HTML parser does not decode (in the HTML namespace).
RAW_TEXT_TAGS = frozenset({"script", "style"})


class UnsafeMarkupError(ValueError):
    """Markup the renderer refuses to produce (a programming error in the app, not bad data)."""


class UnsafeAttributeError(UnsafeMarkupError):
    """An attribute name that must not be rendered (``on*`` handlers, reserved or malformed names)."""


@dataclass(frozen=True)
class URLPolicy:
    """Scheme allow-list for URL-bearing attributes (the reference's ``vdom.URLPolicy``).

    ``schemes``: allowed schemes, lowercase. ``allow_relative``: relative and
    scheme-relative URLs (``/x``, ``x?y``, ``#f``, ``//host/x``). ``data_images``:
    also allow ``data:`` URLs of :data:`SAFE_DATA_IMAGES` types where the
    browser only ever decodes an image (``<img src/srcset>``, ``<source
    srcset>``, ``<video poster>``, ``<input src>``); off by default.
    ``replacement``: what a refused URL becomes.
    """

    schemes: frozenset[str] = field(default=DEFAULT_SCHEMES)
    allow_relative: bool = True
    data_images: bool = False
    replacement: str = BLOCKED_URL
    _verdicts: dict[tuple[str, bool], bool] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "schemes", frozenset(s.lower().rstrip(":") for s in self.schemes))
        for s in ("javascript", "vbscript"):
            if s in self.schemes:
                raise ValueError(f"URLPolicy: scheme {s!r} can never be allowed")

    def allows(self, url: str, image: bool = False) -> bool:
        """Whether ``url`` may be rendered as is (``image``: the attribute only ever loads an image)."""
        c = url[:1]
        if c == "/" or c == "#" or c == "?" or c == ".":  # every reading starts there: no scheme
            return self.allow_relative
        key = (url, image)
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._allows(url, image)
            if len(self._verdicts) >= _CACHE_LIMIT:
                self._verdicts.clear()
            self._verdicts[key] = verdict
        return verdict

    def _allows(self, url: str, image: bool) -> bool:
        found = _schemes(url)
        if not found:
            return True
        for scheme, rest in found:
            if scheme is None:
                if not self.allow_relative:
                    return False
            elif scheme not in self.schemes:
                if not (scheme == "data" and image and self.data_images and _data_type(rest) in SAFE_DATA_IMAGES):
                    return False
        return True

    def sanitize(self, url: str, image: bool = False) -> str:
        """``url`` itself when allowed, else the replacement."""
        return url if self.allows(url, image) else self.replacement


DEFAULT_URL_POLICY = URLPolicy()
_policy = DEFAULT_URL_POLICY


def set_url_policy(policy: URLPolicy | None) -> None:
    """Make ``policy`` the process-wide URL policy (None: the default)."""
    global _policy
    if policy is not None and not isinstance(policy, URLPolicy):
        raise TypeError(f"expected a URLPolicy, got {type(policy).__name__}")
    _policy = policy or DEFAULT_URL_POLICY


def get_url_policy() -> URLPolicy:
    return _policy


# region Reading a scheme ---------------------------------------------------------

# The URL parser strips leading C0 controls and spaces and drops tabs and
# newlines anywhere; we drop more (all controls, Unicode spaces, zero-width
# and bidi formatting characters) wherever they are: a false alarm only costs
# a strange-looking link its scheme.
_INVISIBLE = re.compile(
    "[\x00-\x20\x7f-\xa0\xad\u034f\u061c\u115f\u1160\u1680\u17b4\u17b5\u180b-\u180f\u2000-\u200f"
    "\u2028-\u202f\u205f-\u206f\u3000\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb]+"
)
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*):")
_PLAIN = re.compile(r"[!#-%'-~]*")  # printable ASCII without '&' and '"': no tricks possible


def url_scheme(url: str) -> str | None:
    """The scheme a browser reads in ``url`` (lowercase), or None for a relative URL."""
    found = _schemes(url)
    for scheme, _ in found:
        if scheme is not None:
            return scheme
    return None


def _schemes(url: str) -> list[tuple[str | None, str]]:
    """(scheme or None, what follows it) for each reading of ``url``: as written, and decoded/normalised."""
    if _PLAIN.fullmatch(url):
        return [_split(url)]
    decoded = _html.unescape(url)
    out = []
    for r in (url, decoded) if decoded != url else (url,):
        for form in (r, unicodedata.normalize("NFKC", r)):
            cleaned = _INVISIBLE.sub("", form)
            out.append(_split(cleaned))
            # A doubly encoded reference (&amp;#106;) is decoded once more: a browser would
            # not, but a value that needs it to look harmless is not worth keeping.
            if "&" in cleaned:
                out.append(_split(_INVISIBLE.sub("", _html.unescape(cleaned))))
    return out


def _split(url: str) -> tuple[str | None, str]:
    m = _SCHEME.match(url)
    if m is None:
        return None, url
    return m.group(1).lower(), url[m.end():]


def _data_type(rest: str) -> str:
    """The media type of a ``data:`` URL's remainder (``image/png;base64,...`` -> ``image/png``)."""
    end = len(rest)
    for sep in (";", ","):
        i = rest.find(sep)
        if 0 <= i < end:
            end = i
    return _INVISIBLE.sub("", rest[:end]).lower()


# endregion
# region Attributes -------------------------------------------------------------

# kinds of attribute, by lowercase name
PLAIN, URL, SRCSET, URL_LIST, OBJECT_DATA, ANIM_VALUE = range(6)

_URL_NAMES = frozenset({
    "href", "src", "action", "formaction", "poster", "cite", "background", "longdesc", "manifest",
    "codebase", "classid", "icon", "lowsrc", "dynsrc", "profile", "xlink:href", "xml:base",
})
_KIND_BY_NAME: dict[str, int] = {
    **{n: URL for n in _URL_NAMES},
    "srcset": SRCSET, "imagesrcset": SRCSET, "ping": URL_LIST, "data": OBJECT_DATA,
    "to": ANIM_VALUE, "from": ANIM_VALUE, "by": ANIM_VALUE, "values": ANIM_VALUE,
}
_ANIMATION_TAGS = frozenset({"animate", "set", "animatemotion", "animatetransform", "animatecolor"})
_IMAGE_ONLY = frozenset({("img", "src"), ("img", "srcset"), ("source", "srcset"), ("video", "poster"),
                         ("input", "src")})
_ATTR_NAME = re.compile(r"[a-zA-Z_:][-a-zA-Z0-9_:.]*")
_HANDLER = re.compile(r"on[a-z]", re.IGNORECASE)
_RESERVED = frozenset({"data-hid", "data-ve"})
_TAG_NAME = re.compile(r"[a-zA-Z][-a-zA-Z0-9_.]*")

_kinds: dict[str, int] = {}  # attribute name as written -> kind, for names already checked
_tags: dict[str, str] = {}  # tag names already checked -> lowercase


def _describe(tag: str, hid: int) -> str:
    return f"<{tag} data-hid={hid}>" if hid else f"<{tag}>"


def name_problem(name: str) -> str | None:
    """Why attribute ``name`` must not be rendered, or None when it may."""
    if type(name) is not str or not _ATTR_NAME.fullmatch(name):
        return f"{name!r} is not a valid attribute name"
    if _HANDLER.match(name):
        return (f"{name!r} is an inline event handler: script text is never rendered; "
                f"handle events with on_<event>=fn (on_click=..., on_input=...)")
    if name.lower() in _RESERVED:
        return f"{name!r} is reserved for the runtime"
    return None


def attr_kind(name: str, tag: str = "", hid: int = 0) -> int:
    """The kind of attribute ``name`` (PLAIN, URL, ...); raise UnsafeAttributeError for a refused name."""
    kind = _kinds.get(name)
    if kind is not None:
        return kind
    problem = name_problem(name)
    if problem is not None:
        raise UnsafeAttributeError(f"{_describe(tag, hid)}: attribute {problem}")
    kind = _KIND_BY_NAME.get(name.lower(), PLAIN)
    if len(_kinds) >= _CACHE_LIMIT:
        _kinds.clear()
    _kinds[name] = kind
    return kind


def check_tag(tag: str) -> str:
    """``tag`` in lowercase; raise UnsafeMarkupError unless it is a tag name (no spaces, quotes, ``/``, ``>``...)."""
    low = _tags.get(tag)
    if low is not None:
        return low
    if type(tag) is not str or not _TAG_NAME.fullmatch(tag):
        raise UnsafeMarkupError(f"{tag!r} is not a valid tag name")
    if len(_tags) >= _CACHE_LIMIT:
        _tags.clear()
    low = _tags[tag] = tag.lower()
    return low


def safe_attr(tag: str, name: str, value: str, hid: int = 0) -> str:
    """``value`` as it may be sent for attribute ``name`` of a ``tag`` element (raises for refused names)."""
    kind = _kinds.get(name)
    if kind is None:
        kind = attr_kind(name, tag, hid)
    if kind == PLAIN:
        return value
    return sanitize_value(kind, _tags.get(tag) or check_tag(tag), name, value)


def sanitize_value(kind: int, tag: str, name: str, value: str) -> str:
    """Apply the URL policy to a non-PLAIN attribute value (``tag`` in lowercase)."""
    policy = _policy
    if kind == URL:
        return policy.sanitize(value, (tag, name.lower()) in _IMAGE_ONLY)
    if kind == OBJECT_DATA:
        return policy.sanitize(value) if tag == "object" else value
    if kind == SRCSET:
        return _srcset(value, policy, (tag, name.lower()) in _IMAGE_ONLY)
    if kind == URL_LIST:
        kept = [u for u in value.split() if policy.allows(u)]
        return value if len(kept) == len(value.split()) else " ".join(kept)
    if kind == ANIM_VALUE:
        # <set attributeName="href" to="javascript:..."> is a classic: check every
        # animation value as a URL (numbers, colours and transforms have no scheme).
        if tag not in _ANIMATION_TAGS:
            return value
        parts = value.split(";") if name.lower() == "values" else [value]
        return value if all(policy.allows(p) for p in parts) else policy.replacement
    return value


def safe_url(url: str, image: bool = False) -> str:
    """``url`` under the current policy: itself, or the replacement."""
    return _policy.sanitize(url, image)


_SPACE = " \t\n\r\f"


def _srcset(value: str, policy: URLPolicy, image: bool) -> str:
    """Drop the srcset candidates whose URL the policy refuses (HTML's srcset parsing rules)."""
    kept: list[str] = []
    dropped = False
    pos, n = 0, len(value)
    while True:
        while pos < n and (value[pos] in _SPACE or value[pos] == ","):
            pos += 1
        if pos >= n:
            break
        start = pos
        while pos < n and value[pos] not in _SPACE:
            pos += 1
        url = value[start:pos]
        if url.endswith(","):
            url = url.rstrip(",")
            candidate = url
        else:
            depth = 0
            while pos < n:
                c = value[pos]
                if c == "(":
                    depth += 1
                elif c == ")":
                    depth = max(0, depth - 1)
                elif c == "," and depth == 0:
                    break
                pos += 1
            candidate = value[start:pos].strip()
            pos += 1
        if url and policy.allows(url, image):
            kept.append(candidate)
        else:
            dropped = True
    return ", ".join(kept) if dropped else value


# endregion
# region Raw text ----------------------------------------------------------------

def raw_text(tag: str, text: str) -> str:
    """The text of a ``<script>``/``<style>`` written unescaped but unable to leave its element.

    Every ``</`` becomes ``<\\/`` (the only way raw text can end -- its own end
    tag, or a raw-text/RCDATA ancestor's); a script's ``<!--`` becomes
    ``<\\!--``. Both are the same string in JS and CSS string literals, where
    they occur in practice. CR becomes LF, as the parser would make it.
    """
    if "</" in text:
        text = text.replace("</", "<\\/")
    if tag == "script" and "<!--" in text:
        text = text.replace("<!--", "<\\!--")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


# endregion
