"""A Signal or Computed placed as a child is bound: a change re-renders that text, not the component."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from vango_mp.protocol import SET_TEXT
from vango_mp.reactive import batch, computed, signal
from vango_mp.vdom import Root, component, fragment, h, use_signal
from vango_mp.vdom.apply import apply_patches, parse_html, select_one


def test_a_bound_signal_patches_its_text_without_rendering_the_component() -> None:
    renders = []

    @component
    def Counter() -> Any:
        renders.append(1)
        count = use_signal(0)
        return h.main(h.h1("Counter"), h.p("Count: ", count, "!", id="count"),
                      h.button("+", id="inc", on_click=lambda: count.update(lambda n: n + 1)))

    root = Root(Counter())
    root.render_initial()
    assert '<p id="count" data-hid="3">Count: 0!</p>' in root.html()  # one text node, as the browser parses it
    dom = parse_html(root.html())
    button = select_one(dom, "#inc")
    for n in (1, 2):
        with batch():
            root.handler(button.hid, "click")()
        patches = root.rerender()
        assert patches == [[SET_TEXT, 3, 0, f"Count: {n}!"]]
        apply_patches(dom, patches)
        assert select_one(dom, "#count").text_content() == f"Count: {n}!"
    assert len(renders) == 1
    root.dispose()


def test_computed_none_and_nodes_bind_like_children() -> None:
    items = signal(("a",))
    count = computed(lambda: len(items.get()))
    shown: Any = signal(None)
    root = Root(h.div(h.p(count, " items"), h.ul(shown), h.span("x")))
    root.render_initial()
    dom = parse_html(root.html())
    assert select_one(dom, "p").text_content() == "1 items" and select_one(dom, "ul").children == []
    for value in ([h.li("one"), h.li("two")], "plain", None):
        with batch():
            items.set((*items.peek(), "b"))
            shown.set(value)
        apply_patches(dom, root.rerender())
        assert dom.inner_html() == parse_html(root.html()).inner_html()
    assert select_one(dom, "p").text_content() == "4 items"
    root.dispose()


def test_a_bound_value_keeps_its_place_when_the_component_renders_again() -> None:
    label = signal("a")
    value = signal(1)

    @component
    def Row() -> Any:
        return h.p(label.get(), ": ", value)

    root = Root(h.div(Row()))
    root.render_initial()
    dom = parse_html(root.html())
    for step in range(4):
        with batch():
            if step % 2:
                label.set(label.peek() + "x")
            value.set(value.peek() + 1)
        apply_patches(dom, root.rerender())
        assert dom.inner_html() == parse_html(root.html()).inner_html()
    assert select_one(dom, "p").text_content() == "axx: 5"
    root.dispose()


# region In place or from the top: random bound values under layouts ------------------------------


@component
def FragmentLayout(children: Any) -> Any:
    return fragment(h.link(rel="stylesheet", href="/x.css"), children)  # the page sits at the top level


@component
def BoxLayout(children: Any) -> Any:
    return h.div(h.span("head"), children, class_="box")  # the page sits inside an element


@component
def BoundPage(value: Any, extra: Any, shape: Any) -> Any:
    wide = shape.get()  # read: a change renders the page
    return h.main(
        h.h1("Page"),
        h.p("value: ", value, "!", id="value"),
        h.ul(extra) if wide else h.p(extra),
        h.p("wide") if wide else None,
    )


@component
def Chooser(layout: Any, value: Any, extra: Any, shape: Any) -> Any:
    page = BoundPage(value=value, extra=extra, shape=shape)
    return {"fragment": FragmentLayout, "box": BoxLayout}[layout.get()](children=page) if layout.get() != "bare" else page


VALUES = st.one_of(st.text(max_size=3), st.integers(-5, 5), st.none(), st.just(["x", 1]))
EXTRAS = st.one_of(st.none(), st.text(max_size=2), st.lists(st.sampled_from(["a", "b"]), max_size=3).map(
    lambda names: [h.li(n) for n in names]))


def _plain(html: str) -> str:
    return re.sub(r' data-hid="\d+"', "", parse_html(html).inner_html())


@settings(max_examples=120, deadline=None)
@given(st.lists(st.one_of(
    st.tuples(st.just("value"), VALUES), st.tuples(st.just("extra"), EXTRAS),
    st.tuples(st.just("shape"), st.booleans()), st.tuples(st.just("layout"), st.sampled_from(["fragment", "box", "bare"])),
), max_size=10))
def test_bound_values_under_any_layout_match_a_fresh_render(steps: list[Any]) -> None:
    value, extra, shape, layout = signal(0), signal(None), signal(False), signal("fragment")
    root = Root(Chooser(layout=layout, value=value, extra=extra, shape=shape))
    root.render_initial()
    dom = parse_html(root.html())
    for kind, arg in steps:
        with batch():
            {"value": value, "extra": extra, "shape": shape, "layout": layout}[kind].set(arg)
        apply_patches(dom, root.rerender())
        assert dom.inner_html() == parse_html(root.html()).inner_html()
        fresh = Root(Chooser(layout=layout, value=value, extra=extra, shape=shape))
        fresh.render_initial()
        assert _plain(dom.inner_html()) == _plain(fresh.html())
        fresh.dispose()
    root.dispose()


# endregion


def test_a_component_that_binds_is_never_taken_for_a_shared_one() -> None:
    """It has a place (for its bound values), but when a signal it read changes it renders as any other."""
    from vango_mp.reactive import SharedSignal
    from vango_mp.vdom import shared

    glob: SharedSignal[int] = SharedSignal(1)
    mine = signal("a")

    @component
    def Mixed() -> Any:
        return h.div(h.b(glob.get()), h.i(mine))

    root = Root(h.section(Mixed()))
    root.render_initial()
    dom = parse_html(root.html())
    before = shared.stats()
    for n in (2, 3):
        with batch():
            glob.set(n)
            mine.set(mine.peek() + "b")
        apply_patches(dom, root.rerender())
        assert dom.inner_html() == parse_html(root.html()).inner_html()
    assert dom.inner_html().startswith('<section data-hid="1"><div data-hid="2"><b data-hid="3">3</b><i data-hid="4">abb')
    assert shared.stats() == before  # no worker-wide render of a session's component
    root.dispose()
