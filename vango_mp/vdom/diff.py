"""Diff two resolved child lists into patches (docs/PROTOCOL.md, "Patches").

Pure: data in, patch list out (like LiveView's ``rendered``). The only
writes are to the *new* tree: matched elements take their old element's
hid, new elements get fresh ones from ``alloc_hid``. Rules:

* ``old is new`` (a clean component's output reused by mount) is skipped
  without looking inside. An element that already has a hid but is not the
  old node it meets (it lives elsewhere in some tree) is cloned first, so a
  hid, once written, never changes.
* Children are matched by identity, then keyed elements by ``(key, tag)``,
  then unkeyed ones by position among their own kind (the k-th unkeyed <p>
  with the k-th, text with text); leftover unkeyed nodes of different kinds
  pair up in order, each pair one REPLACE.
* Patches are emitted against the live list in order: REMOVEs (highest
  index first), MOVEs (only nodes off a longest increasing subsequence move,
  so the fewest possible), INSERTs (ascending), then per-child updates.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from ..protocol import INSERT, MOVE, REMOVE, REMOVE_ATTR, REPLACE, SET_ATTR, SET_TEXT
from .html import events_attr, vnode_wire
from . import shared
from .nodes import Element, Registry, Text
from .safety import safe_attr

__all__ = ["diff", "diff_element", "assign_hids", "forget", "Patch", "Registry"]

Patch = list[Any]
ResolvedNode = Element | Text


def diff(
    parent_hid: int,
    old_children: list[ResolvedNode],
    new_children: list[ResolvedNode],
    alloc_hid: Callable[[], int],
    registry: Registry | None = None,
) -> list[Patch]:
    """Patches that turn the DOM children of ``parent_hid`` (mirroring ``old``) into ``new``."""
    out: list[Patch] = []
    if old_children is not new_children:
        _children(parent_hid, old_children, new_children, alloc_hid, out, registry)
    return out


def assign_hids(nodes: list[ResolvedNode], alloc_hid: Callable[[], int], registry: Registry | None = None) -> None:
    """Give every element of ``nodes`` (in place, depth first) a fresh hid; clone ones placed elsewhere."""
    for i, n in enumerate(nodes):
        if type(n) is Element:
            if n.hid > 0:
                if shared.reuse_numbering(n, alloc_hid, registry):
                    continue
                n = nodes[i] = n.clone()
            _assign(n, alloc_hid, registry)


def forget(node: ResolvedNode, registry: Registry) -> None:
    """Drop a removed subtree's handlers from ``registry``."""
    if type(node) is Element:
        if node.events:
            registry.pop(node.hid, None)
        for c in node.children:
            if type(c) is Element:
                forget(c, registry)


def _assign(n: Element, alloc: Callable[[], int], reg: Registry | None) -> None:
    if n.hid < 0:  # a fresh shared element (vdom.shared): number it, and record what it took
        start = getattr(alloc, "next", None)
        n.hid = 0
        _assign(n, alloc, reg)
        if start is not None:
            shared.numbered(n, start, alloc.next)  # type: ignore[attr-defined]
        return
    n.hid = alloc()
    if reg is not None and n.events:
        reg[n.hid] = n
    if n.children:
        assign_hids(n.children, alloc, reg)


def _children(
    phid: int, old: list[ResolvedNode], new: list[ResolvedNode],
    alloc: Callable[[], int], out: list[Patch], reg: Registry | None,
) -> None:
    lo, ln = len(old), len(new)
    if lo == ln and _pairwise(old, new):
        for i in range(ln):
            o, n = old[i], new[i]
            if o is n:
                continue
            if type(n) is Text:
                if o.text != n.text:  # type: ignore[union-attr]
                    out.append([SET_TEXT, phid, i, n.text])
            elif n.hid:  # type: ignore[union-attr]
                new[i] = _shared(o, n, alloc, out, reg)  # type: ignore[arg-type]
            else:
                _element(o, n, alloc, out, reg)  # type: ignore[arg-type]
        return
    if lo == 0:
        for j in range(ln):
            _insert(phid, j, new, alloc, out, reg)
        return
    src, old_to_new = _match(old, new)
    for i in range(lo - 1, -1, -1):
        if old_to_new[i] < 0:
            out.append([REMOVE, phid, i])
            if reg:
                forget(old[i], reg)
    _move(phid, [j for j in old_to_new if j >= 0], src, out)
    for j in range(ln):
        if src[j] < 0:
            _insert(phid, j, new, alloc, out, reg)
    for j in range(ln):
        i = src[j]
        if i < 0:
            continue
        o, n = old[i], new[j]
        if o is n:
            continue
        tn = type(n)
        if tn is not type(o) or (tn is Element and o.tag != n.tag):  # type: ignore[union-attr]
            if reg:
                forget(o, reg)
            if tn is Element:
                _assign(n, alloc, reg)  # type: ignore[arg-type]
            out.append([REPLACE, phid, j, vnode_wire(n)])
        elif tn is Text:
            if o.text != n.text:  # type: ignore[union-attr]
                out.append([SET_TEXT, phid, j, n.text])  # type: ignore[union-attr]
        elif n.hid:  # type: ignore[union-attr]
            new[j] = _shared(o, n, alloc, out, reg)  # type: ignore[arg-type]
        else:
            _element(o, n, alloc, out, reg)  # type: ignore[arg-type]


