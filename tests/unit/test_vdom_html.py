"""SSR: escaping, hids, data-ve, the vnode wire form, and agreement with the parser."""

from __future__ import annotations

import itertools

from vango_mp.vdom import h, normalize, render_html, vnode_wire
from vango_mp.vdom.apply import parse_html
from vango_mp.vdom.diff import assign_hids


def numbered(*children: object) -> list:
    nodes = normalize(children)
    assign_hids(nodes, itertools.count(1).__next__)
    return nodes


def noop() -> None:
    pass


def test_render_escapes_text_and_attributes() -> None:
    nodes = numbered(h.p("<script>alert('x') & \"y\"</script>", title='a"b<c>\'d&'))
    html = render_html(nodes)
    assert html == (
        '<p title="a&quot;b&lt;c&gt;&#x27;d&amp;" data-hid="1">'
        "&lt;script&gt;alert('x') &amp; \"y\"&lt;/script&gt;</p>"
    )
    dom = parse_html(html)
    assert dom.children[0].attrs["title"] == 'a"b<c>\'d&'
    assert dom.children[0].text_content() == "<script>alert('x') & \"y\"</script>"


def test_hids_events_and_no_whitespace() -> None:
    nodes = numbered(h.div(h.button("+", on_submit=noop, on_click=noop), h.input(disabled=True), "t"))
    assert render_html(nodes) == (
        '<div data-hid="1"><button data-hid="2" data-ve="click submit">+</button>'
        '<input disabled data-hid="3">t</div>'
    )


def test_render_accepts_a_single_node() -> None:
    assert render_html(numbered(h.b("x"))[0]) == '<b data-hid="1">x</b>'


def test_vnode_wire_form() -> None:
    nodes = numbered(h.ul(h.li("a", class_="x", on_click=noop), "tail", id="l"))
    assert vnode_wire(nodes[0]) == [
        "ul", 1, {"id": "l"}, [["li", 2, {"class": "x", "data-ve": "click"}, ["a"]], "tail"],
    ]
    assert vnode_wire(normalize(["text"])[0]) == "text"


def test_parsed_child_lists_match_the_tree() -> None:
    """The browser-side parse has the same child list as the server, index for index."""
    nodes = numbered(h.div("a", h.b("b"), "c", h.br(), h.pre("\nkeep"), h.textarea("\n\nx"), "line\r\nend"))
    dom = parse_html(render_html(nodes))
    div = dom.children[0]
    assert [c.tag for c in div.children] == ["#text", "b", "#text", "br", "pre", "textarea", "#text"]
    assert div.children[4].text_content() == "\nkeep"  # the parser ate only the extra newline we added
    assert div.children[5].text_content() == "\n\nx"
    assert div.children[6].text == "line\r\nend"  # CR survives as &#13;
