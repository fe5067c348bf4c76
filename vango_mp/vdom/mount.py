"""Root: mounts an app, renders it, re-renders dirty components and diffs.

A scope (the top level or a component instance) keeps its last render
output ``raw`` plus a *plan*: ``raw`` with every element on the way to a
component replaced by a ``Dyn`` record. Resolving a scope follows the plan:
static nodes are reused as they are, ``Dyn`` elements are rebuilt around
their resolved children, and each component child is either

* rendered again (new, dirty, or new props),
* re-resolved without rendering (clean, but a descendant is dirty), or
* reused: its previous resolved node list, the same objects, which the diff
  then skips without looking inside.

So a click that changes one counter re-renders that counter, rebuilds only
the elements between it and the root, and diffs only what changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from ..reactive import Owner, Reaction, batch, dropping_writes, effect
from . import shared
from .component import (EFFECT, NO_CHILDREN, SHARED, SIGNAL, Children, ComponentInstance, OneChild, Scope, compact,
                        writable)
from .diff import Patch, Registry, assign_hids, diff
from .html import render_html
from .nodes import Bound, ComponentNode, Element, Node, Text, normalize
from .plan import NO_RAW, Comp, Compiled, Ident, TextDyn, bound_nodes, compile_plan, push
from .snapshot import dump_tree
from .swap import holders, patch_texts, place_resolved, swap_in_place

__all__ = ["Root"]

log = logging.getLogger("vango_mp.vdom")
_NO_VALUES: dict[str, Any] = {}  # Root.pending_values when none are pending; never written to


class Binding(Reaction):
    """A scope's binding reaction (its own callback: ``Root._rebound(scope)``), with the first of the
    scope's text slots when every signal it binds is the text of an element (``plan.TextDyn``)."""

    __slots__ = ("root", "scope", "texts")

    def __init__(self, root: Root, scope: Scope) -> None:
        super().__init__(self)
        self.root = root
        self.scope = scope
        self.texts: TextDyn | None = None

    def __call__(self) -> None:
        self.root._rebound(self.scope)


class HidCounter:
    """Allocates hids 1, 2, 3...; ``next`` is the one it gives out next (kept when a session moves)."""

    __slots__ = ("next",)

    def __init__(self, start: int = 1) -> None:
        self.next = start

    def __call__(self) -> int:
        hid = self.next
        self.next = hid + 1
        return hid


class Aside:
    """A component instance rendered or kept outside the tree, with the effects it has not started."""

    __slots__ = ("inst", "effects")

    def __init__(self, inst: ComponentInstance, effects: list[tuple[ComponentInstance, int, Callable[[], Any]]]) -> None:
        self.inst = inst
        self.effects = effects

    def dispose(self) -> None:
        self.effects = []
        self.inst.dispose()


