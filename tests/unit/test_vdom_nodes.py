"""The h helpers, keyword conversion and child normalisation."""

from __future__ import annotations

import pytest

from vango_mp.vdom import ComponentNode, Element, Fragment, Text, component, fragment, h, normalize
from vango_mp.vdom.html import render_html


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
