"""Diff: patch shapes for the common changes, minimal moves, identity skips, the handler registry."""

from __future__ import annotations

import itertools
from typing import Any

import msgpack

from vango_mp.protocol import INSERT, MOVE, PATCHES, REMOVE, REMOVE_ATTR, REPLACE, SET_ATTR, SET_TEXT
from vango_mp.vdom import assign_hids, diff, h, normalize, render_html
from vango_mp.vdom.apply import apply_patches, parse_html
from vango_mp.vdom.nodes import Element


class Tree:
    """A numbered tree plus its parsed DOM; ``to(new)`` diffs, applies and checks."""

    def __init__(self, *children: Any) -> None:
        self.alloc = itertools.count(1).__next__
        self.nodes = normalize(children)
        self.registry: dict[int, Element] = {}
        assign_hids(self.nodes, self.alloc, self.registry)
        self.dom = parse_html(render_html(self.nodes))

    def to(self, *children: Any) -> list[list[Any]]:
        new = normalize(children)
        patches = diff(0, self.nodes, new, self.alloc, self.registry)
        apply_patches(self.dom, patches)
        assert self.dom.inner_html() == parse_html(render_html(new)).inner_html()
        self.nodes = new
        return patches


def ops(patches: list[list[Any]]) -> list[int]:
    return [p[0] for p in patches]


def noop() -> None:
    pass


def counter(n: int) -> Element:
    return h.main(h.h1("Counter"), h.p("Count: ", n, id="count"), h.button("+", id="inc", on_click=noop))


def test_counter_change_is_one_small_set_text() -> None:
    t = Tree(counter(5))
    patches = t.to(counter(6))
    assert patches == [[SET_TEXT, 3, 0, "Count: 6"]]
    assert len(msgpack.packb([PATCHES, 123456, patches])) <= 38


def test_identical_trees_give_no_patches() -> None:
    t = Tree(counter(1))
    assert t.to(counter(1)) == []
    assert diff(0, t.nodes, t.nodes, t.alloc) == []


def test_keyed_reorder_moves_instead_of_remove_insert() -> None:
    t = Tree(h.ul([h.li(k, key=k) for k in "abcde"]))
    patches = t.to(h.ul([h.li(k, key=k) for k in "eabcd"]))
    assert patches == [[MOVE, 1, 4, 0]]
    patches = t.to(h.ul([h.li(k, key=k) for k in "abcde"]))
    assert patches == [[MOVE, 1, 0, 4]]


def test_keyed_moves_are_minimal() -> None:
    t = Tree(h.ul([h.li(k, key=k) for k in "abcdefgh"]))
    patches = t.to(h.ul([h.li(k, key=k) for k in "bacdefhg"]))
    assert ops(patches) == [MOVE, MOVE]  # two swaps, everything else stays
    patches = t.to(h.ul([h.li(k, key=k) for k in reversed("abcdefgh")]))
    assert ops(patches) == [MOVE] * 6  # "ba" and "hg" are increasing runs already: one of them stays


def test_keyed_insert_remove_keep_the_rest() -> None:
    t = Tree(h.ul([h.li(k, key=k) for k in "abc"]))
    before = {c.key: c.hid for c in t.nodes[0].children}  # type: ignore[union-attr]
    patches = t.to(h.ul([h.li(k, key=k) for k in "xac"]))
    assert ops(patches) == [REMOVE, INSERT]
    after = {c.key: c.hid for c in t.nodes[0].children}  # type: ignore[union-attr]
    assert after["a"] == before["a"] and after["c"] == before["c"] and after["x"] > max(before.values())


def test_same_key_different_tag_is_not_a_match() -> None:
    t = Tree(h.div(h.p("x", key=1)))
    assert ops(t.to(h.div(h.span("x", key=1)))) == [REMOVE, INSERT]


def test_tag_change_is_one_replace() -> None:
    t = Tree(h.div(h.p("x"), h.b("y")))
    patches = t.to(h.div(h.span("x"), h.b("y")))
    assert ops(patches) == [REPLACE]
    assert patches[0][:3] == [REPLACE, 1, 0]


def test_conditional_sibling_does_not_shift_the_others() -> None:
    t = Tree(h.div(h.h1("title"), "text", h.ul(h.li("a")), h.input(value="typed")))
    hids = [c.hid for c in t.nodes[0].children if isinstance(c, Element)]  # type: ignore[union-attr]
    patches = t.to(h.div("text", h.ul(h.li("a")), h.input(value="typed")))
    assert patches == [[REMOVE, 1, 0]]
    assert [c.hid for c in t.nodes[0].children if isinstance(c, Element)] == hids[1:]  # type: ignore[union-attr]


def test_attribute_and_handler_changes() -> None:
    t = Tree(h.input(value="a", disabled=True, title="t"))
    hid = t.nodes[0].hid  # type: ignore[union-attr]
    patches = t.to(h.input(value="b", title="t", on_input=noop))
    assert patches == [[SET_ATTR, hid, "value", "b"], [REMOVE_ATTR, hid, "disabled"], [SET_ATTR, hid, "data-ve", "input"]]
    assert t.registry == {hid: t.nodes[0]}
    assert t.dom.children[0].props["value"] == "b"
    assert t.to(h.input(value="b", title="t", on_input=noop, on_change=noop)) == [
        [SET_ATTR, hid, "data-ve", "change input"]
    ]
    assert t.to(h.input(value="b", title="t")) == [[REMOVE_ATTR, hid, "data-ve"]]
    assert t.registry == {}


def test_text_changes_use_the_index_after_structural_patches() -> None:
    t = Tree(h.p("a", h.br(), "b"))
    patches = t.to(h.p("x", h.br(), "b", h.hr(), "c"))
    assert ops(patches) == [INSERT, INSERT, SET_TEXT]


def test_identical_subtrees_are_skipped_and_reused_elsewhere_cloned() -> None:
    shared = h.section(h.p("static"))
    t = Tree(h.div(shared), h.aside())
    assert shared.hid > 0
    assert t.to(h.div(shared), h.aside(h.b())) == [[INSERT, t.nodes[1].hid, 0, ["b", 5, {}, []]]]  # type: ignore[union-attr]
    old_hid = shared.hid
    t.to(h.div(), h.aside(shared))  # moved to another parent: a copy with fresh hids goes there
    assert shared.hid == old_hid
    assert t.nodes[1].children[0] is not shared  # type: ignore[union-attr]


def test_same_fresh_node_twice_gets_two_hids() -> None:
    icon = h.i("*")
    t = Tree(h.div())
    t.to(h.div(icon, icon))
    a, b = t.nodes[0].children  # type: ignore[union-attr]
    assert a.hid != b.hid


def test_registry_tracks_inserted_replaced_and_removed_handlers() -> None:
    t = Tree(h.ul(h.li(h.button("x", on_click=noop), key=1)))
    assert len(t.registry) == 1
    t.to(h.ul(h.li(h.button("x", on_click=noop), key=1), h.li(h.button("y", on_click=noop), key=2)))
    assert len(t.registry) == 2
    t.to(h.ul(h.li(h.span("z"), key=2)))
    assert t.registry == {}
    t.to(h.ol(h.li(h.button("x", on_click=noop))))
    assert [e.tag for e in t.registry.values()] == ["button"]
