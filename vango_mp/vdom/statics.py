"""One worker-wide copy of each static subtree a page renders.

An element with no handler, no component and no bound signal anywhere below
it (a page's nav, its headings, its footer) renders the same in every
session; only its hids, given by each session's diff, differ. ``intern``
returns the worker's copy of an equal subtree, marked as a shared element
(``hid == shared.UNNUMBERED``), so the diff numbers it once and every other
session whose next hid is the same takes it as it is (``shared``'s
numbering records); any other session clones it, as for a shared
component's output. The saving is the elements (and their child lists) of
those subtrees, per session (bench/README: leaner sessions).

Subtrees past ``MAX_ELEMENTS`` elements are left alone (the key would cost
more than it saves on a re-render), and so are those with a long text or
attribute value: as for shared texts (``nodes.SHARED_TEXT_LEN``), user data
stays out of worker-wide memory as much as possible. The table keeps its
newest entries, ``MAX_TABLE_ELEMENTS`` elements at most (a few MiB).
"""

from __future__ import annotations

from typing import Any

from . import shared
from .nodes import SHARED_ATTRS_LEN, SHARED_TEXT_LEN, Element, StaticList, Text

__all__ = ["intern", "clear", "MAX_ELEMENTS", "MAX_TABLE_ELEMENTS"]

MAX_ELEMENTS = 64
MAX_TABLE_ELEMENTS = 16_384
_subtrees: dict[Any, tuple[Element, int]] = {}  # key -> (the worker's copy, its elements)
_held = [0]  # elements in the table


def intern(el: Element) -> Element:
    """The worker's copy of a subtree equal to ``el`` (``el`` itself the first time); ``el`` when it is
    not static (a handler, a component or a bound value below it), numbered, or too large."""
    if el.hid != 0 or not shared.enabled():
        return el
    budget = [MAX_ELEMENTS]
    key = _key(el, budget)
    if key is None:
        return el
    entry = _subtrees.pop(key, None)
    if entry is not None:
        found = entry[0]
        if found.hid == shared.UNNUMBERED or shared.has_numbering(found):
            _subtrees[key] = entry  # the newest again
            return found
        _held[0] -= entry[1]  # its numbering was evicted: replaced by this one
    size = MAX_ELEMENTS - budget[0]
    while _subtrees and _held[0] + size > MAX_TABLE_ELEMENTS:
        _held[0] -= _subtrees.pop(next(iter(_subtrees)))[1]
    el.hid = shared.UNNUMBERED
    _subtrees[key] = (el, size)
    _held[0] += size
    return el


def _key(el: Element, budget: list[int]) -> Any:
    """A hashable description of ``el``'s subtree; None if it is not static or too large."""
    budget[0] -= 1
    if budget[0] < 0 or el.events or el.hid != 0:
        return None
    kids = el.children
    if kids and type(kids) is not StaticList:
        return None
    parts: list[Any] = []
    for c in kids:
        if type(c) is Text:
            if len(c.text) > SHARED_TEXT_LEN:
                return None
            parts.append(c.text)
        elif type(c) is Element:
            sub = _key(c, budget)
            if sub is None:
                return None
            parts.append(sub)
        else:
            return None
    for value in el.attrs.values():
        if len(value) > SHARED_ATTRS_LEN:
            return None
    try:
        return (el.tag, tuple(el.attrs.items()), el.key, tuple(parts))
    except TypeError:  # an unhashable key
        return None


def clear() -> None:
    """Forget every interned subtree (sessions holding them keep theirs)."""
    _subtrees.clear()
    _held[0] = 0


def held() -> int:
    """Elements in the table now."""
    return _held[0]
