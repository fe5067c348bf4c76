"""The Python DOM model: parsing, every patch op as the JS client does it, selectors."""

from __future__ import annotations

import pytest

from vango_mp.protocol import INSERT, MOVE, REMOVE, REMOVE_ATTR, REPLACE, SET_ATTR, SET_TEXT
from vango_mp.vdom.apply import PatchError, apply_patches, find_by_hid, parse_html, select, select_one

HTML = (
    '<div id="app" class="shell main" data-hid="1">'
    '<ul data-hid="2"><li class="todo" data-hid="3">a</li><li class="todo done" data-hid="4">b</li></ul>'
    '<input type="checkbox" checked data-hid="5">tail'
    "</div>"
)


def test_parse_builds_elements_text_and_hids() -> None:
    dom = parse_html(HTML)
    app = dom.children[0]
    assert app.tag == "div" and app.hid == 1 and app.classes == ["shell", "main"]
    assert [c.tag for c in app.children] == ["ul", "input", "#text"]
    assert app.children[1].attrs == {"type": "checkbox", "checked": "", "data-hid": "5"}
    assert app.children[1].children == []
    assert find_by_hid(dom, 4).text_content() == "b"  # type: ignore[union-attr]
    assert find_by_hid(dom, 0) is dom and find_by_hid(dom, 99) is None
    assert dom.inner_html() == HTML.replace("checked ", 'checked="" ').replace(
        'id="app" class="shell main" data-hid="1"', 'class="shell main" data-hid="1" id="app"'
    ).replace('type="checkbox" checked="" data-hid="5"', 'checked="" data-hid="5" type="checkbox"')


def test_every_op() -> None:
    dom = parse_html(HTML)
    apply_patches(dom, [
        [SET_TEXT, 3, 0, "A"],
        [SET_ATTR, 1, "title", "t"],
        [REMOVE_ATTR, 5, "checked"],
        [INSERT, 2, 2, ["li", 6, {"class": "todo", "data-ve": "click"}, ["c", ["b", 7, {}, ["!"]]]]],
        [MOVE, 2, 2, 0],
        [REMOVE, 2, 1],
        [REPLACE, 1, 2, ["p", 8, {}, []]],
        [INSERT, 0, 1, "after"],
    ])
    assert dom.inner_html() == (
        '<div class="shell main" data-hid="1" id="app" title="t"><ul data-hid="2">'
        '<li class="todo" data-hid="6" data-ve="click">c<b data-hid="7">!</b></li>'
        '<li class="todo done" data-hid="4">b</li></ul>'
        '<input data-hid="5" type="checkbox"><p data-hid="8"></p></div>after'
    )
    assert find_by_hid(dom, 5).props["checked"] is False  # type: ignore[union-attr]
    assert find_by_hid(dom, 3) is None and find_by_hid(dom, 6).parent.hid == 2  # type: ignore[union-attr]


def test_value_attribute_sets_the_property() -> None:
    dom = parse_html('<input data-hid="1">')
    node = dom.children[0]
    node.props["value"] = "user typing"
    assert node.value == "user typing"
    apply_patches(dom, [[SET_ATTR, 1, "value", "server"]])
    assert node.value == "server" and node.attrs["value"] == "server"


@pytest.mark.parametrize(
    "patch",
    [
        [SET_TEXT, 2, 0, "x"],  # target is an element
        [SET_TEXT, 9, 0, "x"],  # no such hid
        [REMOVE, 2, 5],
        [MOVE, 2, 0, 3],  # after taking one out only 0..1 are valid
        [INSERT, 2, 4, "x"],
        [99, 1],
    ],
)
def test_bad_patches_raise(patch: list) -> None:
    with pytest.raises(PatchError):
        apply_patches(parse_html(HTML), [patch])


def test_selectors() -> None:
    dom = parse_html(HTML)
    assert select_one(dom, "#app") is dom.children[0]
    assert [n.hid for n in select(dom, "li")] == [3, 4]
    assert [n.hid for n in select(dom, "li.todo.done")] == [4]
    assert [n.hid for n in select(dom, "div#app li.todo")] == [3, 4]
    assert [n.hid for n in select(dom, "div > li")] == []
    assert [n.hid for n in select(dom, "div > ul > li")] == [3, 4]
    assert [n.hid for n in select(dom, "[checked]")] == [5]
    assert [n.hid for n in select(dom, 'input[type="checkbox"]')] == [5]
    assert [n.hid for n in select(dom, "[data-hid='2'] li, input")] == [3, 4, 5]
    assert [n.hid for n in select(dom, ".shell [class~=done]")] == [4]
    assert select_one(dom, ".missing") is None
    with pytest.raises(ValueError):
        select(dom, "li:first-child")
