"""A Signal or Computed placed as a child is bound: a change re-renders that text, not the component."""

from __future__ import annotations

import enum
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from vango_mp.protocol import SET_TEXT
from vango_mp.reactive import batch, computed, signal
from vango_mp.vdom import Root, component, fragment, h, use_signal
from vango_mp.vdom.apply import apply_patches, parse_html, select_one
from vango_mp.vdom.nodes import Text, normalize
from vango_mp.vdom.plan import Compiled, Dyn, TextDyn, bound_text, compile_plan


class Color(enum.IntEnum):
    RED = 1


class Tag(enum.StrEnum):
    B = "b"


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
    [inst] = root._scope.children.values()
    output, main = inst.output, inst.output[0]
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
    assert inst.output is output and inst.output[0] is main  # its text patched where it is: nothing resolved
    assert parse_html(root.html()).inner_html() == dom.inner_html()
    root.dispose()


def test_a_text_slot_patched_in_place_still_lets_a_dirty_child_render() -> None:
    other = signal(0)

    @component
    def Child() -> Any:
        return h.span(f"child {other.get()}")

    @component
    def Page() -> Any:
        count = use_signal(0)
        return h.main(h.p("Count: ", count), Child(), h.button("+", on_click=lambda: count.update(lambda n: n + 1)))

    root = Root(Page())
    root.render_initial()
    dom = parse_html(root.html())
    button = select_one(dom, "button")
    for first_count in (True, False, True):  # both orders of the two invalidations in one batch
        with batch():
            if first_count:
                root.handler(button.hid, "click")()
                other.set(other.peek() + 1)
            else:
                other.set(other.peek() + 1)
                root.handler(button.hid, "click")()
        apply_patches(dom, root.rerender())
        assert dom.inner_html() == parse_html(root.html()).inner_html()
    assert select_one(dom, "span").text_content() == "child 3"
    assert select_one(dom, "p").text_content() == "Count: 3"
    root.dispose()


TEXTY = st.one_of(st.text(max_size=4), st.integers(), st.floats(allow_nan=False), st.none(), st.booleans(),
                  st.sampled_from([Color.RED, Tag.B, Text("t")]), st.just(["x", 1]), st.just(h.b("x")))


@given(TEXTY)
def test_bound_text_is_the_text_normalize_renders(value: Any) -> None:
    text = bound_text(value)
    nodes = normalize((value,))
    if text is None:
        assert any(type(n) is not Text for n in nodes) or type(value) in (list,)
    else:
        assert all(type(n) is Text for n in nodes)
        assert text == "".join(n.text for n in nodes)


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
        h.div(h.b("also: "), value) if wide else None,  # a bound value beside an element: no text slot
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
        assert _shape(root._nodes) == _shape(fresh._nodes)  # node for node: no empty or split text kept
        fresh.dispose()
    root.dispose()


def _shape(nodes: list[Any]) -> list[Any]:
    return [n.text if type(n) is Text else (n.tag, _shape(n.children)) for n in nodes]


def test_text_slots_are_elements_of_text_and_bound_values_only() -> None:
    value = signal(1)
    found = Compiled()
    plan = compile_plan(normalize((h.p("a", value, "b"), h.div(h.b("x"), value), h.ul(h.li(value)))), Root(h.p()),
                        found)
    assert plan is not None
    assert [type(item) for item in plan] == [TextDyn, Dyn, Dyn]
    assert found.bounds == 3 and found.text_bounds == 2
    assert found.first is not None and found.first.chain() == [plan[0], plan[2].plan[0]]
    assert found.text_only() is None  # the one beside <b> is in no text slot
    only = Compiled()
    compile_plan(normalize((h.p("a", value), h.ul(h.li(value)))), Root(h.p()), only)
    assert only.text_only() is only.first and only.first is not None and len(only.first.chain()) == 2


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
    after = shared.stats()  # no worker-wide render of a session's component (its static <b> may be shared)
    assert (after["renders"], after["reused_renders"]) == (before["renders"], before["reused_renders"])
    root.dispose()
