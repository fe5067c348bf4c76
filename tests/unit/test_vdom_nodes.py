"""The h helpers, keyword conversion and child normalisation."""

from __future__ import annotations

import pytest

from vango_mp.vdom import ComponentNode, Element, Fragment, Node, Root, Text, component, fragment, h, normalize
from vango_mp.reactive import batch, signal
from vango_mp.vdom import nodes
from vango_mp.vdom.html import render_html
from vango_mp.vdom.listeners import on


def texts(el: Element) -> list[str]:
    return [c.text if type(c) is Text else f"<{c.tag}>" for c in el.children]  # type: ignore[union-attr]


def test_h_builds_elements_and_caches_factories() -> None:
    el = h.div("hi", id="x")
    assert (el.tag, el.attrs, el.hid, el.key) == ("div", {"id": "x"}, 0, None)
    assert h.div is h.div  # one factory per tag
    assert h.my_widget().tag == "my-widget"
    assert h.del_().tag == "del"
    assert h("custom-el").tag == "custom-el"
    with pytest.raises(AttributeError):
        h._private  # noqa: B018


def test_keyword_conversion() -> None:
    el = h.label(class_="a", for_="name", data_user_id=7, aria_label="L", type_="x", key="k")
    assert el.attrs == {"class": "a", "for": "name", "data-user-id": "7", "aria-label": "L", "type": "x"}
    assert el.key == "k"


def test_boolean_and_none_attributes() -> None:
    el = h.input(disabled=True, checked=False, value=None, placeholder="")
    assert el.attrs == {"disabled": "", "placeholder": ""}


def test_list_attribute_values_join_truthy_items() -> None:
    assert h.div(class_=["a", None, False, "b"]).attrs == {"class": "a b"}


def test_event_handlers() -> None:
    def f() -> None:
        pass

    el = h.button("x", on_click=f, on_submit=None)
    assert el.events == {"click": f}
    assert "on-click" not in el.attrs
    with pytest.raises(ValueError, match="unknown event"):
        h.button(on_hover=f)
    with pytest.raises(TypeError, match="callable"):
        h.button(on_click="alert(1)")


def test_reserved_and_invalid_attribute_names() -> None:
    with pytest.raises(ValueError, match="reserved"):
        h.div(data_hid=3)
    with pytest.raises(ValueError, match="reserved"):
        h.div(data_ve="click")
    with pytest.raises(ValueError, match="invalid attribute"):
        h.div(**{'x" onclick="y': 1})


def test_children_flatten_and_merge() -> None:
    el = h.div("a", 1, 2.5, None, False, True, ["b", ("c", h.br())], (x for x in ["d", ""]), "", fragment("e", h.i()))
    assert texts(el) == ["a12.5bc", "<br>", "de", "<i>"]


def test_empty_text_dropped_and_text_objects_merged() -> None:
    el = h.p("", Text("x"), Text(""), "y")
    assert texts(el) == ["xy"]
    assert h.p("", None).children == []


def test_normalize_keeps_components_and_separates_text_around_them() -> None:
    @component
    def C() -> Element:
        return h.b()

    nodes = normalize(["a", C(), "b", "c"])
    assert [type(n) for n in nodes] == [Text, ComponentNode, Text]
    assert nodes[2].text == "bc"  # type: ignore[union-attr]


def test_fragment_flattens() -> None:
    frag = Fragment(["a", ["b"], h.p()])
    assert [type(c) for c in frag.children] == [Text, Element]
    assert texts(h.div(frag, "c")) == ["ab", "<p>", "c"]


def test_void_elements_refuse_children() -> None:
    assert h.input(type="text").children == []
    assert h.br(None).children == []
    with pytest.raises(ValueError, match="void"):
        h.img("x")


def test_bad_child_type_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="cannot render dict"):
        h.div({"id": "x"})


def test_clone_is_deep_and_clears_hids() -> None:
    el = h.ul(h.li("a", key=1), key="k")
    el.hid, el.children[0].hid = 5, 6  # type: ignore[union-attr]
    copy = el.clone()
    assert copy is not el and copy.hid == 0 and copy.key == "k"
    assert copy.children[0] is not el.children[0] and copy.children[0].hid == 0  # type: ignore[union-attr]
    assert copy.children[0].key == 1  # type: ignore[union-attr]


