"""Shared renders: one render, one diff, the same patches for every session in the same state.

A component declared ``@component(shared=True)`` promises that its output is
a function of its props and the global signals it reads. The worker keeps
its latest render per (component, key, props) and hands the *same node
objects* to every session that renders it, so a global write that reaches
10,000 sessions renders once, not 10,000 times.

The diff writes hids into the nodes it numbers, and hids belong to a
session. A shared node is therefore numbered once, by the first session that
needs it, and frozen: what that session's diff did is recorded here, keyed
by node identity, and replayed by every other session in the same state:

* a *numbering* (``assign``): the node got hids ``start .. end - 1`` depth
  first; a session whose next hid is ``start`` takes the node as it is;
* a *transition* (``diff``): the session's element ``old`` (itself a frozen
  shared node) became ``new`` through ``patches``, allocating hids
  ``start .. end - 1``; a session showing the same ``old`` whose next hid is
  ``start`` (or that allocates none) sends the same patches.

Anything else -- a session whose tree differs (it was cloned before, it
allocated other hids, a record was evicted) -- clones the shared node and
diffs privately, as without sharing: the result is the same DOM, only
computed once more. A fresh shared top-level element carries ``hid == -1``
("shared, not numbered yet"); the diff treats it like a new element.

The records hold strong references, so identities stay unique while they
are kept; each table keeps its newest ``MAX_RECORDS`` entries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..reactive import SharedSignal
from .component import ComponentInstance
from .nodes import Element, Node, Registry

__all__ = ["SharedComponentError", "enable", "enabled", "frame", "has_numbering", "render", "stats", "clear"]

MAX_RECORDS = 2048
UNNUMBERED = -1  # hid of a shared top-level element no session has numbered yet

class SharedComponentError(TypeError):
    """A shared component read something that is not a global signal (per-session state)."""


class _Render:
    """The latest render of one (component, key, props): its nodes and the globals it read."""

    __slots__ = ("deps", "versions", "nodes")

    def __init__(self, deps: list[SharedSignal[Any]], nodes: list[Node]) -> None:
        self.deps = deps
        self.versions = [d._version for d in deps]
        self.nodes = nodes

    def current(self) -> bool:
        versions = self.versions
        for i, dep in enumerate(self.deps):
            if dep._version != versions[i]:
                return False
        return True

    def read(self) -> None:
        for dep in self.deps:
            dep.get()


class _Numbered:
    """A frozen shared element: the hids its first numbering gave, and its handler entries."""

    __slots__ = ("node", "start", "end", "handlers")

    def __init__(self, node: Element, start: int, end: int) -> None:
        self.node = node
        self.start = start
        self.end = end
        self.handlers = _handlers(node)


class _Transition:
    """``old`` -> ``new`` as one session's diff did it: the patches and the hids it allocated."""

    __slots__ = ("old", "new", "patches", "start", "end", "dropped", "handlers", "frames")

    def __init__(self, old: Element, new: Element, patches: list[list[Any]], start: int, end: int) -> None:
        self.old = old
        self.new = new
        self.patches = patches
        self.start = start
        self.end = end
        self.handlers = _handlers(new)
        kept = {hid for hid, _ in self.handlers}
        self.dropped = [hid for hid, _ in _handlers(old) if hid not in kept]
        self.frames: dict[int, bytes] = {}  # seq -> the encoded frame of these patches alone (``frame``)


_enabled = True
_renders: dict[tuple[Any, ...], _Render] = {}
_numbered: dict[int, _Numbered] = {}
_transitions: dict[tuple[int, int], _Transition] = {}
_frozen: dict[int, Element] = {}  # id -> every shared element numbered by a session (never written again)
_last: list[_Transition | None] = [None]  # the transition recorded or replayed last (``frame``)
MAX_FRAMES = 8  # encoded frames a transition keeps (sessions in the same state at different seqs)
_stats = {"renders": 0, "reused_renders": 0, "numbered": 0, "reused_numberings": 0,
          "transitions": 0, "replayed": 0, "cloned": 0}


def enable(on: bool) -> None:
    """Switch sharing on or off for this process (off: every session renders on its own; for benchmarks)."""
    global _enabled
    _enabled = on
    clear()


def enabled() -> bool:
    """Whether sharing is on in this process (``enable``); static subtrees follow it (vdom.statics)."""
    return _enabled


def clear() -> None:
    """Forget every shared render and record (sessions then diff privately until they share again)."""
    _renders.clear()
    _numbered.clear()
    _transitions.clear()
    _frozen.clear()
    _last[0] = None


def stats() -> dict[str, int]:
    """Counters: renders done and reused, numberings and transitions recorded and replayed, clones."""
    return dict(_stats)


def _bounded(table: dict[Any, Any]) -> None:
    if len(table) >= MAX_RECORDS:
        del table[next(iter(table))]


# -- rendering -------------------------------------------------------------------


