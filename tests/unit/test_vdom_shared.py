"""Shared renders (vdom.shared): one render and one diff for many sessions, the same DOM as rendering alone.

The property runs random global values, per-session state, different props
and sessions left behind through many roots twice -- sharing on, sharing off
-- and requires every session's patches, DOM (hids included) and handler
registry to be identical in both runs and to match its own tree.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vango_mp.reactive import SharedSignal, batch, signal
from vango_mp.vdom import Root, component, fragment, h, shared, use_signal
from vango_mp.vdom.apply import apply_patches, parse_html
from vango_mp.vdom.component import HookError
from vango_mp.vdom.nodes import Node

from .test_vdom_diff_property import build, elements_of, tree_lists

VALUE: SharedSignal[Any] = SharedSignal(([], []))


@component(shared=True)
def Panel(variant: int) -> Node:
    spec = VALUE.get()[variant % 2]
    nodes = [build(s, []) for s in spec]
    if variant == 2:
        return fragment(*nodes)  # not one element: shared render, private diff
    tag = h.div if spec else h.p  # another tag: not patched in place, resolved from the page down
    return tag(*nodes, class_=f"panel{variant}")


@component
def Page(flag: Any, variant: int) -> Node:
    on = flag.get()
    return fragment(
        h.main(
            h.p("on", on_click=lambda: None) if on else None,
            h.section(Panel(variant=variant)),  # inside an element: swapped in place
            h.aside(Panel(variant=2)) if on else "-",
        ),
        Panel(variant=1 - variant % 2),  # at the top of Page's output: through the resolution
    )


def _without_hids(html: str) -> str:
    return re.sub(r' data-hid="\d+"', "", parse_html(html).inner_html())


def _fresh_html(page: Node) -> str:
    """What a new session shows for the same state: the oracle for the incremental ones."""
    root = Root(page)
    root.render_initial()
    try:
        return _without_hids(root.html())
    finally:
        root.dispose()


def _run(initial: Any, steps: list[Any], share: bool, sessions: int) -> list[list[Any]]:
    """Every session's (patches, html) after each step."""
    shared.enable(share)
    with batch():
        VALUE.set(initial)
    flags = [signal(i % 3 == 0) for i in range(sessions)]
    roots = [Root(Page(flag=flags[i], variant=i % 2)) for i in range(sessions)]
    doms = []
    for root in roots:
        root.render_initial()
        doms.append(parse_html(root.html()))
    seen: list[list[Any]] = [[] for _ in roots]
    for op, arg, lagging in steps:
        with batch():
            if op == "global":
                VALUE.set(arg)
            else:
                flags[arg % sessions].set(not flags[arg % sessions].peek())
        for i, root in enumerate(roots):
            if i in lagging:
                continue  # this session is behind: it catches up on a later step
            patches = root.rerender()
            apply_patches(doms[i], patches)
            html = root.html()
            assert doms[i].inner_html() == parse_html(html).inner_html()
            assert root._registry == {e.hid: e for e in elements_of(root.nodes) if e.events}
            assert _without_hids(html) == _fresh_html(Page(flag=flags[i], variant=i % 2))
            # Swaps of different instances may go out in another order (they touch disjoint subtrees).
            seen[i].append((sorted(map(repr, patches)), html))
    for root in roots:
        root.dispose()
    return seen


specs = st.tuples(tree_lists(10), tree_lists(10))
lagging = st.sets(st.integers(0, 5), max_size=3)  # sessions that skip this step's render
steps = st.lists(st.one_of(st.tuples(st.just("global"), specs, lagging),
                           st.tuples(st.just("local"), st.integers(0, 9), lagging)), max_size=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs, steps)
def test_shared_and_individual_rendering_give_every_session_the_same_dom(initial: Any, ops: list[Any]) -> None:
    try:
        together = _run(initial, ops, True, 6)
        alone = _run(initial, ops, False, 6)
    finally:
        shared.enable(True)
    assert together == alone


