"""A scope's plan: its raw render output with the way to each component and bound signal marked.

``compile_plan`` turns a scope's raw output into the list the mount resolves
on every pass: components become ``Comp`` (with their identity among
siblings), elements on the way to one become ``Dyn`` (rebuilt around their
resolved children), bound signals stay ``Bound``; everything else is reused
as it is. Child lists with nothing of that below them (``StaticList``) are
never walked.
"""

from __future__ import annotations

from typing import Any

from .component import Scope
from .nodes import Bound, ComponentNode, Element, Node, StaticList, Text, normalize

__all__ = ["BOUND", "NO_RAW", "Comp", "Dyn", "Ident", "bound_nodes", "compile_plan", "push"]


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


NO_RAW: list[Node] = []  # a scope's raw output once its plan replaces it; never written to


Ident = tuple[Any, bool, Any]  # (fn, keyed?, key or position among same-named siblings)


class Comp:
    """A component child in a plan, with its identity worked out once per parent render."""

    __slots__ = ("node", "ident")

    def __init__(self, node: ComponentNode, ident: Ident) -> None:
        self.node = node
        self.ident = ident


def compile_plan(nodes: list[Node], scope: Scope, counters: dict[str, int] | None = None) -> list[Any] | None:
    """``nodes`` (``scope``'s output) with components as ``Comp`` and elements containing them as ``Dyn``;
    None if no components."""
    plan: list[Any] | None = None
    if counters is None:
        counters = {}
    for k, n in enumerate(nodes):
        t = type(n)
        if t is ComponentNode:
            item: Any = _component_item(n, scope, counters)  # type: ignore[arg-type]
        elif t is Bound:
            counters[BOUND] = 1
            item = n
        elif t is Element and n.children and type(n.children) is not StaticList:  # type: ignore[union-attr]
            sub = compile_plan(n.children, scope, counters)  # type: ignore[union-attr]
            if sub is None:
                continue
            item = Dyn(n, sub)  # type: ignore[arg-type]
        else:
            continue
        if plan is None:
            plan = list(nodes)
        plan[k] = item
    return plan


BOUND = "\0bound"  # set in compile_plan's counters when the output binds a signal


def bound_nodes(value: Any) -> list[Node]:
    """A bound signal's value as resolved nodes: text and elements (a component would need an instance)."""
    nodes = normalize((value,))
    if nodes and type(nodes) is not StaticList:
        raise TypeError(f"a bound signal's value renders text and elements only, not components: {value!r}")
    return nodes


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


