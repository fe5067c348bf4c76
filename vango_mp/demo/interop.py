"""The JS-interop half of the ``/widgets`` demo: a toast the server emits, a chart drawn by a client hook.

``#toast-btn`` makes the server :func:`~vango_mp.interop.emit` a ``toast``
event; the page's own script (``demo/static/widgets.js``, served as an
asset under the CSP: no inline script) shows its text in ``#toast-text``.
``#chart`` is a ``<canvas>`` whose ``Chart`` hook draws the series the
server renders into ``data-points`` (``mounted``/``updated``); a click on a
bar is the hook's ``pushEvent("pick")``, which reaches the canvas'
``on_hook`` handler and shows in ``#chart-picked``.
"""

from __future__ import annotations

import random

from ..assets import asset
from ..interop import HookEvent, emit, js
from ..vdom import Node, component, h, use_signal

SERIES = [3, 7, 4, 9, 5, 6]  # the chart's first points
MAX_POINTS = 24


def page_script() -> Node:
    """The page's own script (toast listener, Chart hook), from the demo's static files."""
    return h.script(src=asset("widgets.js"))


@component
def Toast() -> Node:
    sent = use_signal(0)

    def toast() -> None:
        sent.update(lambda n: n + 1)
        emit("toast", {"text": f"Hello from the server ({sent.peek()})"})

    return h.section(
        h.h2("Toast from the server"),
        h.button("Show a toast", id="toast-btn", type="button", on_click=toast),
        h.p(id="toast-text", role="status", aria_live="polite"),
    )


@component
def Chart() -> Node:
    points = use_signal(list(SERIES))
    picked = use_signal("Click a bar")

    def add() -> None:
        points.update(lambda ps: (ps + [random.randint(1, 10)])[-MAX_POINTS:])

    def on_hook(event: HookEvent) -> None:
        if event.name == "pick":
            i = event.get_int("index")
            ps = points.peek()
            picked.set(f"bar {i + 1}: {ps[i]}" if 0 <= i < len(ps) else "Click a bar")

    return h.section(
        h.h2("Chart drawn by a client hook"),
        h.canvas(id="chart", width="320", height="120", data_hook="Chart",
                 data_points=",".join(str(p) for p in points.get()), on_hook=on_hook),
        h.p(picked.get(), id="chart-picked"),
        h.button("Add a point", id="chart-add", type="button", on_click=add),
        # A client command on the element: shown and hidden in the browser, no round trip.
        h.button("About this chart", id="chart-about", type="button", data_js_click=js.toggle("#chart-help")),
        h.p("The server sends the numbers; the page's Chart hook draws them on the canvas.", id="chart-help",
            hidden=True),
    )


def interop_section() -> Node:
    return h.div(page_script(), Toast(), Chart())