def _pairwise(old: list[ResolvedNode], new: list[ResolvedNode]) -> bool:
    """True when position i of old and new match one to one (the common case: no structural ops)."""
    for i in range(len(new)):
        o, n = old[i], new[i]
        if o is n:
            continue
        t = type(o)
        if t is not type(n):
            return False
        if t is Element and (o.tag != n.tag or o.key != n.key  # type: ignore[union-attr]
                             or (n.hid > 0 and n.hid != o.hid)):  # type: ignore[union-attr]
            return False
    return True


def _match(old: list[ResolvedNode], new: list[ResolvedNode]) -> tuple[list[int], list[int]]:
    """Pair new children with old ones: identity, then (key, tag), then unkeyed by position per kind."""
    lo, ln = len(old), len(new)
    src = [-1] * ln
    old_to_new = [-1] * lo
    ident: dict[int, int] | None = None
    keyed: dict[tuple[Any, str], int] | None = None
    for j in range(ln):
        n = new[j]
        if type(n) is not Element:
            continue
        if n.hid > 0:
            if j < lo and old[j] is n:
                i = j
            else:
                if ident is None:
                    ident = {id(o): k for k, o in enumerate(old) if type(o) is Element}
                i = ident.get(id(n), -1)  # both lists hold a reference, so equal ids mean the same object
            if i >= 0 and old_to_new[i] < 0:
                src[j], old_to_new[i] = i, j
                continue
            n = new[j] = n.clone()
        if n.key is not None:
            if keyed is None:
                keyed = {}
                for k, o in enumerate(old):
                    if type(o) is Element and o.key is not None:
                        keyed.setdefault((o.key, o.tag), k)
            i = keyed.pop((n.key, n.tag), -1)
            if i >= 0 and old_to_new[i] < 0:
                src[j], old_to_new[i] = i, j
    # Unkeyed: the k-th new <p> meets the k-th free old <p> (text likewise), so a
    # conditional sibling appearing or vanishing shifts no one else; leftovers
    # of different kinds pair up in order as REPLACEs.
    free: dict[str | None, list[int]] = {}
    for i in range(lo):
        o = old[i]
        if old_to_new[i] < 0 and not _is_keyed(o):
            free.setdefault(o.tag if type(o) is Element else None, []).append(i)  # type: ignore[union-attr]
    if not free:
        return src, old_to_new
    taken: dict[str | None, int] = {}
    leftover: list[int] = []
    for j in range(ln):
        n = new[j]
        if src[j] >= 0 or _is_keyed(n):
            continue
        kind = n.tag if type(n) is Element else None  # type: ignore[union-attr]
        same = free.get(kind)
        k = taken.get(kind, 0)
        if same is not None and k < len(same):
            i = same[k]
            taken[kind] = k + 1
            src[j], old_to_new[i] = i, j
        else:
            leftover.append(j)
    if leftover:
        spare = [i for i in range(lo) if old_to_new[i] < 0 and not _is_keyed(old[i])]
        for j, i in zip(leftover, spare):
            src[j], old_to_new[i] = i, j
    return src, old_to_new


def _is_keyed(node: ResolvedNode) -> bool:
    return type(node) is Element and node.key is not None


