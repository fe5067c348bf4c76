"""Patching a component's element where it sits, without resolving the page down to it.

Three cases: a shared component re-rendered for a global (``swap_in_place``),
a component re-resolved for a signal it binds (``holders`` finds where
its element sits, ``place_resolved`` patches it there), and a component
whose bound signals are all text of its elements (``patch_texts``: those
texts are patched where they are, nothing is resolved).

The place is the live child list the last resolution put the element in (a
rebuilt element's children, or the top level), trusted while the instance
is still in the tree (the caller checks: ``Root._live``): every resolution
of that list records it anew, and a diff only ever puts a private copy of the
same element at that index (so the element there, not the instance's
output, is what the DOM shows).
"""

from __future__ import annotations

from collections.abc import Callable

from ..protocol import SET_TEXT
from ..reactive import Reaction
from . import shared
from .component import ComponentInstance, Scope
from .diff import Patch, Registry, diff_element
from .nodes import Element, Node, Text, is_static
from .plan import TextDyn

__all__ = ["holders", "patch_texts", "place_resolved", "swap_in_place"]


def swap_in_place(inst: ComponentInstance, alloc: Callable[[], int], patches: list[Patch], registry: Registry) -> bool:
    """Render ``inst`` (shared) and patch its one element at its place; False, with nothing changed in
    the tree, when its place or its new output does not allow it (the resolution then does it)."""
    assert inst.place is not None
    if len(inst.output) != 1:
        return False
    lst, idx = inst.place
    if idx >= len(lst) or type(lst[idx]) is not Element:
        return False
    try:
        raw = shared.render(inst)
    except Exception:
        inst.dirty = True  # the resolution renders it again and handles the error as any other
        return False
    new = raw[0] if len(raw) == 1 else None
    if type(new) is Element and new.hid > 0 and shared.replay(lst[idx], new, alloc, patches, registry, quiet=True):
        lst[idx] = new  # another session in the same state recorded this change: its patches went out
        inst.output = inst.raw = raw
        inst.plan = None
        return True
    # A fresh element with components below it needs a plan: the resolution does it (a numbered
    # shared element holds none: those are rebuilt, never numbered themselves).
    if (type(new) is not Element or (new.hid <= 0 and not is_static(new))
            or not place_resolved(inst, raw, [(lst, idx)], alloc, patches, registry)):
        inst.dirty = True
        return False
    inst.raw = raw
    inst.plan = None
    return True


Holders = list[tuple[list[Node], int]]


def holders(inst: ComponentInstance, el: Node, top: Scope) -> Holders | None:
    """The live lists holding ``inst``'s element ``el``: its place, or the top of each ancestor's
    output up to ``top`` (a page under layouts that return fragments); None if it is not found so."""
    if inst.place is not None:
        lst, idx = inst.place
        return [(lst, idx)] if idx < len(lst) and type(lst[idx]) is Element else None
    found: Holders = []
    scope = inst.parent
    while scope is not None:
        out = scope.output
        for i, node in enumerate(out):
            if node is el:
                found.append((out, i))
                break
        else:
            return None  # inside an element of that scope's output, in no place recorded
        if scope is top:
            return found
        scope = scope.parent
    return None


def place_resolved(inst: ComponentInstance, new: list[Node], held: Holders, alloc: Callable[[], int],
                   patches: list[Patch], registry: Registry) -> bool:
    """Put ``inst``'s freshly resolved output in every list of ``held``, patching what the DOM shows
    there; False if it is not one element of the same tag and key (the walk from the top places it)."""
    el = new[0] if len(new) == 1 else None
    lst, idx = held[0]
    src = lst[idx]
    if type(el) is not Element or type(src) is not Element or el.tag != src.tag or el.key != src.key:
        return False
    placed = el if el is src else diff_element(src, el, alloc, patches, registry)
    for lst, idx in held:
        lst[idx] = placed
    inst.output = new if placed is el else [placed]
    return True


def patch_texts(first: TextDyn, bind: Reaction, patches: list[Patch]) -> bool:
    """Read the text of each slot (``first`` and its chain) again, tracked by ``bind``, and patch the ones that changed where
    their element is shown; False, with nothing changed, when one is not plain, non-empty text in
    an element shown with one text child (the caller resolves the scope instead)."""
    texts = first.chain()
    try:
        values = bind.track(lambda: [dyn.text() for dyn in texts])
    except Exception:
        return False  # the resolution reads it again and handles the error as any other
    changed: list[tuple[Element, str]] = []
    for dyn, text in zip(texts, values):
        el = dyn.live
        if not text or el is None or el.hid <= 0:
            return False
        kids = el.children
        if len(kids) != 1 or type(kids[0]) is not Text:
            return False
        if kids[0].text != text:  # type: ignore[union-attr]
            changed.append((el, text))
    for el, text in changed:
        el.children[0] = Text(text)  # the element's own child list, built by the resolution that made it
        patches.append([SET_TEXT, el.hid, 0, text])
    return True