class Root:
    """One mounted app: resolved tree, hid allocation, handler registry, dirty tracking."""

    # One per session: slots, no instance dict.
    __slots__ = (
        "context", "pending_values", "_on_dirty", "_owner", "_scope", "_nodes", "_registry", "_alloc",
        "_effects", "dirty", "_rendered", "_disposed", "keeper", "errors", "_deferred", "_kept",
    )

    def __init__(
        self,
        app: Node | Iterable[Any],
        *,
        context: dict[str, Any] | None = None,
        on_dirty: Callable[[], None] | None = None,
    ) -> None:
        self.context: dict[str, Any] = context if context is not None else {}
        # Restored signal values not yet claimed by a use_signal (only popped from when not empty).
        self.pending_values: dict[str, Any] = _NO_VALUES
        self._on_dirty = on_dirty
        self._owner = Owner(None)
        self._scope = Scope(None, self._owner)
        raw = normalize((app,))
        self._scope.plan = self._compile(raw, self._scope)
        self._scope.raw = raw if self._scope.plan is None else NO_RAW
        self._scope.subtree_dirty = True
        self._nodes: list[Node] = []  # resolved top level: what the DOM under hid 0 mirrors
        self._registry: Registry = {}
        self._alloc = HidCounter()
        # Effects queued by first renders, started once the render is committed; () when none
        # (the empties below are shared: replaced, never appended to, 56-64 B per session each).
        self._effects: list[tuple[ComponentInstance, int, Callable[[], Any]]] | tuple[()] = ()
        self.dirty = False  # some component needs a re-render (rerender() would do work); read, never set, outside
        self._rendered = False
        self._disposed = False
        # Offered every instance that leaves the tree; True: it was kept aside (see ``adopt``), not disposed.
        self.keeper: Callable[[ComponentInstance], bool] | None = None
        # Errors handled without raising (an ErrorBoundary caught it, a component with broken hook
        # order was reset, an effect failed): (kind, exception), drained by the session to report them.
        self.errors: list[tuple[str, BaseException]] | tuple[()] = ()
        # Shared instances invalidated since the last render, tried in place first (``_swap``).
        self._deferred: list[ComponentInstance] | tuple[()] = ()
        # Whether an instance was ever kept or rendered outside the tree: until then every instance
        # that left it was disposed, and ``_live`` needs no walk.
        self._kept = False

    # -- public ----------------------------------------------------------------

    @property
    def nodes(self) -> list[Node]:
        """The resolved top-level nodes (children of the root container, hid 0)."""
        return self._nodes

    def render_initial(self) -> None:
        """First render: resolve every component, number elements 1, 2, 3... depth first."""
        self._first_render(lambda nodes: assign_hids(nodes, self._alloc, self._registry))

    def render_over(self, shown: list[Node], next_hid: int) -> list[Patch]:
        """First render of a session that moved here, against the tree its client shows.

        ``shown`` (and ``next_hid``) come from :meth:`snapshot` on the previous
        owner. Elements that match keep the client's hids, so its DOM stays as
        it is; the returned patches bring it up to date (often none).
        """
        patches: list[Patch] = []

        def number(nodes: list[Node]) -> None:
            self._alloc = HidCounter(next_hid)
            patches.extend(diff(0, shown, nodes, self._alloc, self._registry))

        self._first_render(number)
        return patches

    def _first_render(self, number: Callable[[list[Node]], None]) -> None:
        if self._rendered:
            raise RuntimeError("the first render happened already")
        self.dirty = False
        nodes = self._resolve_top()
        self._registry = {}
        number(nodes)
        self._nodes = nodes
        self._rendered = True
        self.pending_values = _NO_VALUES
        self._run_effects()

    def html(self) -> str:
        """Inner HTML of the root container."""
        return render_html(self._nodes)

    def snapshot(self) -> tuple[list[Any], int]:
        """The rendered tree as plain data (``vdom.snapshot``) and the next hid: what a new owner
        needs to go on patching the client's DOM (see :meth:`render_over`)."""
        return dump_tree(self._nodes), self._alloc.next

    def rerender(self) -> list[Patch]:
        """Re-render dirty components; return the patches that bring the DOM up to date.

        A component's exception propagates; the DOM and tree stay as they were.
        """
        if not self._rendered:
            raise RuntimeError("rerender() before render_initial()")
        if not self.dirty or self._disposed:
            return []
        # Cleared first: an invalidation during the pass marks the root dirty again.
        # A render error propagates and leaves the root clean (no retry loop): the
        # failed component keeps its dirty flag and retries on the next change.
        self.dirty = False
        patches: list[Patch] = []
        if self._deferred:
            deferred, self._deferred = self._deferred, ()
            for inst in deferred:
                if inst.dirty:
                    if not (inst.fn in SHARED and inst.place is not None and self._live(inst)
                            and swap_in_place(inst, self._alloc, patches, self._registry)):
                        inst.mark_path()
                elif inst.subtree_dirty and not self._reswap(inst, patches):
                    inst.mark_path()
        if self._scope.subtree_dirty:  # else every change was patched in place above
            nodes = self._resolve_top()
            patches += diff(0, self._nodes, nodes, self._alloc, self._registry)
            self._nodes = nodes
        if self._effects:
            self._run_effects()
        return patches

    def handler(self, hid: int, name: str) -> Callable[..., Any] | None:
        """The handler for event ``name`` on element ``hid``, or None (stale or unknown)."""
        el = self._registry.get(hid)
        return el.events.get(name) if el is not None else None

    def dispose(self) -> None:
        """Unmount everything: every instance's effects and cleanups run."""
        if self._disposed:
            return
        self._disposed = True
        self._effects = ()
        self._registry.clear()
        children, self._scope.children = self._scope.children, NO_CHILDREN
        try:
            for inst in children.values():
                inst.dispose()
        finally:
            self._owner.dispose()

    def signal_values(self) -> dict[str, Any]:
        """Every ``use_signal`` value by stable hook id (for persistence)."""
        out: dict[str, Any] = {}
        for inst in self._instances(self._scope):
            for i, (kind, sig) in enumerate(inst.hooks):
                if kind is SIGNAL:
                    out[inst.hook_id(i)] = sig.peek()
        return out

    def restore_signal_values(self, values: dict[str, Any]) -> None:
        """Set ``use_signal`` signals from ``signal_values()`` output; before the first render, seed them."""
        if not self._rendered:
            self.pending_values = dict(values)
            return
        with batch():
            for inst in self._instances(self._scope):
                for i, (kind, sig) in enumerate(inst.hooks):
                    if kind is SIGNAL:
                        hook_id = inst.hook_id(i)
                        if hook_id in values:
                            sig.set(values[hook_id])

    # -- instances kept aside: kept-alive pages, prefetched ones ------------------

    def render_aside(self, parent: ComponentInstance, node: ComponentNode) -> Aside:
        """Render ``node`` as a keyed child of ``parent`` without placing it in the tree.

        Its effects are held back (nothing observable happens) until :meth:`adopt`
        places it; until then it is nobody's child and costs only its memory.
        """
        if node.key is None:
            raise ValueError("only a keyed component can be rendered aside (its identity is its key)")
        ident = (node.fn, True, node.key)
        inst = ComponentInstance(node, parent, self, ident)
        self._kept = True
        held, self._effects = self._effects, []
        try:
            with dropping_writes():
                self._render(inst)
        except BaseException:
            inst.dispose()
            raise
        finally:
            effects, self._effects = self._effects, held
        return Aside(inst, effects)

    def adopt(self, aside: Aside) -> None:
        """Offer a kept or prefetched instance to its parent: the next render of the parent that
        renders a node of the same identity (function and key) reuses it, unrendered if its
        props are the same; its held-back effects start when that render is committed."""
        inst = aside.inst
        parent = inst.parent
        assert isinstance(parent, ComponentInstance)
        old = parent.children.get((inst.fn, True, inst.key))
        if old is not None and old is not inst:
            old.dispose()
        writable(parent)[(inst.fn, True, inst.key)] = inst
        self._effects = [*self._effects, *aside.effects]
        aside.effects = []

    # -- what instances call ---------------------------------------------------

    def record(self, kind: str, exc: BaseException, what: str) -> None:
        """Log an error handled without raising (traceback in the log) and keep it for the session to report."""
        log.error("%s: %s", what, exc, exc_info=exc)
        if not self.errors:
            self.errors = [(kind, exc)]
        elif len(self.errors) < 16:  # a storm of them is reported as its first few
            self.errors.append((kind, exc))

    def defer(self, inst: ComponentInstance) -> None:
        """A shared instance was invalidated: the next render tries to swap its element in place."""
        if self._deferred:
            self._deferred.append(inst)  # type: ignore[union-attr]
        else:
            self._deferred = [inst]
        self.mark_dirty()

    def _reswap(self, inst: ComponentInstance, patches: list[Patch]) -> bool:
        """Resolve an instance whose bound signal changed and patch its one element where it sits
        (vdom.swap), without walking down from the top; False when that cannot be done."""
        if len(inst.output) != 1 or not self._live(inst):
            return False
        top = inst.output[0]
        held = holders(inst, top, self._scope)
        if held is None:
            return False
        bind = inst.bind
        texts = bind.texts if bind is not None else None  # type: ignore[attr-defined]
        if (texts is not None and all(lst[i] is top for lst, i in held)
                and not any(c.dirty or c.subtree_dirty for c in inst.children.values())
                and patch_texts(texts, bind, patches)):  # type: ignore[arg-type]
            inst.subtree_dirty = False  # its bound texts are patched; nothing else of it changed
            return True
        try:
            new = self._reresolve(inst, False)
        except Exception:
            return False  # the walk resolves it again and handles the error as any other
        return place_resolved(inst, new, held, self._alloc, patches, self._registry)

    def _live(self, inst: ComponentInstance) -> bool:
        """Whether ``inst`` is in the tree: each ancestor up to the top holds it among its children."""
        if not self._kept:
            return not inst.disposed  # every instance that left the tree was disposed
        top = self._scope
        scope: Any = inst
        while scope is not top:
            parent = scope.parent
            if parent is None or scope.disposed:
                return False
            children = parent.children
            if (children.inst if type(children) is OneChild else children.get(scope.ident)) is not scope:
                return False
            scope = parent
        return True

    def mark_dirty(self) -> None:
        """An instance was invalidated: tell the session once per clean -> dirty transition."""
        if self.dirty or self._disposed:
            return
        self.dirty = True
        if self._on_dirty is not None:
            self._on_dirty()

    def queue_effect(self, inst: ComponentInstance, index: int, fn: Callable[[], Any]) -> None:
        """Start ``fn`` as an effect once the current render is committed."""
        if self._effects:
            self._effects.append((inst, index, fn))  # type: ignore[union-attr]
        else:
            self._effects = [(inst, index, fn)]

    # -- resolution --------------------------------------------------------------

    def _instances(self, scope: Scope) -> Iterable[ComponentInstance]:
        for inst in scope.children.values():
            yield inst
            yield from self._instances(inst)

    def _resolve_top(self) -> list[Node]:
        scope = self._scope
        if not scope.subtree_dirty:
            return scope.output
        scope.subtree_dirty = False
        try:
            scope.output = self._resolve_scope(scope, fresh=not self._rendered)
        except BaseException:
            scope.subtree_dirty = True
            raise
        return scope.output

    def _resolve_scope(self, scope: Scope, fresh: bool) -> list[Node]:
        """Resolve a scope's raw output along its plan.

        ``fresh``: the plan is new (the scope just rendered), so children are
        matched up anew and those no longer rendered are unmounted; otherwise
        the plan and its set of children are the same as last time.
        """
        old = scope.children
        if scope.plan is None:
            if old:
                scope.children = NO_CHILDREN
                for inst in old.values():
                    inst.dispose()
            return scope.raw
        out: list[Node] = []
        live = scope is self._scope  # the top level is the tree's list; a component's is copied into its parent's
        if not fresh:
            self._resolve_plan(scope, old, None, out, live)
            return out
        new: dict[Ident, ComponentInstance] = {}
        try:
            self._resolve_plan(scope, old, new, out, live)
        except BaseException:
            for ident, inst in new.items():
                if old.get(ident) is not inst:
                    inst.dispose()
            raise
        scope.children = compact(new)
        for ident, inst in old.items():
            if new.get(ident) is not inst:
                if self.keeper is not None and self.keeper(inst):
                    self._kept = True
                else:
                    inst.dispose()
        return out

    def _resolve_plan(
        self, scope: Scope, old: Children, new: dict[Ident, ComponentInstance] | None,
        out: list[Node], live: bool,
    ) -> None:
        """The scope's plan into ``out``; what it binds is read inside its binding reaction, so it is tracked."""
        assert scope.plan is not None
        if scope.bind is None:
            self._resolve_list(scope, scope.plan, old, new, out, live)
        else:
            scope.bind.track(lambda: self._resolve_list(scope, scope.plan, old, new, out, live))  # type: ignore[arg-type]

    def _compile(self, raw: list[Node], scope: Scope) -> list[Any] | None:
        """``compile_plan``, and a binding reaction for a scope whose output binds signals."""
        found = Compiled()
        plan = compile_plan(raw, scope, found)
        if found.bounds and scope.bind is None:
            if isinstance(scope, ComponentInstance) and scope.fn in SHARED:
                raise shared.SharedComponentError(
                    f"shared component {scope.name} ({scope.path}) binds a signal: a shared component renders "
                    "the same for every session, so it shows global values with .get()")
            scope.bind = scope.owner.run(lambda: Binding(self, scope))
        if scope.bind is not None:
            scope.bind.texts = found.text_only()  # type: ignore[attr-defined]
        return plan

    def _rebound(self, scope: Scope) -> None:
        """A bound signal of ``scope`` changed: resolve the scope again (no render) on the next pass,
        in place if it can (``_reswap``), else from the top down."""
        if getattr(scope, "disposed", False):
            return
        if type(scope) is ComponentInstance and not scope.dirty and not scope.subtree_dirty:
            scope.subtree_dirty = True
            self.defer(scope)
            return
        scope.subtree_dirty = True
        scope.mark_path()
        self.mark_dirty()

    def _resolve_list(
        self, scope: Scope, plan: list[Any], old: Children,
        new: dict[Ident, ComponentInstance] | None, out: list[Node], live: bool,
    ) -> None:
        """Append the plan's resolved nodes to ``out``; ``live``: ``out`` is a list of the tree itself."""
        for item in plan:
            t = type(item)
            if t is Comp:
                inst = self._resolve_component(scope, item, old, new)
                nodes = inst.output
                if inst.bind is not None or item.node.fn in SHARED:
                    inst.place = (out, len(out)) if live and len(nodes) == 1 and type(nodes[0]) is Element else None
                if nodes:
                    if type(nodes[0]) is Text and out and type(out[-1]) is Text:
                        push(out, nodes[0])
                        out.extend(nodes[1:])
                    else:
                        out.extend(nodes)
            elif t is Element:
                out.append(item)
            elif t is Text:
                push(out, item)
            elif t is Bound:  # read inside the scope's binding reaction (_resolve_scope)
                for node in bound_nodes(item.source.get()):
                    push(out, node)
            else:
                kids: list[Node] = []
                self._resolve_list(scope, item.plan, old, new, kids, True)
                el = Element(item.tag, item.attrs, item.events, kids, item.key)
                out.append(el)
                if type(item) is TextDyn:
                    item.live = el

    def _resolve_component(
        self, scope: Scope, item: Comp, old: Children,
        new: dict[Ident, ComponentInstance] | None,
    ) -> ComponentInstance:
        """The child, its ``output`` up to date: rendered if new, dirty or given new props; else reused
        or re-resolved."""
        node = item.node
        inst = old.get(item.ident)
        if inst is None or inst.disposed:
            inst = ComponentInstance(node, scope, self, item.ident)
            if new is None:  # not expected (same plan as last time), but keep the map whole
                writable(scope)[item.ident] = inst
        elif inst.node is not node:
            inst.node = node
            if node.props != inst.props:
                inst.props = node.props
                inst.dirty = True
        if new is not None:
            new[item.ident] = inst
        try:
            if inst.dirty:
                self._render(inst)
            elif inst.subtree_dirty:
                self._reresolve(inst, False)
        except Exception as exc:
            if inst.boundary is None or inst.boundary.error is not None:
                raise
            self._catch(inst, exc)
        return inst

    def _catch(self, inst: ComponentInstance, exc: Exception) -> list[Node]:
        """An ErrorBoundary's subtree raised: render the boundary again, now showing its fallback.

        Its children are unmounted by that render (the fallback does not hold
        them); ``reset()`` renders them afresh.
        """
        inst.boundary.error = exc
        self.record("render", exc, f"{inst.path} caught an error; showing its fallback")
        inst.dirty = True
        return self._render(inst)

    def _render(self, inst: ComponentInstance) -> list[Node]:
        raw = shared.render(inst) if inst.fn in SHARED else inst.render()
        if inst.key is not None and len(raw) == 1 and type(raw[0]) is Element and raw[0].key is None:
            el = raw[0]
            if el.hid > 0:
                el = raw[0] = el.clone()
            el.key = inst.key  # a keyed component's element is matched by that key among its siblings
        try:
            inst.plan = self._compile(raw, inst)
            inst.raw = raw if inst.plan is None else NO_RAW  # a plan holds what resolving needs
            return self._reresolve(inst, True)
        except BaseException:
            inst.dirty = True  # its children map may not match the new plan: render again next time
            raise

    def _reresolve(self, inst: ComponentInstance, fresh: bool) -> list[Node]:
        inst.subtree_dirty = False
        try:
            inst.output = self._resolve_scope(inst, fresh)
        except BaseException:
            inst.subtree_dirty = True
            raise
        return inst.output

    def _run_effects(self) -> None:
        """Start the effects queued by first renders, now that the tree is committed.

        A failing effect is logged, not raised: the patches of this render must
        still reach the client.
        """
        effects, self._effects = self._effects, ()
        for inst, index, fn in effects:
            if inst.disposed:
                continue
            try:
                inst.hooks[index] = (EFFECT, inst.owner.run(lambda fn=fn: effect(fn)))
            except Exception as exc:
                exc.add_note(f"in use_effect #{index} of {inst.path}")
                self.record("effect", exc, f"use_effect in {inst.path} raised on its first run")
