"""Demo pages: a counter, a keyed todo list, a counter shared by every session, a filtered list.

Every page has its own title and the same nav; its links navigate live (one
socket, one session per tab).
"""

from __future__ import annotations

from collections.abc import Callable

from ..events import Event
from ..globals import GlobalSignal
from ..navigation import use_head, use_query
from ..vdom import Node, component, h, use_context, use_signal

GLOBAL_COUNT = GlobalSignal("demo.global_count", 0)


APP_NAME = "vango-mp"
ITEMS = [f"Item {n:03d}" for n in range(1, 201)]


def title(page: str) -> None:
    use_head(title=f"{page} · {APP_NAME}")


def nav() -> Node:
    return h.nav(
        h.a("Home", href="/"), " · ", h.a("Counter", href="/counter"), " · ",
        h.a("Todos", href="/todos"), " · ", h.a("Global", href="/global"), " · ",
        h.a("Items", href="/items"), " · ", h.a("Widgets", href="/widgets"),
    )


def worker_badge() -> Node:
    return h.p("Served by worker ", h.span(str(use_context("worker", 0)), id="worker"), class_="worker")


@component
def Home() -> Node:
    title("Home")
    from .shell import intro

    return h.main(h.h1("vango-mp demo"), nav(), intro(),
                  h.p(h.a("Log in", href="/login"), " · ", h.a("Profile", href="/profile")), worker_badge())


@component
def Counter() -> Node:
    count = use_signal(0)
    title("Counter")
    return h.main(
        h.h1("Counter"),
        nav(),
        h.p("Count: ", count, id="count"),  # bound: a click re-renders this text, not the page
        h.button("+", id="inc", on_click=lambda: count.update(lambda n: n + 1)),
        h.button("-", id="dec", on_click=lambda: count.update(lambda n: n - 1)),
        worker_badge(),
    )


@component
def Todos() -> Node:
    items = use_signal(())  # tuple of (id, title): immutable, so set() always notifies
    draft = use_signal("")
    next_id = use_signal(1)
    title("Todos")

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


@component(shared=True)
def GlobalCount() -> Node:
    """The shared value: one render per worker for all sessions (a shared component: vdom.shared)."""
    return h.span(str(GLOBAL_COUNT.get()), id="global-count")


@component
def GlobalCounter() -> Node:
    title("Global")
    return h.main(
        h.h1("Global counter"),
        nav(),
        h.p("Shared by every session on every worker: ", GlobalCount()),
        h.button("+1", id="global-inc", on_click=lambda: GLOBAL_COUNT.incr()),
        worker_badge(),
    )


@component
def Items() -> Node:
    """200 items filtered by ``#filter``; the filter text lives in the query string (``?q=``)."""
    query = use_query()
    text = query.get("q", "")
    shown = [(n, name) for n, name in enumerate(ITEMS, 1) if text.lower() in name.lower()]
    title("Items")
    return h.main(
        h.h1("Items"),
        nav(),
        h.input(id="filter", name="q", value=text, placeholder="Filter", autocomplete="off",
                on_input=lambda e: query.set(q=str(e.value or ""))),
        h.p(f"{len(shown)} of {len(ITEMS)}", id="item-count"),
        h.ul([h.li(h.a(name, href=f"/items/{n}"), class_="item", key=str(n)) for n, name in shown], id="items"),
        worker_badge(),
    )


@component
def Item(id: int) -> Node:  # noqa: A002 - the route's parameter name
    title(f"Item {id}")
    return h.main(h.h1(f"Item {id}"), nav(), h.p(h.span(str(id), id="item-id")),
                  h.p(h.a("All items", href="/items")), worker_badge())
