"""Components and hooks: state, hook identity and order, context, memo, effects, errors."""

from __future__ import annotations

from typing import Any

import pytest

from vango_mp.reactive import SignalWriteInRender, batch, set_debug, signal
from vango_mp.vdom import (
    ComponentNode,
    HookError,
    Node,
    Root,
    component,
    h,
    use_context,
    use_effect,
    use_memo,
    use_signal,
)
from vango_mp.vdom.apply import apply_patches, parse_html, select_one


def mount(node: Node, **context: Any) -> tuple[Root, Any]:
    root = Root(node, context=context)
    root.render_initial()
    return root, parse_html(root.html())


def click(root: Root, dom: Any, selector: str) -> None:
    node = select_one(dom, selector)
    assert node is not None, selector
    handler = root.handler(node.hid, "click")
    assert handler is not None
    handler()
    apply_patches(dom, root.rerender())


@component
def Counter(start: int = 0, label: str = "n") -> Node:
    count = use_signal(start)
    return h.div(h.span(label, "=", count.get(), class_="v"), h.button("+", on_click=lambda: count.update(lambda n: n + 1)))


def test_component_factory_returns_a_node_and_binds_positional_props() -> None:
    node = Counter(3, label="x", key="k")
    assert isinstance(node, ComponentNode)
    assert (node.props, node.key) == ({"start": 3, "label": "x"}, "k")
    assert component(Counter) is Counter  # decorating twice is harmless
    with pytest.raises(TypeError):
        Counter(1, start=2)
    with pytest.raises(TypeError):
        Counter(1, 2, 3)


def test_state_survives_rerenders() -> None:
    root, dom = mount(Counter(start=5))
    click(root, dom, "button")
    click(root, dom, "button")
    assert select_one(dom, ".v").text_content() == "n=7"  # type: ignore[union-attr]


def test_hooks_keep_identity_and_ids() -> None:
    seen: list[Any] = []

    @component
    def Two() -> Node:
        a, b = use_signal("a"), use_signal("b")
        seen.append((a, b))
        return h.p(a.get(), b.get())

    root, _ = mount(h.main(Two(), Two()))
    first = list(seen)
    seen[0][0].set("A")
    root.rerender()
    assert seen[2] == first[0]  # the same Signal objects on re-render
    assert root.signal_values() == {"Two/0": "A", "Two/1": "b", "Two[1]/0": "a", "Two[1]/1": "b"}


def test_hook_ids_follow_the_path() -> None:
    @component
    def App() -> Node:
        use_signal(0)
        return h.div(Counter(), Counter(key="k"), h.section(Counter()))

    root, _ = mount(App())
    assert set(root.signal_values()) == {"App/0", "App/Counter[0]/0", "App/Counter[key=k]/0", "App/Counter[1]/0"}


def test_hook_outside_render_is_a_clear_error() -> None:
    for hook in (lambda: use_signal(0), lambda: use_memo(lambda: 1), lambda: use_effect(lambda: None),
                 lambda: use_context("x")):
        with pytest.raises(HookError, match="outside a component render"):
            hook()


def test_conditional_hooks_reset_the_component_and_are_reported() -> None:
    """A hook order change cannot go on with the old state: the instance starts over and the
    HookError (component and hook number) is recorded for the session to report."""
    flag = signal(True)
    renders: list[bool] = []

    @component
    def Bad() -> Node:
        renders.append(flag.get())
        if flag.get():
            use_signal(1)
        kept = use_signal("fresh")
        return h.p(kept.get(), on_click=lambda: kept.set("changed"))

    root, dom = mount(Bad())
    click(root, dom, "p")
    assert dom.text_content() == "changed"
    flag.set(False)
    patches = root.rerender()
    apply_patches(dom, patches)
    assert dom.text_content() == "fresh"  # its state started over
    [(kind, err)] = root.errors
    assert kind == "hook" and isinstance(err, HookError)
    assert "component Bad" in str(err) and "hook #1" in str(err)
    assert renders == [True, True, False, False]  # the failed render, then the fresh one


def test_use_context_reads_the_root_context() -> None:
    @component
    def Who() -> Node:
        return h.p(use_context("worker"), "/", use_context("missing", "dflt"))

    _, dom = mount(Who(), worker=4)
    assert dom.text_content() == "4/dflt"


def test_use_memo_is_created_once_and_tracks() -> None:
    calls: list[int] = []

    @component
    def Doubler() -> Node:
        n = use_signal(2)
        doubled = use_memo(lambda: calls.append(1) or n.get() * 2)
        return h.p(doubled.get(), on_click=lambda: n.set(n.peek() + 1))

    root, dom = mount(Doubler())
    click(root, dom, "p")
    assert dom.text_content() == "6" and len(calls) == 2


def test_use_effect_runs_after_commit_and_cleans_up_on_unmount() -> None:
    log: list[str] = []
    show = signal(True)

    @component
    def Child() -> Node:
        n = use_signal(0)

        def fx() -> Any:
            log.append(f"run {n.get()}")
            return lambda: log.append("cleanup")

        use_effect(fx)
        return h.b(n.get(), on_click=lambda: n.update(lambda v: v + 1))

    @component
    def Parent() -> Node:
        return h.div(Child() if show.get() else "gone")

    root, dom = mount(Parent())
    assert log == ["run 0"]
    click(root, dom, "b")
    assert log == ["run 0", "cleanup", "run 1"]
    show.set(False)
    apply_patches(dom, root.rerender())
    assert log[3:] == ["cleanup"]
    assert dom.text_content() == "gone"


def test_effect_writing_a_signal_schedules_another_render() -> None:
    @component
    def Loader() -> Node:
        data = use_signal("loading")
        use_effect(lambda: data.set("loaded"))
        return h.p(data.get())

    root, dom = mount(Loader())
    assert root.dirty
    apply_patches(dom, root.rerender())
    assert dom.text_content() == "loaded" and not root.dirty


def test_signal_write_in_render_raises_in_debug_mode() -> None:
    s = signal(0)

    @component
    def Impure() -> Node:
        s.set(s.peek() + 1)
        return h.p()

    set_debug(True)
    try:
        with pytest.raises(SignalWriteInRender):
            mount(Impure())
    finally:
        set_debug(False)


def test_render_error_leaves_the_root_consistent() -> None:
    boom = signal(False)

    @component
    def Fragile() -> Node:
        if boom.get():
            raise RuntimeError("boom")
        return h.p("ok")

    root, dom = mount(h.div(Counter(), Fragile()))
    html = root.html()
    with batch():  # a sibling's change in the same pass is not lost
        root.handler(select_one(dom, "button").hid, "click")()  # type: ignore[misc, union-attr]
        boom.set(True)
    with pytest.raises(RuntimeError, match="boom"):
        root.rerender()
    assert not root.dirty  # no retry loop: the failed component retries on its next change
    assert root.html() == html
    boom.set(False)
    assert root.dirty
    apply_patches(dom, root.rerender())
    assert dom.inner_html() == parse_html(root.html()).inner_html()
    assert dom.text_content() == "n=1+ok"
