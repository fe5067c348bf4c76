"""A pure-Python DOM model: parse our HTML, apply patches, query with simple CSS.

It applies every op exactly as ``static/vango.js`` does (sequential indexes;
``value``/``checked``/``selected`` mirrored into ``props``), so the property
test and ``vango_mp.testing`` can check the server against it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from typing import Any

from ..protocol import INSERT, MOVE, REMOVE, REMOVE_ATTR, REPLACE, SET_ATTR, SET_TEXT
from .html import NEWLINE_EATERS, escape_attr, escape_text
from .nodes import VOID_TAGS

__all__ = ["DomNode", "PatchError", "parse_html", "apply_patches", "find_by_hid", "select", "select_one"]

TEXT = "#text"
DOCUMENT = "#document"
_PROPS = frozenset({"value", "checked", "selected"})


class PatchError(ValueError):
    """A patch that does not fit the DOM (the JS client would throw and resync)."""


class DomNode:
    """An element (``tag``, ``attrs``, ``children``) or a text node (``tag == "#text"``, ``text``)."""

    __slots__ = ("tag", "attrs", "children", "text", "parent", "props")

    def __init__(self, tag: str, attrs: dict[str, str] | None = None, text: str = "") -> None:
        self.tag = tag
        self.attrs: dict[str, str] = attrs if attrs is not None else {}
        self.children: list[DomNode] = []
        self.text = text
        self.parent: DomNode | None = None
        self.props: dict[str, Any] = {}  # DOM properties set by patches (value, checked, selected)

    @property
    def is_text(self) -> bool:
        """A text node (no attrs, no children)."""
        return self.tag == TEXT

    @property
    def hid(self) -> int | None:
        """``data-hid`` as an int, None for text and unnumbered nodes."""
        v = self.attrs.get("data-hid")
        return int(v) if v is not None else None

    @property
    def classes(self) -> list[str]:
        """The ``class`` attribute split on whitespace."""
        return self.attrs.get("class", "").split()

    @property
    def value(self) -> Any:
        """The form value a browser would report: the property if set, else the attribute."""
        return self.props.get("value", self.attrs.get("value", ""))

    def get(self, name: str, default: str | None = None) -> str | None:
        """An attribute value."""
        return self.attrs.get(name, default)

    def append(self, child: DomNode) -> None:
        """Add ``child`` last."""
        child.parent = self
        self.children.append(child)

    def insert(self, index: int, child: DomNode) -> None:
        """Insert ``child`` so that it ends up at ``index`` (PatchError if out of range)."""
        if not 0 <= index <= len(self.children):
            raise PatchError(f"index {index} out of range under {self.tag} hid={self.hid}")
        child.parent = self
        self.children.insert(index, child)

    def pop(self, index: int) -> DomNode:
        """Take out the child at ``index`` (PatchError if there is none)."""
        if not 0 <= index < len(self.children):
            raise PatchError(f"no child {index} under {self.tag} hid={self.hid}")
        child = self.children.pop(index)
        child.parent = None
        return child

    def iter(self) -> Iterator[DomNode]:
        """This node and its descendants in document order."""
        yield self
        for c in self.children:
            yield from c.iter()

    def elements(self) -> Iterator[DomNode]:
        """Descendant elements (not self) in document order."""
        for c in self.children:
            if c.tag != TEXT:
                yield c
                yield from c.elements()

    def text_content(self) -> str:
        """All descendant text, concatenated (DOM ``textContent``)."""
        if self.tag == TEXT:
            return self.text
        return "".join(c.text_content() for c in self.children)

    def inner_html(self) -> str:
        """Canonical HTML of the children (attributes sorted): equal trees give equal strings."""
        out: list[str] = []
        for c in self.children:
            c._serialize(out)
        return "".join(out)

    def outer_html(self) -> str:
        """Canonical HTML of this node."""
        out: list[str] = []
        self._serialize(out)
        return "".join(out)

    def _serialize(self, out: list[str]) -> None:
        if self.tag == TEXT:
            out.append(escape_text(self.text))
            return
        out.append("<" + self.tag)
        for name in sorted(self.attrs):
            out.append(f' {name}="{escape_attr(self.attrs[name])}"')
        out.append(">")
        if self.tag in VOID_TAGS:
            return
        for c in self.children:
            c._serialize(out)
        out.append(f"</{self.tag}>")

    def __repr__(self) -> str:
        if self.tag == TEXT:
            return f"DomText({self.text!r})"
        return f"<DomNode {self.tag} {self.attrs!r} children={len(self.children)}>"


# region Parsing --------------------------------------------------------------


class _Builder(HTMLParser):
    """Builds DomNodes; closes void elements at once and eats the newline after <pre>/<textarea>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = DomNode(DOCUMENT)
        self.stack = [self.root]
        self.eat_newline = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = DomNode(tag, {k: v if v is not None else "" for k, v in attrs})
        self.stack[-1].append(node)
        self.eat_newline = False
        if tag not in VOID_TAGS:
            self.stack.append(node)
            self.eat_newline = tag in NEWLINE_EATERS

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].append(DomNode(tag, {k: v if v is not None else "" for k, v in attrs}))
        self.eat_newline = False

    def handle_endtag(self, tag: str) -> None:
        self.eat_newline = False
        for k in range(len(self.stack) - 1, 0, -1):
            if self.stack[k].tag == tag:
                del self.stack[k:]
                return  # a stray end tag is ignored, as browsers do

    def handle_data(self, data: str) -> None:
        if self.eat_newline and data.startswith("\n"):
            data = data[1:]
        self.eat_newline = False
        if not data:
            return
        parent = self.stack[-1]
        if parent.children and parent.children[-1].tag == TEXT:
            parent.children[-1].text += data
        else:
            parent.append(DomNode(TEXT, text=data))


