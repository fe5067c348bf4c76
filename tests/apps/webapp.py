"""An app for the HTTP-surface tests: the demo's pages under a hardened CSP."""

from __future__ import annotations

from vango_mp.demo.pages import Counter, Home, Todos
from vango_mp.headers import hardened_csp_options
from vango_mp.router import App

pages = {"/": Home, "/counter": Counter, "/todos": Todos}

# The demo's pages with the stricter profile: no inline styles either.
hardened = App(pages, csp=hardened_csp_options())
