"""Patching a shared component's element where it sits, without resolving the page down to it.

The place is the live child list the last resolution put the element in (a
rebuilt element's children, or the top level), trusted while the instance
is still in the tree (the caller checks: ``Root._live``): every resolution
of that list records it anew, and a diff only ever puts a private copy of the
same element at that index (so the element there, not the instance's
output, is what the DOM shows).
"""

from __future__ import annotations

from collections.abc import Callable

from . import shared
from .component import ComponentInstance
from .diff import Patch, Registry, diff_shared
from .nodes import Element
from .plan import compile_plan

__all__ = ["swap_in_place"]


def swap_in_place(inst: ComponentInstance, alloc: Callable[[], int], patches: list[Patch], registry: Registry) -> bool:
    """Render ``inst`` (shared) and patch its one element at its place; False, with nothing changed in
    the tree, when its place or its new output does not allow it (the resolution then does it)."""
    assert inst.place is not None
    if len(inst.output) != 1:
        return False
    lst, idx = inst.place
    src = lst[idx] if idx < len(lst) else None
    if type(src) is not Element:
        return False
    try:
        raw = shared.render(inst)
    except Exception:
        inst.dirty = True  # the resolution renders it again and handles the error as any other
        return False
    new = raw[0] if len(raw) == 1 else None
    # (a numbered shared element holds no components: those are rebuilt, never numbered themselves)
    if (type(new) is not Element or new.tag != src.tag or new.key != src.key
            or (new.hid <= 0 and compile_plan(raw, inst) is not None)):
        inst.dirty = True
        return False
    placed = new if new is src else diff_shared(src, new, alloc, patches, registry)
    lst[idx] = placed
    inst.raw = raw
    inst.plan = None
    inst.output = raw if placed is new else [placed]
    return True
