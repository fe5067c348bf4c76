"""An app with a layout, a guarded route and parameters, for the navigation tests in Chromium."""

from typing import Any

from vango_mp import App, component, h, use_signal
from vango_mp.navigation import use_head
from vango_mp.routing import Redirect, RouteContext


renders = {"two": 0}


@component
def Shell(children: Any = None):
    opened = use_signal(0)  # layout state: must survive navigation between its pages
    return h.div(
        h.nav(h.a("One", href="/one"), h.a("Two", href="/two", data_prefetch=""), h.a("Secret", href="/secret"),
              h.a("Hi", href="/hello/Zo%C3%AB%20Smith")),
        h.button(f"opened {opened.get()}", id="shell", on_click=lambda: opened.update(lambda n: n + 1)),
        # How often Two had rendered when this layout last did (it renders before its page does).
        h.span(str(renders["two"]), id="two-count"),
        children,
    )


@component
def One():
    use_head(title="One")
    return h.main(h.h1("One", id="one"))


@component
def Two():
    renders["two"] += 1
    use_head(title="Two")
    return h.main(h.h1("Two", id="two"), h.p(str(renders["two"]), id="two-renders"))


@component
def Secret():
    return h.main(h.h1("Secret", id="secret"))


@component
def Hello(name: str):
    return h.main(h.p(name, id="name"))


def guard(ctx: RouteContext) -> Any:
    return Redirect("/one") if ctx.pattern == "/secret" else None


app = App({"/one": One, "/two": Two, "/secret": Secret, "/hello/{name}": Hello}, layouts={"/": Shell},
          route_middleware=[guard])
