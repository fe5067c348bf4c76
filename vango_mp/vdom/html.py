"""Render resolved nodes to HTML (SSR, FULL frames) and to the patch wire form.

Every element carries ``data-hid``; elements with handlers carry ``data-ve``
(sorted event names). No whitespace is added between tags, so the browser's
parse has exactly our child lists.

Both forms apply the render-safety rules of :mod:`.safety`: URL attributes
pass the URL policy, ``on*``/reserved/malformed attribute names and
malformed tag names raise :class:`~.safety.UnsafeMarkupError`, and
``<script>``/``<style>`` text is raw but cannot end its element.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .nodes import VOID_TAGS, Element, Text
from .safety import PLAIN, RAW_TEXT_TAGS, UnsafeMarkupError, _kinds, _tags, attr_kind, check_tag, raw_text, \
    sanitize_value

__all__ = [
    "render_html", "vnode_wire", "events_attr", "escape_text", "escape_attr", "safe_attrs", "NEWLINE_EATERS",
]

#: The HTML parser drops one newline right after these start tags.
NEWLINE_EATERS = frozenset({"pre", "textarea", "listing"})


# A literal CR would be normalised to LF by the browser's parser, hence &#13;.
_TEXT_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#13;"))
_ATTR_ESCAPES = (*_TEXT_ESCAPES, ('"', "&quot;"), ("'", "&#x27;"))


def _escape(s: str, table: tuple[tuple[str, str], ...]) -> str:
    for char, entity in table:  # "&" first, so entities are not escaped twice
        if char in s:
            s = s.replace(char, entity)
    return s


def escape_text(s: str) -> str:
    """Escape text content (&, <, >, CR)."""
    return _escape(s, _TEXT_ESCAPES)


def escape_attr(s: str) -> str:
    """Escape a double-quoted attribute value (&, <, >, CR, ", ')."""
    return _escape(s, _ATTR_ESCAPES)


def events_attr(events: dict[str, Any]) -> str:
    """The ``data-ve`` value for a handler dict: sorted, space separated."""
    return " ".join(sorted(events))


def safe_attrs(node: Element) -> dict[str, str]:
    """``node.attrs`` with the render-safety rules applied (the same dict when nothing changes)."""
    attrs = node.attrs
    out = attrs
    tag = node.tag
    low = _tags.get(tag) or check_tag(tag)
    for name, value in attrs.items():
        kind = _kinds.get(name)
        if kind is None:
            kind = attr_kind(name, tag, node.hid)
        if kind != PLAIN:
            safe = sanitize_value(kind, low, name, value)
            if safe is not value:
                if out is attrs:
                    out = dict(attrs)
                out[name] = safe
    return out


# Namespaces as the HTML parser tracks them (close enough to decide one thing:
# whether <style>/<script> text is raw text -- HTML -- or parsed -- SVG/MathML).
_HTML, _SVG, _MATH = 0, 1, 2
_SVG_HTML_POINTS = frozenset({"foreignobject", "desc", "title"})
_MATH_TEXT_POINTS = frozenset({"mi", "mo", "mn", "ms", "mtext"})


def _child_ns(ns: int, parent: str, child: str) -> int:
    """The namespace ``child`` gets inside ``parent`` (in namespace ``ns``; tags in lowercase).

    Where in doubt it answers SVG/MathML: text there is escaped, which is
    always safe (at worst a stylesheet there does not apply).
    """
    if ns == _SVG and parent not in _SVG_HTML_POINTS:
        return _SVG
    if ns == _MATH:
        if parent == "annotation-xml" and child == "svg":
            return _SVG
        if parent not in _MATH_TEXT_POINTS or child in ("mglyph", "malignmark"):
            return _MATH
    return _SVG if child == "svg" else _MATH if child == "math" else _HTML


def render_html(nodes: Element | Text | Iterable[Element | Text]) -> str:
    """Serialise resolved nodes (no components left) to HTML."""
    out: list[str] = []
    if type(nodes) is Element or type(nodes) is Text:
        _render(nodes, out, _HTML, "")  # type: ignore[arg-type]
    else:
        for node in nodes:  # type: ignore[union-attr]
            _render(node, out, _HTML, "")
    return "".join(out)


def _render(node: Element | Text, out: list[str], pns: int, parent: str) -> None:
    """Append ``node``'s HTML; ``pns`` and ``parent``: its parent's namespace and lowercase tag."""
    if type(node) is Text:
        out.append(escape_text(node.text))
        return
    if type(node) is not Element:
        raise TypeError(f"cannot render {type(node).__name__}: resolve components first (vdom.mount.Root)")
    tag = node.tag
    low = _tags.get(tag) or check_tag(tag)
    ns = _HTML if pns == _HTML and low != "svg" and low != "math" else _child_ns(pns, parent, low)
    out.append("<" + tag)
    for name, value in node.attrs.items():
        kind = _kinds.get(name)
        if kind is None:
            kind = attr_kind(name, tag, node.hid)
        if kind:
            value = sanitize_value(kind, low, name, value)
        out.append(f' {name}="{escape_attr(value)}"' if value else " " + name)
    out.append(f' data-hid="{node.hid}"')
    if node.events:
        out.append(f' data-ve="{events_attr(node.events)}"')
    out.append(">")
    if tag in VOID_TAGS:
        return
    children = node.children
    if low in RAW_TEXT_TAGS and ns == _HTML:
        for child in children:
            if type(child) is not Text:
                raise UnsafeMarkupError(f"<{tag} data-hid={node.hid}> holds only text, not {child!r}")
            out.append(raw_text(low, child.text))
        out.append(f"</{tag}>")
        return
    if tag in NEWLINE_EATERS and children and type(children[0]) is Text and children[0].text[:1] == "\n":
        out.append("\n")  # the parser eats this one and keeps the text's own newline
    for child in children:
        if type(child) is Text:
            out.append(escape_text(child.text))
        else:
            _render(child, out, ns, low)
    out.append(f"</{tag}>")


def vnode_wire(node: Element | Text) -> Any:
    """INSERT/REPLACE payload: a str, or ``[tag, hid, attrs (with data-ve), children]``.

    The client builds it with createElement/createTextNode/setAttribute, so
    text needs no escaping; attributes get the same safety rules as HTML.
    """
    if type(node) is Text:
        return node.text
    tag = node.tag
    if tag not in _tags:
        check_tag(tag)
    attrs = node.attrs
    for name in attrs:
        kind = _kinds.get(name)
        if kind is None or kind:  # a name not checked yet, or one the URL policy governs
            attrs = safe_attrs(node)
            break
    if node.events:
        attrs = {**attrs, "data-ve": events_attr(node.events)}
    return [tag, node.hid, attrs, [vnode_wire(c) for c in node.children]]
