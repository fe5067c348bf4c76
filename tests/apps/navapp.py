"""Pages with head tags, for the navigation tests."""

from vango_mp import App, component, h
from vango_mp.navigation import use_head


@component
def A():
    use_head(title="A page", meta={"description": "About & A"})
    return h.main(h.h1("A"), h.a("to B", href="/b"))


@component
def B():
    use_head(title="B page", meta={"description": "B", "robots": "noindex"})
    return h.main(h.h1("B"), h.a("to A", href="/a"))


app = App({"/a": A, "/b": B})