def test_one_render_and_one_diff_serve_every_session_in_the_same_state() -> None:
    shared.enable(True)
    with batch():
        VALUE.set(([("el", "b", {}, set(), None, [("text", "0")])], []))
    roots = [Root(Page(flag=signal(False), variant=0)) for _ in range(20)]
    for root in roots:
        root.render_initial()
    before = shared.stats()
    for n in range(1, 4):
        with batch():
            VALUE.set(([("el", "b", {}, {"click"}, None, [("text", str(n))])], []))
        frames = [root.rerender() for root in roots]
        assert all(f == frames[0] for f in frames) and frames[0]
    after = shared.stats()
    # Two shared instances per page (variant 0 in the section, 1 after main): each renders once per write.
    assert after["renders"] - before["renders"] == 3 * 2
    assert after["replayed"] - before["replayed"] >= 3 * 19  # the section's element: 19 sessions replay
    assert after["cloned"] == before["cloned"]
    first_b = [e for e in elements_of(roots[0].nodes) if e.tag == "b"][0]
    assert all(root.handler(first_b.hid, "click") is not None for root in roots)
    for root in roots:
        root.dispose()


def test_a_session_in_another_state_gets_its_own_copy() -> None:
    shared.enable(True)
    with batch():
        VALUE.set(([("text", "a")], []))
    flag = signal(True)
    a, b = Root(Page(flag=signal(False), variant=0)), Root(Page(flag=flag, variant=0))
    a.render_initial()
    b.render_initial()  # the <p> before: other hids, so the numbering is not reused
    with batch():
        VALUE.set(([("text", "b")], []))
    dom_b = parse_html(b.html())
    apply_patches(dom_b, b.rerender())
    a.rerender()
    assert dom_b.inner_html() == parse_html(b.html()).inner_html()
    panel_a = [e for e in elements_of(a.nodes) if e.attrs.get("class") == "panel0"][0]
    panel_b = [e for e in elements_of(b.nodes) if e.attrs.get("class") == "panel0"][0]
    assert panel_a is not panel_b and panel_a.hid != panel_b.hid


def test_a_session_that_cannot_replay_counts_one_clone_and_shows_the_same() -> None:
    """The session numbering alike records the change; the other cannot replay it and diffs a copy (one clone)."""
    shared.enable(True)
    with batch():
        VALUE.set(([("text", "a")], []))
    a, b = Root(Page(flag=signal(False), variant=0)), Root(Page(flag=signal(True), variant=0))
    a.render_initial()
    b.render_initial()
    with batch():
        VALUE.set(([("text", "b")], []))
    a.rerender()
    dom_b = parse_html(b.html())
    before = shared.stats()
    apply_patches(dom_b, b.rerender())
    after = shared.stats()
    assert after["cloned"] - before["cloned"] == 1 and after["replayed"] == before["replayed"]
    assert dom_b.inner_html() == parse_html(b.html()).inner_html()
    a.dispose()
    b.dispose()


@component(shared=True)
def Listing(items: list[str]) -> Node:
    return h.ul(*[h.li(f"{i}: {VALUE.get()[1] and 'x'}") for i in items])


def test_a_shared_component_with_an_unhashable_prop_renders_on_its_own() -> None:
    """A list prop cannot key the worker's table: each session renders it, and still follows the global."""
    shared.enable(True)
    with batch():
        VALUE.set(([], []))
    roots = [Root(h.main(Listing(items=["a", "b"]))) for _ in range(2)]
    doms = []
    for root in roots:
        root.render_initial()
        doms.append(parse_html(root.html()))
    before = shared.stats()
    with batch():
        VALUE.set(([], [("text", "on")]))
    for root, dom in zip(roots, doms):
        apply_patches(dom, root.rerender())
        assert dom.inner_html() == parse_html(root.html()).inner_html() and "a: x" in dom.inner_html()
    assert shared.stats()["renders"] == before["renders"]  # none went through the table
    for root in roots:
        root.dispose()


@component(shared=True)
def Greedy() -> Node:
    n = use_signal(0)
    return h.p(n.get())


@component(shared=True)
def Nosy(box: Any) -> Node:
    return h.p(box.get())


def test_a_shared_component_may_not_hold_session_state() -> None:
    with pytest.raises(HookError, match="shared component Greedy"):
        Root(Greedy()).render_initial()
    with pytest.raises(shared.SharedComponentError, match="only its props and global signals"):
        Root(Nosy(box=signal(1))).render_initial()



