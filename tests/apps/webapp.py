"""Apps for the HTTP-surface tests: the demo's pages under a hardened CSP; a form posting to an app route."""

from __future__ import annotations

from vango_mp.demo.pages import Counter, Home, Todos
from vango_mp.headers import hardened_csp_options
from vango_mp.router import App
from vango_mp.routes import csrf_input
from vango_mp.vdom import Node, component, h

pages = {"/": Home, "/counter": Counter, "/todos": Todos}

# The demo's pages with the stricter profile: no inline styles either.
hardened = App(pages, csp=hardened_csp_options())


@component
def Feedback() -> Node:
    return h.main(h.form(
        csrf_input(),
        h.input(name="text", id="text"),
        h.button("Send", type="submit", id="send"),
        method="post", action="/feedback", id="feedback",
    ))


web = App({**pages, "/form": Feedback})
