"""A Signal or Computed placed as a child is bound: a change re-renders that text, not the component."""

from __future__ import annotations

from typing import Any

from vango_mp.protocol import SET_TEXT
from vango_mp.reactive import batch, computed, signal
from vango_mp.vdom import Root, component, h, use_signal
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