def parse_html(html: str) -> DomNode:
    """Parse HTML into a ``#document`` container node (it stands for hid 0 if no element has it)."""
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root


# endregion
# region Patching -------------------------------------------------------------


def find_by_hid(root: DomNode, hid: int) -> DomNode | None:
    """The element with ``data-hid == hid`` under (or at) ``root``; hid 0 falls back to ``root``."""
    want = str(hid)
    for node in root.iter():
        if node.attrs.get("data-hid") == want:
            return node
    return root if hid == 0 else None


def _index(root: DomNode) -> dict[int, DomNode]:
    index = {int(n.attrs["data-hid"]): n for n in root.iter() if "data-hid" in n.attrs}
    index.setdefault(0, root)
    return index


def _build(vnode: Any, index: dict[int, DomNode]) -> DomNode:
    if isinstance(vnode, str):
        return DomNode(TEXT, text=vnode)
    tag, hid, attrs, kids = vnode
    node = DomNode(tag)
    for kid in kids or ():
        node.append(_build(kid, index))
    for name, value in (attrs or {}).items():  # after children, like the JS client
        _set_attr(node, name, value)
    node.attrs["data-hid"] = str(hid)
    index[hid] = node
    return node


def _forget(node: DomNode, index: dict[int, DomNode]) -> None:
    for n in node.iter():
        hid = n.hid
        if hid is not None and index.get(hid) is n:
            del index[hid]


def _set_attr(node: DomNode, name: str, value: str) -> None:
    node.attrs[name] = value
    if name in _PROPS:
        node.props[name] = value if name == "value" else True


def _remove_attr(node: DomNode, name: str) -> None:
    node.attrs.pop(name, None)
    if name in _PROPS:
        node.props[name] = "" if name == "value" else False


def apply_patches(root: DomNode, patches: list[list[Any]]) -> None:
    """Apply patches in order, each index against the child list as it is at that moment."""
    index = _index(root)

    def find(hid: int) -> DomNode:
        node = index.get(hid)
        if node is None:
            raise PatchError(f"no element with hid {hid}")
        return node

    for p in patches:
        op = p[0]
        if op == SET_TEXT:
            parent = find(p[1])
            if not 0 <= p[2] < len(parent.children) or parent.children[p[2]].tag != TEXT:
                raise PatchError(f"SET_TEXT target {p[2]} under hid {p[1]} is not a text node")
            parent.children[p[2]].text = p[3]
        elif op == SET_ATTR:
            _set_attr(find(p[1]), p[2], p[3])
        elif op == REMOVE_ATTR:
            _remove_attr(find(p[1]), p[2])
        elif op == INSERT:
            find(p[1]).insert(p[2], _build(p[3], index))
        elif op == REMOVE:
            _forget(find(p[1]).pop(p[2]), index)
        elif op == MOVE:
            parent = find(p[1])
            node = parent.pop(p[2])
            parent.insert(p[3], node)
        elif op == REPLACE:
            parent = find(p[1])
            old = parent.pop(p[2])
            _forget(old, index)
            parent.insert(p[2], _build(p[3], index))
        else:
            raise PatchError(f"unknown patch op {op!r}")


