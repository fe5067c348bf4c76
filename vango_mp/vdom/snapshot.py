"""A resolved tree as plain data (msgpack-ready) and back: what a moved session's new owner diffs against.

An element is ``[tag, attrs, event names, key, hid, children]``, a text node
its string. Loaded elements carry their event *names* only (handlers belong
to the live tree), which is all the diff compares. Keys come back as they
went, except that msgpack turns tuples into lists: those are turned back.
"""

from __future__ import annotations

from typing import Any

from .nodes import Element, Node, Text


def dump_tree(nodes: list[Node]) -> list[Any]:
    """Plain data for ``nodes`` (resolved: elements and texts only)."""
    return [_dump(n) for n in nodes]


def _dump(node: Node) -> Any:
    if type(node) is Text:
        return node.text
    el: Element = node  # type: ignore[assignment]
    return [el.tag, el.attrs, sorted(el.events), el.key, el.hid, [_dump(c) for c in el.children]]


def load_tree(data: Any) -> list[Node]:
    """Nodes from :func:`dump_tree` output (ValueError when it is not such data)."""
    if not isinstance(data, list):
        raise ValueError("a tree is a list of nodes")
    return [_load(item) for item in data]


def _load(item: Any) -> Node:
    if isinstance(item, str):
        return Text(item)
    if not (isinstance(item, list) and len(item) == 6):
        raise ValueError("malformed node")
    tag, attrs, events, key, hid, children = item
    if not (isinstance(tag, str) and isinstance(attrs, dict) and isinstance(events, list) and isinstance(hid, int)):
        raise ValueError("malformed element")
    el = Element(tag, {str(k): str(v) for k, v in attrs.items()} or None,
                 {str(name): None for name in events} or None,  # type: ignore[misc]
                 load_tree(children), _hashable(key))
    el.hid = hid
    return el


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key