def render(inst: ComponentInstance) -> list[Node]:
    """The instance's output: the worker's current render for its (function, key, props), or a new one."""
    # (props in another order make another key: a render more, never a wrong one)
    props = inst.props
    key = ((inst.fn, inst.key, tuple(props.items())) if props else (inst.fn, inst.key)) if _enabled else None
    try:
        entry = _renders.get(key) if key is not None else None
    except TypeError:  # an unhashable prop: this instance renders on its own
        key = entry = None
    if entry is not None and entry.current():
        inst.dirty = False
        inst.renders += 1
        if not inst.reaction.rearm(entry.deps):
            inst.reaction.track(entry.read)  # subscribe to what the render read, as rendering would
        _stats["reused_renders"] += 1
        return entry.nodes
    nodes = inst.render()
    deps: list[SharedSignal[Any]] = []
    for source in inst.reaction.sources():
        if not isinstance(source, SharedSignal):
            raise SharedComponentError(
                f"shared component {inst.name} ({inst.path}) read {source!r}: a shared component may read "
                "only its props and global signals (GlobalSignal), never a session's signal")
        deps.append(source)
    if key is None:
        return nodes
    for i, node in enumerate(nodes):
        if type(node) is Element:
            if node.hid:
                node = nodes[i] = node.clone()  # an element placed elsewhere (a constant): ours is a copy
            node.hid = UNNUMBERED
    _bounded(_renders)
    _renders[key] = _Render(deps, nodes)
    _stats["renders"] += 1
    return nodes


# -- numbering (first render, insert, replace) ---------------------------------------


def numbered(node: Element, start: int, end: int) -> None:
    """Record that a fresh shared element was just numbered ``start .. end - 1``, depth first."""
    _bounded(_numbered)
    _numbered[id(node)] = _Numbered(node, start, end)
    _freeze(node)
    _stats["numbered"] += 1


def _numbering(node: Element) -> _Numbered | None:
    rec = _numbered.get(id(node))
    return rec if rec is not None and rec.node is node else None


def has_numbering(node: Element) -> bool:
    """Whether the numbering of shared element ``node`` is still on record (sessions can take it as it is)."""
    return _numbering(node) is not None


def reuse_numbering(node: Element, alloc: Callable[[], int], reg: Registry | None) -> bool:
    """Place an already numbered shared element as it is, if its hids are the ones this session would give."""
    rec = _numbering(node)
    if rec is None or getattr(alloc, "next", None) != rec.start:
        _stats["cloned"] += 1
        return False
    alloc.next = rec.end  # type: ignore[attr-defined]
    if reg is not None:
        for hid, el in rec.handlers:
            reg[hid] = el
    _stats["reused_numberings"] += 1
    return True


# -- transitions (re-render) -------------------------------------------------------


def frozen(node: Element) -> bool:
    """Whether ``node`` is a shared element some session numbered (and nobody writes to again)."""
    return _frozen.get(id(node)) is node


def _freeze(node: Element) -> None:
    _bounded(_frozen)
    _frozen[id(node)] = node


def record(old: Element, new: Element, patches: list[list[Any]], start: int, end: int) -> None:
    """Keep what one session's diff did to turn frozen ``old`` into fresh ``new``."""
    _bounded(_transitions)
    _transitions[(id(old), id(new))] = _last[0] = _Transition(old, new, patches, start, end)
    _freeze(new)
    _stats["transitions"] += 1


def replay(old: Node, new: Element, alloc: Callable[[], int], out: list[list[Any]], reg: Registry | None,
           quiet: bool = False) -> bool:
    """Send another session's patches for ``old`` -> ``new`` if this session is in the same state
    (``quiet``: a first try, not counted as a clone when it fails)."""
    t = _transitions.get((id(old), id(new)))
    if t is None or t.old is not old or t.new is not new or (
            t.end != t.start and getattr(alloc, "next", None) != t.start):
        if not quiet:
            _stats["cloned"] += 1
        return False
    if t.end != t.start:
        alloc.next = t.end  # type: ignore[attr-defined]
    out.extend(t.patches)
    _last[0] = t
    if reg is not None and (t.dropped or t.handlers):
        for hid in t.dropped:
            reg.pop(hid, None)
        for hid, el in t.handlers:
            reg[hid] = el
    _stats["replayed"] += 1
    return True


def frame(seq: int, patches: list[list[Any]], encode: Callable[[int, list[list[Any]]], bytes]) -> bytes:
    """``encode(seq, patches)``, the same bytes object for every session whose patches are exactly the
    last transition's (the same patch objects, nothing of its own): one encoding per state and seq,
    and the sessions' histories share it."""
    t = _last[0]
    if t is None or len(patches) != len(t.patches):
        return encode(seq, patches)
    for mine, theirs in zip(patches, t.patches):
        if mine is not theirs:
            return encode(seq, patches)
    frames = t.frames
    data = frames.get(seq)
    if data is None:
        if len(frames) >= MAX_FRAMES:
            frames.clear()
        data = frames[seq] = encode(seq, patches)
    return data


def _handlers(node: Element) -> list[tuple[int, Element]]:
    """(hid, element) of every element with handlers in ``node``'s subtree."""
    out: list[tuple[int, Element]] = []
    stack = [node]
    while stack:
        el = stack.pop()
        if el.events:
            out.append((el.hid, el))
        stack.extend(c for c in el.children if type(c) is Element)
    return out
