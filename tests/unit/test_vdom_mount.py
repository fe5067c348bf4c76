"""Root: SSR determinism, re-rendering only what is dirty, keyed components, unmounting, persistence."""

from __future__ import annotations

from typing import Any

from vango_mp.protocol import MOVE, SET_TEXT
from vango_mp.reactive import batch, on_cleanup, signal
from vango_mp.vdom import Node, Root, component, h, use_signal
from vango_mp.vdom.apply import apply_patches, parse_html, select, select_one
from vango_mp.vdom.component import NO_CHILDREN, OneChild, compact

renders: list[str] = []


@component
def Row(label: str) -> Node:
    renders.append(label)
    n = use_signal(0)
    return h.li(label, ":", n.get(), h.button("+", on_click=lambda: n.update(lambda v: v + 1)), class_="row")


@component
def Table(rows: Any) -> Node:
    renders.append("table")
    return h.div(h.h1("rows"), h.ul([Row(label=r, key=r) for r in rows.get()]), h.ol(Row(label="footer")))


def mount(node: Node, **kw: Any) -> tuple[Root, Any]:
    root = Root(node, **kw)
    root.render_initial()
    return root, parse_html(root.html())


def press(root: Root, dom: Any, button: Any) -> list[Any]:
    root.handler(button.hid, "click")()  # type: ignore[misc]
    patches = root.rerender()
    apply_patches(dom, patches)
    assert dom.inner_html() == parse_html(root.html()).inner_html()
    return patches


def test_ssr_and_live_render_are_identical() -> None:
    rows = signal(("a", "b"))
    first, _ = mount(Table(rows=rows), context={"worker": 1})
    second, _ = mount(Table(rows=rows), context={"worker": 1})
    assert first.html() == second.html()
    assert 'data-hid="1"' in first.html()
    hids = [n.hid for n in parse_html(first.html()).elements()]
    assert hids == list(range(1, len(hids) + 1))  # depth first from 1


def test_restored_state_renders_like_the_original() -> None:
    rows = signal(("a", "b"))
    root, dom = mount(Table(rows=rows))
    press(root, dom, select(dom, "li.row button")[1])
    press(root, dom, select(dom, "ol button")[0])
    fresh = Root(Table(rows=rows))
    fresh.restore_signal_values(root.signal_values())
    fresh.render_initial()
    assert select_one(parse_html(fresh.html()), "ol").text_content() == "footer:1+"  # type: ignore[union-attr]
    assert [li.text_content() for li in select(parse_html(fresh.html()), "ul li")] == ["a:0+", "b:1+"]
    live = Root(Table(rows=rows))
    live.render_initial()
    live.restore_signal_values(root.signal_values())  # after mount: sets the signals, patches follow
    assert live.dirty
    assert [p[0] for p in live.rerender()] == [SET_TEXT, SET_TEXT]
    assert live.html() == fresh.html()


def test_only_dirty_components_rerender() -> None:
    rows = signal(("a", "b", "c"))
    root, dom = mount(Table(rows=rows))
    renders.clear()
    patches = press(root, dom, select(dom, "li.row button")[1])
    assert renders == ["b"]
    assert [p[0] for p in patches] == [SET_TEXT]
    renders.clear()
    with batch():
        rows.set(("c", "a", "b"))
    patches = root.rerender()
    apply_patches(dom, patches)
    assert renders == ["table"]  # rows are clean and their props did not change
    assert [p[0] for p in patches] == [MOVE]
    assert [li.text_content() for li in select(dom, "ul li")] == ["c:0+", "a:0+", "b:1+"]


def test_clean_components_return_the_same_nodes() -> None:
    rows = signal(("a", "b"))
    root, dom = mount(Table(rows=rows))
    before = list(root.nodes[0].children[1].children)  # type: ignore[union-attr]
    press(root, dom, select(dom, "ol button")[0])  # footer only
    after = root.nodes[0].children[1].children  # type: ignore[union-attr]
    assert all(a is b for a, b in zip(before, after))


def test_props_change_rerenders_the_child() -> None:
    label = signal("x")

    @component
    def Parent() -> Node:
        return h.div(Row(label=label.get()))

    root, dom = mount(Parent())
    renders.clear()
    label.set("y")
    apply_patches(dom, root.rerender())
    assert renders == ["y"] and dom.text_content().startswith("y:0")


