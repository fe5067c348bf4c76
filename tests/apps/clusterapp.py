"""The app for the several-machines tests: the demo's pages and one whose global write reports its error."""

from __future__ import annotations

import asyncio
from typing import Any

from vango_mp.demo.pages import Counter, GlobalCounter, Todos, worker_badge
from vango_mp.globals import GlobalSignal
from vango_mp.router import App
from vango_mp.vdom import Node, component, h, use_signal

SHARED = GlobalSignal("cluster.shared", 0)


@component
def Shared() -> Node:
    """``#add`` increments a global and shows the write's error in ``#error``; ``#local-inc`` is session state."""
    error = use_signal("")
    local = use_signal(0)

    def add() -> None:
        write: Any = SHARED.incr()
        if isinstance(write, asyncio.Future):
            write.add_done_callback(
                lambda done: error.set("" if done.cancelled() or done.exception() is None else str(done.exception())))

    return h.main(
        h.p("shared ", h.span(str(SHARED.get()), id="shared")),
        h.button("+1", id="add", on_click=add),
        h.p(error.get(), id="error"),
        h.p("local ", h.span(str(local.get()), id="local")),
        h.button("local +1", id="local-inc", on_click=lambda: local.update(lambda n: n + 1)),
        worker_badge(),
    )


app = App({"/counter": Counter, "/global": GlobalCounter, "/todos": Todos, "/shared": Shared})