def test_svg_mixed_case_tags_keep_their_case() -> None:
    """The browser builds an INSERTed element with createElementNS, which is case-sensitive:
    <foreignobject> is not SVG's <foreignObject>."""
    assert h.foreignObject().tag == "foreignObject"
    assert h("linearGradient").tag == "linearGradient"
    assert h.clippath().tag == "clipPath"
    assert h.svg(h.textPath("t")).children[0].tag == "textPath"
    assert h.div().tag == "div" and h.my_widget().tag == "my-widget"
    assert "<foreignObject data-hid" in render_html([h.svg(h.foreignObject(h.p("x")))])


def test_equal_short_texts_and_attrs_are_shared_between_builds() -> None:
    """Texts and attribute dicts carry no hid: equal ones are one object for every session."""
    a, b = h.a("Home", href="/"), h.a("Home", href="/")
    assert a is not b  # elements carry hids: never shared
    assert a.children is b.children and a.children[0] is b.children[0]  # a lone text's list holds no hid
    assert h.p("Count: ", 3).children is h.p("Count: 3").children
    assert h.p("a", h.b("b")).children is not h.p("a", h.b("b")).children  # an element in it: its own
    assert a.attrs is b.attrs == {"href": "/"}
    long_text, long_href = "x" * (nodes.SHARED_TEXT_LEN + 1), "/" + "y" * nodes.SHARED_ATTRS_LEN
    assert h.p(long_text).children[0] is not h.p(long_text).children[0]
    assert h.p(long_text).children is not h.p(long_text).children
    assert h.a(href=long_href).attrs is not h.a(href=long_href).attrs


def test_a_session_changing_its_text_leaves_another_sessions_shared_lists_alone() -> None:
    """Shared text lists are never written to: every change of one root's texts leaves the other's tree."""
    count = signal(0)

    @component
    def Page(step: int) -> Node:
        n = count.get() if step else 0
        return h.main(h.p(f"Count: {n}"), h.p("Count: ", n), h.ul([h.li(f"Count: {i}") for i in range(n % 3)]))

    one, two = Root(Page(step=1)), Root(Page(step=0))
    one.render_initial()
    two.render_initial()
    before = two.html()
    for n in range(1, 7):
        with batch():
            count.set(n)
        one.rerender()
        assert f"Count: {n}" in one.html()
        assert two.html() == before
    one.dispose()
    two.dispose()


def test_listener_options_stay_on_their_own_element() -> None:
    """data-vo is written before an attribute dict is shared: an equal plain element never gets it."""
    plain = h.button("x", id="b")
    opted = h.button("x", id="b", on_click=on(lambda: None, debounce=100))
    assert "data-vo" in opted.attrs
    assert plain.attrs == {"id": "b"}
    assert h.button("x", id="b").attrs == {"id": "b"}


def test_sessions_rendering_the_same_page_get_their_own_elements() -> None:
    """Two roots of one app: elements (and their hids) are per root, the texts in them shared."""

    @component
    def Page() -> Node:
        return h.main(h.p("Count: 0", id="count"), h.button("+", id="inc", on_click=lambda: None))

    one, two = Root(Page()), Root(Page())
    one.render_initial()
    two.render_initial()
    assert [n.hid for n in one.nodes] == [n.hid for n in two.nodes] == [1]
    p1, p2 = one.nodes[0].children[0], two.nodes[0].children[0]
    assert p1 is not p2 and p1.hid == p2.hid == 2
    assert p1.children[0] is p2.children[0]  # the Text "Count: 0"
    assert one.handler(3, "click") is not two.handler(3, "click")


def test_child_lists_without_components_below_are_static() -> None:
    """The mount never walks a StaticList for components (plan.compile_plan); any other list it walks."""
    from vango_mp.vdom import component
    from vango_mp.vdom.nodes import StaticList

    @component
    def Leaf() -> Node:
        return h.b("leaf")

    assert type(h.div(h.p("x"), "y", [h.i()]).children) is StaticList
    assert type(h.div("one text").children) is StaticList
    assert type(h.div(h.p("x")).children) is StaticList
    assert type(h.div(Leaf()).children) is list
    assert type(h.div(h.p(h.span(Leaf()))).children) is list  # a component further down
    assert type(h.div(fragment(h.p(), Leaf())).children) is list
    assert type(h.div(h.p("x")).clone().children) is StaticList
    assert h.div(h.div(h.p("x")).children).children[0].tag == "p"  # a StaticList is a list of children too