def _move(phid: int, live: list[int], src: list[int], out: list[Patch]) -> None:
    """Reorder the surviving children (``live``: their new indexes in DOM order) with the fewest MOVEs."""
    if all(live[k] < live[k + 1] for k in range(len(live) - 1)):
        return
    keep = _lis(live)
    prev = -1
    for j in range(len(src)):
        if src[j] < 0:
            continue
        if j not in keep:
            frm = live.index(j)
            del live[frm]
            to = live.index(prev) + 1 if prev >= 0 else 0
            live.insert(to, j)
            if frm != to:
                out.append([MOVE, phid, frm, to])
        prev = j


def _lis(seq: list[int]) -> set[int]:
    """Values of one longest increasing subsequence of distinct ints (patience sorting)."""
    tails: list[int] = []  # tails[k]: index in seq of the smallest tail of an increasing run of length k+1
    tail_values: list[int] = []
    prev = [-1] * len(seq)
    for k, v in enumerate(seq):
        pos = bisect_left(tail_values, v)
        if pos:
            prev[k] = tails[pos - 1]
        if pos == len(tails):
            tails.append(k)
            tail_values.append(v)
        else:
            tails[pos] = k
            tail_values[pos] = v
    keep: set[int] = set()
    k = tails[-1] if tails else -1
    while k >= 0:
        keep.add(seq[k])
        k = prev[k]
    return keep


def _insert(
    phid: int, j: int, new: list[ResolvedNode], alloc: Callable[[], int], out: list[Patch], reg: Registry | None,
) -> None:
    n = new[j]
    if type(n) is Element:
        if n.hid > 0:
            if not shared.reuse_numbering(n, alloc, reg):
                n = new[j] = n.clone()
                _assign(n, alloc, reg)
        else:
            _assign(n, alloc, reg)
    out.append([INSERT, phid, j, vnode_wire(n)])


def diff_element(old: Element, new: Element, alloc_hid: Callable[[], int], out: list[Patch],
                registry: Registry | None) -> Element:
    """Patches turning the DOM of element ``old`` into ``new`` (same tag and key), for a swap in place
    (vdom.swap); returns the element to put in the tree: ``new``, or this session's private copy of a
    shared one."""
    if new.hid:
        return _shared(old, new, alloc_hid, out, registry)
    _element(old, new, alloc_hid, out, registry)
    return new


def _shared(o: Element, n: Element, alloc: Callable[[], int], out: list[Patch], reg: Registry | None) -> Element:
    """``n`` is a shared render's element (vdom.shared) meeting this session's ``o``; returns what takes its place.

    Numbered by another session already (``n.hid == o.hid``): replay that
    session's patches if this one is in the same state. Not numbered yet: if
    ``o`` is shared too, diff and record it for the others. Otherwise the
    session goes on with a private copy.
    """
    if n.hid > 0:
        if shared.replay(o, n, alloc, out, reg):
            return n
    elif shared.frozen(o) and hasattr(alloc, "next"):
        start, first = alloc.next, len(out)  # type: ignore[attr-defined]
        n.hid = 0
        _element(o, n, alloc, out, reg)
        shared.record(o, n, out[first:], start, alloc.next)  # type: ignore[attr-defined]
        return n
    n = n.clone()
    _element(o, n, alloc, out, reg)
    return n


def _element(o: Element, n: Element, alloc: Callable[[], int], out: list[Patch], reg: Registry | None) -> None:
    """Same tag: take the old hid, patch attrs and handlers, recurse into children."""
    hid = n.hid = o.hid
    oa, na = o.attrs, n.attrs
    if oa is not na and oa != na:
        for name, value in na.items():
            if oa.get(name) != value:
                out.append([SET_ATTR, hid, name, safe_attr(n.tag, name, value, hid)])
        for name in oa:
            if name not in na:
                out.append([REMOVE_ATTR, hid, name])
    oe, ne = o.events, n.events
    if oe is not ne and oe.keys() != ne.keys():
        if ne:
            out.append([SET_ATTR, hid, "data-ve", events_attr(ne)])
        else:
            out.append([REMOVE_ATTR, hid, "data-ve"])
    if reg is not None:
        if ne:
            reg[hid] = n
        elif oe:
            reg.pop(hid, None)
    oc, nc = o.children, n.children
    if (oc or nc) and oc is not nc:
        _children(hid, oc, nc, alloc, out, reg)
