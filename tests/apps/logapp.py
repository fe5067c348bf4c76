"""A page whose handlers log and raise: what the JSON log test reads back."""

from __future__ import annotations

import logging

from vango_mp import App, component, h, use_signal
from vango_mp.vdom import Node

log = logging.getLogger("logapp")


@component
def Noisy() -> Node:
    n = use_signal(0)

    def click() -> None:
        n.update(lambda v: v + 1)
        log.info("clicked %d", n.peek())

    def boom() -> None:
        raise RuntimeError("boom")

    return h.main(h.p(f"n={n.get()}", id="n"), h.button("log", id="log", on_click=click),
                  h.button("boom", id="boom", on_click=boom))


app = App({"/": Noisy})