# endregion
# region Selectors ------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    \s*(?P<child>>)\s*
  | (?P<space>\s+)
  | (?P<tag>\*|[a-zA-Z][-a-zA-Z0-9]*)
  | \#(?P<id>[-\w]+)
  | \.(?P<cls>[-\w]+)
  | \[\s*(?P<attr>[-\w:.]+)\s*(?:(?P<op>[~^$*]?=)\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>[^\]\s]+))\s*)?\]
    """,
    re.VERBOSE,
)
_Test = Callable[[DomNode], bool]
_OPS: dict[str, Callable[[str, str], bool]] = {
    "=": lambda have, want: have == want,
    "~=": lambda have, want: want in have.split(),
    "^=": lambda have, want: bool(want) and have.startswith(want),
    "$=": lambda have, want: bool(want) and have.endswith(want),
    "*=": lambda have, want: bool(want) and want in have,
}


def _attr_test(name: str, op: str | None, want: str) -> _Test:
    if op is None:
        return lambda n: name in n.attrs
    cmp = _OPS[op]
    return lambda n: name in n.attrs and cmp(n.attrs[name], want)


def _parse_selector(selector: str) -> list[tuple[str, list[_Test]]]:
    """One complex selector -> [(combinator, tests)], combinator '' (first), ' ' or '>'."""
    parts: list[tuple[str, list[_Test]]] = []
    tests: list[_Test] = []
    comb = ""
    pos, s = 0, selector.strip()
    while pos < len(s):
        m = _TOKEN.match(s, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"unsupported selector {selector!r} at {s[pos:]!r}")
        pos = m.end()
        if m["child"] or m["space"]:
            if not tests:
                raise ValueError(f"dangling combinator in {selector!r}")
            parts.append((comb, tests))
            tests, comb = [], ">" if m["child"] else " "
        elif m["tag"]:
            tag = m["tag"].lower()
            if tag != "*":
                tests.append(lambda n, tag=tag: n.tag == tag)
            else:
                tests.append(lambda n: True)
        elif m["id"]:
            tests.append(lambda n, v=m["id"]: n.attrs.get("id") == v)
        elif m["cls"]:
            tests.append(lambda n, v=m["cls"]: v in n.attrs.get("class", "").split())
        else:
            want = next((g for g in (m["dq"], m["sq"], m["bare"]) if g is not None), "")
            tests.append(_attr_test(m["attr"], m["op"], want))
    if not tests:
        raise ValueError(f"empty selector {selector!r}")
    parts.append((comb, tests))
    return parts


def _matches(parts: list[tuple[str, list[_Test]]], k: int, node: DomNode) -> bool:
    comb, tests = parts[k]
    if node.tag in (TEXT, DOCUMENT) or not all(t(node) for t in tests):
        return False
    if k == 0:
        return True
    parent = node.parent
    if comb == ">":
        return parent is not None and _matches(parts, k - 1, parent)
    while parent is not None:
        if _matches(parts, k - 1, parent):
            return True
        parent = parent.parent
    return False


def select(root: DomNode, selector: str) -> list[DomNode]:
    """Descendant elements of ``root`` matching ``selector`` (tag, #id, .class, [attr], [attr=v], ' ', '>', ',')."""
    groups = [_parse_selector(s) for s in selector.split(",")]
    return [n for n in root.elements() if any(_matches(g, len(g) - 1, n) for g in groups)]


def select_one(root: DomNode, selector: str) -> DomNode | None:
    """The first match of ``selector`` under ``root``, or None."""
    groups = [_parse_selector(s) for s in selector.split(",")]
    return next((n for n in root.elements() if any(_matches(g, len(g) - 1, n) for g in groups)), None)


# endregion
