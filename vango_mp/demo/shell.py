"""The demo's look: one layout around every page (its stylesheet) and the home page's explanation.

The stylesheet is a file of ``demo/static`` (``asset("demo.css")``): no inline
styles, so the demo runs under the hardened CSP too. ``static/favicon.ico``
is served at ``/favicon.ico`` by the app's assets.
"""

from __future__ import annotations

from typing import Any

from ..assets import asset
from ..vdom import Node, component, fragment, h, use_context


@component
def Shell(children: Any = None) -> Node:
    """Every demo page: the stylesheet, then the page (the layout keeps its state across navigation)."""
    return fragment(h.link(rel="stylesheet", href=asset("demo.css")), children)


def status_link_shown() -> bool:
    from ..observability import status

    return status.SHOWN


def intro() -> Node:
    """What the visitor is looking at, on the home page."""
    worker = str(use_context("worker", 0))
    return h.section(
        h.p("Everything on these pages is rendered on the server. Your browser holds one WebSocket; every click "
            "and keystroke travels to the server, and only the changed parts of the page come back as patches."),
        h.ul(
            h.li("This tab's session lives in worker ", h.strong(worker), " — one of several processes. "
                 "Its state (the counter, your todos) stays in that worker's memory."),
            h.li("Reload the page, or drop your connection: the session resumes with its state, even when the "
                 "new connection lands on another worker, which takes the session over."),
            h.li("Restart a worker (or the whole server, with a state directory): the session is handed over "
                 "or restored from the session store, and you carry on where you were."),
            h.li(h.a("Global", href="/global"), " is one counter shared by every visitor on every worker."),
            class_="facts",
        ),
        h.p("Operators: the ", h.a("live status page", href="/_vango/status", id="status-link", rel="nofollow",
                                       data_vango_reload=""),
            " shows every worker, its sessions and memory.") if status_link_shown() else None,
        class_="intro",
    )
