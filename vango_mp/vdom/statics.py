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
more than it saves on a re-render); the table keeps its newest
``MAX_SUBTREES`` entries.
"""

from __future__ import annotations

from typing import Any

from . import shared
from .nodes import Element, StaticList, Text

__all__ = ["intern", "clear", "MAX_ELEMENTS", "MAX_SUBTREES"]

MAX_ELEMENTS = 64
MAX_SUBTREES = 2048
_subtrees: dict[Any, Element] = {}


def intern(el: Element) -> Element:
    """The worker's copy of a subtree equal to ``el`` (``el`` itself the first time); ``el`` when it is
    not static (a handler, a component or a bound value below it), numbered, or too large."""
    if el.hid != 0 or not shared.enabled():
        return el
    budget = [MAX_ELEMENTS]
    key = _key(el, budget)
    if key is None:
        return el
    found = _subtrees.get(key)
    if found is not None and (found.hid == shared.UNNUMBERED or shared.has_numbering(found)):
        return found
    if found is None and len(_subtrees) >= MAX_SUBTREES:  # (a copy whose numbering was evicted is replaced)
        del _subtrees[next(iter(_subtrees))]
    el.hid = shared.UNNUMBERED
    _subtrees[key] = el
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
            parts.append(c.text)
        elif type(c) is Element:
            sub = _key(c, budget)
            if sub is None:
                return None
            parts.append(sub)
        else:
            return None
    try:
        return (el.tag, tuple(el.attrs.items()), el.key, tuple(parts))
    except TypeError:  # an unhashable key
        return None


def clear() -> None:
    """Forget every interned subtree (sessions holding them keep theirs)."""
    _subtrees.clear()