def test_unmount_disposes_the_owner() -> None:
    log: list[str] = []
    rows = signal(("a", "b"))

    @component
    def Item(name: str) -> Node:
        on_cleanup(lambda: log.append(name))
        return h.li(name)

    @component
    def List() -> Node:
        return h.ul([Item(name=n, key=n) for n in rows.get()])

    root, dom = mount(List())
    rows.set(("b",))
    apply_patches(dom, root.rerender())
    assert log == ["a"]
    root.dispose()
    assert log == ["a", "b"]


def test_text_merges_across_component_boundaries() -> None:
    who = signal("Bob")

    @component
    def Name() -> Node:
        return who.get()

    @component
    def Empty() -> Node:
        return None

    root, dom = mount(h.p("Hello ", Name(), Empty(), "!"))
    assert root.html() == '<p data-hid="1">Hello Bob!</p>'
    who.set("Al")
    assert root.rerender() == [[SET_TEXT, 1, 0, "Hello Al!"]]


def test_handler_lookup_and_stale_hids() -> None:
    rows = signal(("a",))
    root, dom = mount(Table(rows=rows))
    button = select_one(dom, "li.row button")
    assert root.handler(button.hid, "click") is not None  # type: ignore[union-attr]
    assert root.handler(button.hid, "submit") is None  # type: ignore[union-attr]
    rows.set(())
    apply_patches(dom, root.rerender())
    assert root.handler(button.hid, "click") is None  # type: ignore[union-attr]
    assert root.handler(12345, "click") is None


def test_on_dirty_is_called_once_per_transition() -> None:
    calls: list[int] = []
    rows = signal(("a", "b"))
    root = Root(Table(rows=rows), on_dirty=lambda: calls.append(1))
    root.render_initial()
    dom = parse_html(root.html())
    buttons = select(dom, "li.row button")
    with batch():
        root.handler(buttons[0].hid, "click")()  # type: ignore[misc]
        root.handler(buttons[1].hid, "click")()  # type: ignore[misc]
    assert calls == [1] and root.dirty
    root.rerender()
    assert not root.dirty and root.rerender() == []


def test_static_app_without_components() -> None:
    root, _ = mount(h.div("static", h.b("x")))
    assert root.html() == '<div data-hid="1">static<b data-hid="2">x</b></div>'
    assert root.rerender() == []


def test_shared_constant_nodes_get_their_own_hids() -> None:
    logo = h.span("logo")

    @component
    def Page() -> Node:
        return h.div(logo, h.p(logo))

    a, _ = mount(Page())
    b, _ = mount(Page())
    assert a.html() == b.html() == '<div data-hid="1"><span data-hid="2">logo</span><p data-hid="3"><span data-hid="4">logo</span></p></div>'


def test_a_scope_keeps_no_dict_for_none_or_one_child_and_resolves_alike() -> None:
    """compact(): no children and one child are kept without a dict of their own; the tree is the same."""
    shown = signal(1)

    @component
    def Leaf(n: int) -> Any:
        return h.li(f"leaf {n}")

    @component
    def Branch() -> Any:
        return h.ul([Leaf(n=n, key=n) for n in range(shown.get())])

    root = Root(h.div(Branch()))
    root.render_initial()
    [branch] = root._scope.children.values()
    assert type(root._scope.children) is OneChild and type(branch.children) is OneChild
    dom = parse_html(root.html())
    for count in (0, 2, 1, 3, 0, 1):
        with batch():
            shown.set(count)
        apply_patches(dom, root.rerender())
        assert dom.inner_html() == parse_html(root.html()).inner_html()
        kids = branch.children
        assert len(kids) == count and [k.props["n"] for k in kids.values()] == list(range(count))
        assert type(kids) is (OneChild if count == 1 else dict if count else type(NO_CHILDREN))
    one = compact({("f", True, 1): branch})
    assert one.get(("f", True, 1)) is branch and one.get(("f", True, 2)) is None and len(one) == 1
    assert list(one) == [("f", True, 1)] and one[("f", True, 1)] is branch
    root.dispose()
