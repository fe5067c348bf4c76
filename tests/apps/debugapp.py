"""A page that writes a signal while rendering: an error in debug mode only."""

from vango_mp import App, component, h, use_signal


@component
def Sloppy():
    n = use_signal(0)
    n.set(n.peek() + 1)  # a write during render
    return h.p(f"renders={n.peek()}", id="renders")


app = App({"/": Sloppy})
