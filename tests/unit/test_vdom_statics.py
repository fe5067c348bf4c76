"""Static subtrees (vdom.statics): one copy per worker, numbered once, the same DOM as rendering alone."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from vango_mp.reactive import batch, signal
from vango_mp.vdom import Root, component, h, shared, use_signal
from vango_mp.vdom import statics
from vango_mp.vdom.apply import apply_patches, parse_html, select_one
from vango_mp.vdom.nodes import Element, Node


def nav(active: int) -> Node:
    return h.nav(*(h.a(f"Page {i}", href=f"/{i}", class_="on" if i == active else None) for i in range(3)))


@component
def Page(banner: bool, active: Any) -> Node:
    count = use_signal(0)
    return h.main(
        h.h2("Banner") if banner else None,  # shifts the hids of all that follows
        nav(active.get()),
        h.p("Count: ", count, id="count"),
        h.button("+", id="inc", on_click=lambda: count.update(lambda n: n + 1)),
        h.footer(h.small("static ", h.b("footer"))),
    )


def _nav(root: Root) -> Element:
    main = root._nodes[0]
    return next(c for c in main.children if type(c) is Element and c.tag == "nav")


def _plain(html: str) -> str:
    return re.sub(r' data-hid="\d+"', "", parse_html(html).inner_html())


def test_sessions_numbering_alike_share_the_subtree_itself() -> None:
    active = signal(0)
    one, two = Root(Page(banner=False, active=active)), Root(Page(banner=False, active=active))
    one.render_initial()
    two.render_initial()
    assert _nav(one) is _nav(two) and one.html() == two.html()
    button_one = select_one(parse_html(one.html()), "#inc")
    assert one._registry[button_one.hid] is not two._registry[button_one.hid]  # handlers are per session
    other = Root(Page(banner=True, active=active))  # numbers the nav from another hid: a copy of its own
    other.render_initial()
    assert _nav(other) is not _nav(one) and _nav(other).hid == _nav(one).hid + 1
    for root in (one, two, other):
        root.dispose()


def test_handlers_bound_values_and_large_subtrees_are_not_interned() -> None:
    value = signal(1)
    for el in (h.div(h.button("x", on_click=lambda: None)), h.div(h.p(value)),
               h.ul(*(h.li(str(i)) for i in range(statics.MAX_ELEMENTS)))):
        assert statics.intern(el) is el and el.hid == 0
    small = h.ul(*(h.li(str(i)) for i in range(3)))
    assert statics.intern(h.ul(*(h.li(str(i)) for i in range(3)))) is statics.intern(small)
    assert statics.intern(h.ul(h.li("0", class_="x"), h.li("1"), h.li("2"))) is not statics.intern(small)
    assert statics.intern(h.ul(h.li("0"), h.li("1"), h.li("two"))) is not statics.intern(small)
    assert statics.intern(h.ul(h.li("0"), h.li("1"), h.li(h.b("2")))) is not statics.intern(small)


def test_long_texts_and_values_stay_out_and_the_table_is_bounded(monkeypatch: Any) -> None:
    """As for shared texts: user data past the short-value limits is never kept worker-wide."""
    from vango_mp.vdom import nodes

    for el in (h.p("x" * (nodes.SHARED_TEXT_LEN + 1)), h.a("ok", href="/" + "y" * nodes.SHARED_ATTRS_LEN)):
        assert statics.intern(el) is el and el.hid == 0
    monkeypatch.setattr(statics, "MAX_TABLE_ELEMENTS", 50)
    statics.clear()
    for i in range(40):
        statics.intern(h.ul(h.li(f"row {i}"), h.li("b")))  # 3 elements each
        assert statics.held() <= 50
    assert statics.held() >= 48
    last = h.ul(h.li("row 39"), h.li("b"))
    assert statics.intern(last) is not last  # the newest are kept
    first = h.ul(h.li("row 0"), h.li("b"))
    assert statics.intern(first) is first  # the oldest went


def test_sharing_off_interns_nothing() -> None:
    active = signal(0)
    shared.enable(False)
    try:
        one, two = Root(Page(banner=False, active=active)), Root(Page(banner=False, active=active))
        one.render_initial()
        two.render_initial()
        assert _nav(one) is not _nav(two) and one.html() == two.html()
    finally:
        shared.enable(True)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=4),
       st.lists(st.one_of(st.tuples(st.just("active"), st.integers(0, 3)),
                          st.tuples(st.just("click"), st.integers(0, 3)),
                          st.tuples(st.just("new"), st.booleans())), max_size=12))
def test_many_sessions_stay_equal_to_rendering_alone(banners: list[bool], steps: list[tuple[str, Any]]) -> None:
    active = signal(0)
    roots: list[tuple[Root, Any]] = []

    def add(banner: bool) -> None:
        root = Root(Page(banner=banner, active=active))
        root.render_initial()
        roots.append((root, parse_html(root.html())))

    for banner in banners:
        add(banner)
    for kind, arg in steps:
        if kind == "new":
            add(arg)
            continue
        with batch():
            if kind == "active":
                active.set(arg)
            else:
                root, dom = roots[arg % len(roots)]
                root.handler(select_one(dom, "#inc").hid, "click")()
        for root, dom in roots:
            apply_patches(dom, root.rerender())
            assert dom.inner_html() == parse_html(root.html()).inner_html()
    for i, (root, dom) in enumerate(roots):
        fresh = Root(Page(banner=banners[i] if i < len(banners) else "Banner" in root.html(), active=active))
        fresh.render_initial()
        count = select_one(dom, "#count").text_content()
        assert _plain(dom.inner_html()).replace(count, "Count: 0") == _plain(fresh.html())
        fresh.dispose()
    for root, _ in roots:
        root.dispose()
