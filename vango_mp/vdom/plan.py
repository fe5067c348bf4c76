"""A scope's plan: its raw render output with the way to each component and bound signal marked.

``compile_plan`` turns a scope's raw output into the list the mount resolves
on every pass: components become ``Comp`` (with their identity among
siblings), elements on the way to one become ``Dyn`` (rebuilt around their
resolved children), bound signals stay ``Bound``; everything else is reused
as it is. Child lists with nothing of that below them (``StaticList``) are
never walked. An element whose children are only text and bound signals
(``h.p("Count: ", count)``) is a ``TextDyn``: when all of a scope's bound
signals sit in those, a change patches their text where it is shown,
without resolving the scope (``swap.patch_texts``; LiveView's dynamic parts).
"""

from __future__ import annotations

from typing import Any

from . import statics
from .component import Ident, Scope
from .nodes import Bound, ComponentNode, Element, Node, StaticList, Text, normalize

__all__ = ["NO_RAW", "Comp", "Compiled", "Dyn", "Ident", "TextDyn", "bound_nodes", "bound_text", "compile_plan",
           "push"]


class Dyn:
    """An element of a scope's raw output that contains components: rebuilt on every resolution.

    It keeps what it needs of the element, not the element: the raw element and
    its child list (superseded by ``plan``) are freed once the plan is built.
    """

    __slots__ = ("tag", "attrs", "events", "key", "plan")

    def __init__(self, el: Element, plan: list[Any]) -> None:
        self.tag = el.tag
        self.attrs = el.attrs
        self.events = el.events
        self.key = el.key
        self.plan = plan


class TextDyn(Dyn):
    """A ``Dyn`` whose plan is text and bound signals only; ``live`` is the element last built from it.

    A scope's text slots are a chain (``next``): no list held per scope.
    """

    __slots__ = ("live", "next")

    def __init__(self, el: Element, plan: list[Any]) -> None:
        super().__init__(el, plan)
        self.live: Element | None = None
        self.next: TextDyn | None = None

    def text(self) -> str | None:
        """The text its children read now (bound values read here are tracked); None if a value is not text."""
        parts = []
        for item in self.plan:
            if type(item) is Text:
                parts.append(item.text)
            else:
                text = bound_text(item.source.get())
                if text is None:
                    return None
                parts.append(text)
        return "".join(parts)

    def chain(self) -> list[TextDyn]:
        """This slot and the ones after it."""
        out: list[TextDyn] = []
        slot: TextDyn | None = self
        while slot is not None:
            out.append(slot)
            slot = slot.next
        return out


class Compiled:
    """What compiling a scope's plan found besides the plan: identities given, bound signals, text slots."""

    __slots__ = ("idents", "bounds", "first", "last", "text_bounds")

    def __init__(self) -> None:
        self.idents: dict[Any, int] = {}  # component name -> unkeyed siblings so far; (fn, True, key) -> 1
        self.bounds = 0  # bound signals in the output
        self.first: TextDyn | None = None  # the text slots, chained
        self.last: TextDyn | None = None
        self.text_bounds = 0  # bound signals inside the text slots

    def add_text(self, slot: TextDyn) -> None:
        if self.last is None:
            self.first = slot
        else:
            self.last.next = slot
        self.last = slot
        self.text_bounds += sum(1 for x in slot.plan if type(x) is Bound)

    def text_only(self) -> TextDyn | None:
        """The first text slot, if every bound signal of the output is in one (else None)."""
        return self.first if self.first is not None and self.text_bounds == self.bounds else None


NO_RAW: list[Node] = []  # a scope's raw output once its plan replaces it; never written to


class Comp:
    """A component child in a plan, with its identity worked out once per parent render."""

    __slots__ = ("node", "ident")

    def __init__(self, node: ComponentNode, ident: Ident) -> None:
        self.node = node
        self.ident = ident


def compile_plan(nodes: list[Node], scope: Scope, found: Compiled | None = None) -> list[Any] | None:
    """``nodes`` (``scope``'s output) with components as ``Comp`` and elements containing them as ``Dyn``;
    None if no components."""
    plan: list[Any] | None = None
    if found is None:
        found = Compiled()
    for k, n in enumerate(nodes):
        t = type(n)
        if t is ComponentNode:
            item: Any = _component_item(n, scope, found.idents)  # type: ignore[arg-type]
        elif t is Bound:
            found.bounds += 1
            item = n
        elif t is Element and n.children and type(n.children) is not StaticList:  # type: ignore[union-attr]
            sub = compile_plan(n.children, scope, found)  # type: ignore[union-attr]
            if sub is None:
                continue
            if all(type(x) is Text or type(x) is Bound for x in sub):
                item = TextDyn(n, sub)  # type: ignore[arg-type]
                found.add_text(item)
            else:
                item = Dyn(n, sub)  # type: ignore[arg-type]
        else:
            continue
        if plan is None:
            plan = list(nodes)
        plan[k] = item
    if plan is not None:
        for k, item in enumerate(plan):
            if type(item) is Element and item.hid == 0 and not item.events:
                plan[k] = statics.intern(item)  # the same in every session: one copy per worker
    return plan


def bound_nodes(value: Any) -> list[Node]:
    """A bound signal's value as resolved nodes: text and elements (a component would need an instance)."""
    nodes = normalize((value,))
    if nodes and type(nodes) is not StaticList:
        raise TypeError(f"a bound signal's value renders text and elements only, not components: {value!r}")
    return nodes


def bound_text(value: Any) -> str | None:
    """The text a bound value renders as (``normalize``'s rules); None if it renders anything but text."""
    nodes = normalize((value,))
    if not nodes:
        return ""
    if len(nodes) == 1 and type(nodes[0]) is Text:
        return nodes[0].text  # type: ignore[union-attr]
    return None


def _component_item(node: ComponentNode, scope: Scope, counters: dict[Any, Any]) -> Comp:
    """Identity ``(fn, True, key)``, or ``(fn, False, position among same-named unkeyed siblings)``."""
    fn, key = node.fn, node.key
    if key is not None:
        ident: Ident = (fn, True, key)
        if ident in counters:
            name = getattr(fn, "__name__", "component")
            raise ValueError(f"duplicate key {key!r} for component {name} in {scope.path or 'the root'}")
        counters[ident] = 1
    else:
        name = getattr(fn, "__name__", "component")
        pos = counters.get(name, 0)
        counters[name] = pos + 1
        ident = (fn, False, pos)
    return Comp(node, ident)


def push(out: list[Node], node: Node) -> None:
    """Append, merging text with a preceding text node (component boundaries can make them adjacent)."""
    if type(node) is Text and out and type(out[-1]) is Text:
        out[-1] = Text(out[-1].text + node.text)  # type: ignore[union-attr]
    else:
        out.append(node)


