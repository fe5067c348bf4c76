"""Property: applying diff(old, new) to the DOM parsed from old's HTML yields new's HTML, hids included."""

from __future__ import annotations

import itertools
from typing import Any

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vango_mp.reactive import batch
from vango_mp.vdom import Root, component, fragment, h, use_signal
from vango_mp.vdom.apply import apply_patches, parse_html
from vango_mp.vdom.diff import assign_hids, diff
from vango_mp.vdom.html import render_html
from vango_mp.vdom.nodes import Element, Node, normalize

TAGS = ["div", "span", "p", "ul", "li", "b", "input", "br"]
ATTRS = ["id", "class", "title", "data-x", "hidden", "value"]
VALUES = ["", "a", "b c", '"q"', "<&>"]
TEXTS = st.sampled_from(["", "x", "y", "hello", " ", "a<b", "&amp;", "\n", "é", "'\""])


def _noop() -> None:
    pass


def element_specs(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    attrs = st.dictionaries(st.sampled_from(ATTRS), st.one_of(st.sampled_from(VALUES), st.just(True)), max_size=3)
    events = st.sets(st.sampled_from(["click", "input", "submit"]), max_size=2)
    return st.tuples(st.just("el"), st.sampled_from(TAGS), attrs, events, st.none(), children)


def keyed_list(elements: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A children list whose elements carry keys from a small shared pool (so old and new overlap)."""
    keys = st.lists(st.integers(0, 7), unique=True, max_size=6)

    def attach(ks: list[int]) -> st.SearchStrategy[Any]:
        return st.tuples(*[elements.map(lambda e, k=k: (*e[:4], k, e[5])) for k in ks]).map(list)

    return keys.flatmap(attach)


def tree_lists(max_leaves: int = 25) -> st.SearchStrategy[Any]:
    leaf = st.one_of(TEXTS.map(lambda t: ("text", t)), st.integers(0, 50).map(lambda k: ("reuse", k)))

    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        lists = st.one_of(st.lists(children, max_size=5), keyed_list(element_specs(st.lists(children, max_size=3))))
        return st.one_of(element_specs(lists), leaf)

    node = st.recursive(leaf, extend, max_leaves=max_leaves)
    return st.one_of(st.lists(node, max_size=6), keyed_list(element_specs(st.lists(node, max_size=4))))


def mutate(data: st.DataObject, specs: list[Any], depth: int = 0) -> list[Any]:
    """A variant of ``specs``: reordered, some dropped, edited or reused, some added (so old and new overlap)."""
    items = list(specs)
    if len(items) > 1 and data.draw(st.booleans()):
        items = data.draw(st.permutations(items))
    out: list[Any] = []
    for spec in items:
        action = data.draw(st.sampled_from(["keep", "keep", "keep", "drop", "edit", "reuse", "add"]))
        if action == "drop":
            continue
        if action == "reuse":
            out.append(("reuse", data.draw(st.integers(0, 50))))
            continue
        if action == "add":  # a new sibling in front of this one (sometimes keyed, maybe a duplicate key)
            out.append(data.draw(st.one_of(
                TEXTS.map(lambda t: ("text", t)),
                element_specs(st.just([("text", "fresh")])),
                element_specs(st.just([])).map(lambda e: (*e[:4], 7, e[5])),
            )))
        if spec[0] == "el" and action in ("keep", "edit"):
            _, tag, attrs, events, key, children = spec
            if action == "edit":
                attrs = data.draw(st.sampled_from([attrs, {}, {**attrs, "class": "edited"}, {"title": "t"}]))
                events = data.draw(st.sampled_from([events, set(), {"click"}, {"click", "input"}]))
                tag = data.draw(st.sampled_from([tag, tag, "span", "div"]))
            spec = ("el", tag, attrs, events, key, mutate(data, children, depth + 1) if depth < 4 else children)
        elif spec[0] == "text" and action == "edit":
            spec = ("text", data.draw(TEXTS))
        out.append(spec)
    return out


def build(spec: Any, pool: list[Element]) -> Any:
    kind = spec[0]
    if kind == "text":
        return spec[1]
    if kind == "reuse":  # an element from the old tree, the same object (like a clean component's output)
        return pool[spec[1] % len(pool)] if pool else None
    _, tag, attrs, events, key, children = spec
    kids = [] if tag in ("input", "br") else [build(c, pool) for c in children]
    kwargs: dict[str, Any] = {a.replace("-", "_"): v for a, v in attrs.items()}
    kwargs.update({f"on_{e}": _noop for e in events})
    return getattr(h, tag)(*kids, key=key, **kwargs)


def elements_of(nodes: list[Node]) -> list[Element]:
    out: list[Element] = []
    for n in nodes:
        if type(n) is Element:
            out.append(n)
            out.extend(elements_of(n.children))
    return out


def canonical(nodes: list[Node]) -> str:
    return parse_html(render_html(nodes)).inner_html()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree_lists(), st.data())
def test_apply_diff_reproduces_new_tree(old_spec: Any, data: st.DataObject) -> None:
    new_spec = data.draw(tree_lists()) if data.draw(st.booleans()) else mutate(data, old_spec)
    alloc = itertools.count(1).__next__
    old = normalize([build(s, []) for s in old_spec])
    registry: dict[int, Element] = {}
    assign_hids(old, alloc, registry)
    dom = parse_html(render_html(old))
    assert dom.inner_html() == canonical(old)

    new = normalize([build(s, elements_of(old)) for s in new_spec])
    patches = diff(0, old, new, alloc, registry)
    msgpack.packb([18, 1, patches])  # the wire can carry it

    apply_patches(dom, patches)
    assert dom.inner_html() == canonical(new)
    hids = [e.hid for e in elements_of(new)]
    assert all(hid > 0 for hid in hids) and len(set(hids)) == len(hids)
    assert registry == {e.hid: e for e in elements_of(new) if e.events}


@settings(max_examples=100, deadline=None)
@given(tree_lists(12), tree_lists(12))
def test_diff_twice_in_a_row(first: Any, second: Any) -> None:
    """Chained renders: each diff starts from the tree the last one produced."""
    alloc = itertools.count(1).__next__
    tree = normalize([build(s, []) for s in first])
    assign_hids(tree, alloc)
    dom = parse_html(render_html(tree))
    for spec in (second, first, second):
        new = normalize([build(s, elements_of(tree)) for s in spec])
        apply_patches(dom, diff(0, tree, new, alloc))
        assert dom.inner_html() == canonical(new)
        tree = new


# region Mounted components ----------------------------------------------------


@component
def Item(label: str) -> Node:
    clicks = use_signal(0)
    return h.li(label, ": ", clicks.get(), h.button("+", on_click=lambda: clicks.update(lambda n: n + 1)))


@component
def Count(items: Any) -> Node:
    return str(len(items.get()))  # bare text: merges with the text around it


@component
def Pair(k: int) -> Node:
    flag = use_signal(False)
    return fragment(h.b(k, on_click=lambda: flag.set(not flag.peek())), "on" if flag.get() else None, h.i())


@component
def Board(items: Any, show_header: Any) -> Node:
    order = items.get()
    return h.div(
        h.h1("Board") if show_header.get() else None,
        "total ", Count(items=items), "!",
        h.ul([Item(label=f"item {k}", key=k) for k in order]),
        [Item(label="loose") for _ in order[:1]],
        h.section([Pair(k=k) for k in order[::2]], Pair(k=99) if show_header.get() else "-"),
    )


ops = st.lists(
    st.one_of(
        st.tuples(st.just("order"), st.lists(st.integers(0, 6), unique=True, max_size=6)),
        st.tuples(st.just("click"), st.integers(0, 20)),
        st.tuples(st.just("header"), st.booleans()),
    ),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 6), unique=True, max_size=6), ops)
def test_mounted_rerenders_keep_dom_in_sync(initial: list[int], steps: list[Any]) -> None:
    from vango_mp.reactive import signal

    items, header = signal(tuple(initial)), signal(True)
    root = Root(Board(items=items, show_header=header))
    root.render_initial()
    dom = parse_html(root.html())
    for op, arg in steps:
        with batch():
            if op == "order":
                items.set(tuple(arg))
            elif op == "header":
                header.set(arg)
            else:
                buttons = [n for n in dom.elements() if "data-ve" in n.attrs]
                if buttons:
                    hid = buttons[arg % len(buttons)].hid
                    handler = root.handler(hid, "click")
                    assert handler is not None
                    handler()
        apply_patches(dom, root.rerender())
        assert dom.inner_html() == parse_html(root.html()).inner_html()
    fresh = Root(Board(items=items, show_header=header))
    fresh.restore_signal_values(root.signal_values())
    fresh.render_initial()
    assert [n.text_content() for n in parse_html(fresh.html()).elements() if n.tag == "li"] == [
        n.text_content() for n in dom.elements() if n.tag == "li"
    ]
    root.dispose()
    fresh.dispose()


# endregion
