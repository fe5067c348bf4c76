"""Render resolved nodes to HTML (SSR, FULL frames) and to the patch wire form.

Every element carries ``data-hid``; elements with handlers carry ``data-ve``
(sorted event names). No whitespace is added between tags, so the browser's
parse has exactly our child lists.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .nodes import VOID_TAGS, Element, Text

__all__ = ["render_html", "vnode_wire", "events_attr", "escape_text", "escape_attr", "NEWLINE_EATERS"]

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


def render_html(nodes: Element | Text | Iterable[Element | Text]) -> str:
    """Serialise resolved nodes (no components left) to HTML."""
    out: list[str] = []
    if type(nodes) is Element or type(nodes) is Text:
        _render(nodes, out)  # type: ignore[arg-type]
    else:
        for node in nodes:  # type: ignore[union-attr]
            _render(node, out)
    return "".join(out)


def _render(node: Element | Text, out: list[str]) -> None:
    if type(node) is Text:
        out.append(escape_text(node.text))
        return
    if type(node) is not Element:
        raise TypeError(f"cannot render {type(node).__name__}: resolve components first (vdom.mount.Root)")
    tag = node.tag
    out.append("<" + tag)
    for name, value in node.attrs.items():
        out.append(f' {name}="{escape_attr(value)}"' if value else " " + name)
    out.append(f' data-hid="{node.hid}"')
    if node.events:
        out.append(f' data-ve="{events_attr(node.events)}"')
    out.append(">")
    if tag in VOID_TAGS:
        return
    children = node.children
    if tag in NEWLINE_EATERS and children and type(children[0]) is Text and children[0].text[:1] == "\n":
        out.append("\n")  # the parser eats this one and keeps the text's own newline
    for child in children:
        if type(child) is Text:
            out.append(escape_text(child.text))
        else:
            _render(child, out)
    out.append(f"</{tag}>")


def vnode_wire(node: Element | Text) -> Any:
    """INSERT/REPLACE payload: a str, or ``[tag, hid, attrs (with data-ve), children]``."""
    if type(node) is Text:
        return node.text
    attrs = node.attrs
    if node.events:
        attrs = {**attrs, "data-ve": events_attr(node.events)}
    return [node.tag, node.hid, attrs, [vnode_wire(c) for c in node.children]]
