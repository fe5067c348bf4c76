"""The ``/widgets`` demo page: events with options, async handlers, loading state, errors.

Its ids are part of the observable contract (DESIGN.md): ``#search`` (input
debounced 300 ms) with ``#search-count`` reading ``N searches``; ``#slow``
(an async handler of about 0.5 s, ``aria-busy="true"`` while in flight) with
``#slow-result`` reading ``done N``; ``#boom`` (its handler raises: the page
goes on; ``#vango-error`` shows it with ``--dev`` only); ``#toast-btn`` and
``#toast-text`` (the server emits a ``toast`` event the page's own script
shows) live in :func:`toast_section`.
"""

from __future__ import annotations

import asyncio

from ..events import FormEvent, KeyboardEvent, MouseEvent
from ..resources import use_resource
from ..vdom import Node, component, h, use_signal
from ..vdom.boundary import ErrorBoundary
from ..vdom.listeners import on
from .pages import ITEMS, nav, title, worker_badge
from .interop import interop_section

SLOW_SECONDS = 0.5


async def find(text: str) -> list[str]:
    """A stand-in for a slow query: the first items whose name holds ``text``."""
    await asyncio.sleep(0.05)
    return [name for name in ITEMS if text.lower() in name.lower()][:5]


@component
def Search() -> Node:
    """Debounced input: the client sends one event per 300 ms pause, the results follow as a resource."""
    query = use_signal("")
    searches = use_signal(0)
    hits = use_resource(find, deps=query.get)

    def search(event: FormEvent) -> None:
        query.set(str(event.value or ""))
        searches.update(lambda n: n + 1)

    found = hits.value or []
    return h.section(
        h.h2("Live search"),
        h.input(id="search", type="search", placeholder="Search items", autocomplete="off",
                on_input=on(search, debounce=300)),
        h.p(f"{searches.get()} searches", id="search-count"),
        h.ul([h.li(name, key=name) for name in found], id="search-results",
             aria_busy="true" if hits.loading else None),
    )


@component
def Slow() -> Node:
    """An ``async def`` handler: the button is busy until its task is done."""
    done = use_signal(0)

    async def run() -> None:
        await asyncio.sleep(SLOW_SECONDS)
        done.update(lambda n: n + 1)

    return h.section(
        h.h2("Slow search"),
        h.button("Run slow search", id="slow", type="button", on_click=on(run, loading=True)),
        h.p(f"done {done.get()}", id="slow-result"),
    )


@component
def Pointer() -> Node:
    """Mouse and keyboard payloads: a throttled pointer pad and a key filter."""
    where = use_signal("move the pointer here")
    keys = use_signal("")

    def moved(event: MouseEvent) -> None:
        where.set(f"x={event.client_x} y={event.client_y} buttons={event.buttons}")

    def pressed(event: KeyboardEvent) -> None:
        keys.set(f"{event.key} ({event.code})")

    return h.section(
        h.h2("Pointer and keys"),
        h.div(where.get(), id="pad", tabindex="0", on_mousemove=on(moved, throttle=100)),
        h.input(id="shortcut", placeholder="Press Enter or Escape", on_keydown=on(pressed, keys=["Enter", "Escape"])),
        h.p(keys.get(), id="last-key"),
    )


@component
def Fragile(broken: bool = False) -> Node:
    if broken:
        raise ValueError("Fragile was asked to break")
    return h.p("Fragile renders fine", id="fragile")


@component
def Boundary() -> Node:
    """A render error inside an ErrorBoundary shows its fallback; "Try again" renders afresh."""
    broken = use_signal(False)

    def fallback(error: BaseException, reset: object) -> Node:
        def retry() -> None:
            broken.set(False)
            reset()  # type: ignore[operator]
        return h.div(h.p(f"Fallback: {error}", id="fallback"), h.button("Try again", id="retry", on_click=retry))

    return h.section(
        h.h2("Error boundary"),
        h.button("Break it", id="break", type="button", on_click=lambda: broken.set(True)),
        ErrorBoundary(Fragile(broken=broken.get()), fallback=fallback),
    )


def boom() -> None:
    raise RuntimeError("boom: #boom's handler raised on purpose")


def toast_section() -> Node | None:
    """``#toast-btn`` / ``#toast-text`` (the server emits ``toast``) and the hook-drawn chart: :mod:`.interop`."""
    return interop_section()


@component
def Widgets() -> Node:
    title("Widgets")
    return h.main(
        h.h1("Widgets"),
        nav(),
        Search(),
        Slow(),
        toast_section(),
        Pointer(),
        Boundary(),
        h.section(h.h2("Errors"), h.button("Boom", id="boom", type="button", on_click=boom),
                  h.p("Its handler raises; the page keeps working.")),
        worker_badge(),
    )
