"""Demo pages: a counter, a keyed todo list and a counter shared by every session."""

from __future__ import annotations

from collections.abc import Callable

from ..events import Event
from ..globals import GlobalSignal
from ..vdom import Node, component, h, use_context, use_signal

GLOBAL_COUNT = GlobalSignal("demo.global_count", 0)


def nav() -> Node:
    return h.nav(
        h.a("Home", href="/"), " · ", h.a("Counter", href="/counter"), " · ",
        h.a("Todos", href="/todos"), " · ", h.a("Global", href="/global"),
    )


def worker_badge() -> Node:
    return h.p("Served by worker ", h.span(str(use_context("worker", 0)), id="worker"), class_="worker")


@component
def Home() -> Node:
    return h.main(h.h1("vango-mp demo"), nav(), worker_badge())


@component
def Counter() -> Node:
    count = use_signal(0)
    return h.main(
        h.h1("Counter"),
        nav(),
        h.p(f"Count: {count.get()}", id="count"),
        h.button("+", id="inc", on_click=lambda: count.update(lambda n: n + 1)),
        h.button("-", id="dec", on_click=lambda: count.update(lambda n: n - 1)),
        worker_badge(),
    )


@component
def Todos() -> Node:
    items = use_signal(())  # tuple of (id, title): immutable, so set() always notifies
    draft = use_signal("")
    next_id = use_signal(1)

    def add(event: Event) -> None:
        title = str(event.form.get("title", "")).strip()
        if title:
            items.set((*items.peek(), (next_id.peek(), title)))
            next_id.update(lambda n: n + 1)
        draft.set("")

    def remover(item_id: int) -> Callable[[], None]:
        return lambda: items.set(tuple(i for i in items.peek() if i[0] != item_id))

    return h.main(
        h.h1("Todos"),
        nav(),
        h.form(
            h.input(id="new-todo", name="title", value=draft.get(), autocomplete="off",
                    placeholder="What needs doing?", on_input=lambda e: draft.set(str(e.value or ""))),
            h.button("Add", type="submit", id="add-todo"),
            on_submit=add,
        ),
        h.ul(
            [h.li(h.span(title), h.button("×", class_="remove", on_click=remover(item_id)),
                  class_="todo", key=str(item_id)) for item_id, title in items.get()],
            id="todos",
        ),
        worker_badge(),
    )


@component
def GlobalCounter() -> Node:
    return h.main(
        h.h1("Global counter"),
        nav(),
        h.p("Shared by every session on every worker: ", h.span(str(GLOBAL_COUNT.get()), id="global-count")),
        h.button("+1", id="global-inc", on_click=lambda: GLOBAL_COUNT.incr()),
        worker_badge(),
    )
