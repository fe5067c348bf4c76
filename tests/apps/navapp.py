"""Pages with head tags and server-side navigation, for the navigation tests."""

from vango_mp import App, component, h
from vango_mp.navigation import navigate, use_head

TALL = h.div("", style="height:2000px")


@component
def A():
    use_head(title="A page", meta={"description": "About & A"})
    return h.main(h.h1("A"), h.a("to B", href="/b"),
                  h.button("stay", id="stay", on_click=lambda: navigate("/b", scroll=False)), TALL)


@component
def B():
    use_head(title="B page", meta={"description": "B", "robots": "noindex"})
    return h.main(h.h1("B"), h.a("to A", href="/a"), h.button("jump", id="jump", on_click=lambda: navigate("/a")),
                  TALL)


app = App({"/a": A, "/b": B})