@component
def Label() -> Node:
    return h.b("label")


@component
def Switch(show: Any) -> Node:
    return h.div(h.section(Panel(variant=0)) if show.get() else h.p("away"), Label())


def test_an_instance_kept_aside_sends_nothing_when_its_global_changes() -> None:
    """A page kept alive off the tree (navigation's keeper) still hears the global, but is not in the DOM."""
    shared.enable(True)
    with batch():
        VALUE.set(([("text", "a")], []))
    show = signal(True)
    root = Root(Switch(show=show))
    kept: list[Any] = []
    root.keeper = lambda inst: kept.append(inst) is None  # keep every instance that leaves the tree
    root.render_initial()
    dom = parse_html(root.html())
    with batch():
        show.set(False)
    apply_patches(dom, root.rerender())
    assert kept and "away" in dom.inner_html()
    with batch():
        VALUE.set(([("text", "b")], []))
    patches = root.rerender()
    assert patches == []
    apply_patches(dom, patches)
    assert dom.inner_html() == parse_html(root.html()).inner_html()
    for inst in kept:
        inst.dispose()
    root.dispose()


@component
def Framed() -> Node:
    return h.article(h.section(Panel(variant=0)))


@component
def Host(show: Any) -> Node:
    return h.div(Framed(key="later") if show.get() else h.p("away"), Label())


def test_an_instance_rendered_aside_sends_nothing_until_it_is_placed() -> None:
    """A page rendered ahead (a prefetch) hears the global but is not in the DOM; once placed, it shows the latest."""
    shared.enable(True)
    with batch():
        VALUE.set(([("text", "a")], []))
    show = signal(False)
    root = Root(Host(show=show))
    root.render_initial()
    dom = parse_html(root.html())
    (host,) = root._scope.children.values()
    aside = root.render_aside(host, Framed(key="later"))
    with batch():
        VALUE.set(([("text", "b")], []))
    patches = root.rerender()
    assert patches == []
    root.adopt(aside)
    with batch():
        show.set(True)
    apply_patches(dom, root.rerender())
    assert ">b<" in dom.inner_html()
    assert dom.inner_html() == parse_html(root.html()).inner_html()
    root.dispose()


@component
def Solo() -> Node:
    return h.main(h.section(Panel(variant=0)))


def test_an_element_that_cannot_be_patched_in_place_goes_through_the_page() -> None:
    """Another tag (or a render error) makes the in-place swap give up: the page resolves it as usual."""
    shared.enable(True)
    with batch():
        VALUE.set(([], []))  # an empty spec renders a <p>
    roots = [Root(Solo()) for _ in range(3)]
    doms = []
    for root in roots:
        root.render_initial()
        doms.append(parse_html(root.html()))
    for spec in ([("text", "a")], [("text", "b")], []):  # <p> -> <div> -> <div> -> <p>
        with batch():
            VALUE.set((spec, []))
        for root, dom in zip(roots, doms):
            apply_patches(dom, root.rerender())
            assert _without_hids(dom.inner_html()) == _fresh_html(Solo())


LABEL: SharedSignal[str] = SharedSignal("a")


@component
def Badge(text: str) -> Node:
    return h.b(text)  # a session's own component, inside a shared one


@component(shared=True)
def Boxed() -> Node:
    label = LABEL.get()
    return h.div(h.span(label), Badge(text=label.upper()), class_="boxed")


@component
def BoxedPage() -> Node:
    return h.main(h.section(Boxed()))


def test_a_shared_element_with_a_component_below_goes_through_the_page() -> None:
    """A fresh shared element holding a component needs a plan: not swapped in place, resolved as usual."""
    shared.enable(True)
    roots = [Root(BoxedPage()) for _ in range(3)]
    doms = []
    for root in roots:
        root.render_initial()
        doms.append(parse_html(root.html()))
    for label in ("b", "c", "d"):
        with batch():
            LABEL.set(label)
        for root, dom in zip(roots, doms):
            apply_patches(dom, root.rerender())
            assert _without_hids(dom.inner_html()) == _fresh_html(BoxedPage())
            assert f"<b>{label.upper()}</b>" in _without_hids(dom.inner_html())
    for root in roots:
        root.dispose()
