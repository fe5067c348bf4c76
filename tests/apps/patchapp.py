"""A page whose clicks make the server send MOVE and REPLACE patches (browser test of the op codes).

``#reverse`` reverses the keyed list ``#list`` (``li.item``, ``id=item-<key>``): the
diff moves the existing rows; ``#swap`` turns ``#shape`` from a ``<p>`` into a
``<section>`` (another tag, same place): the diff replaces it.
"""

from vango_mp import App, component, h, use_signal

KEYS = ["a", "b", "c", "d", "e"]


@component
def Patches():
    order = use_signal(list(KEYS))
    section = use_signal(False)
    shape = (h.section("a section", id="shape", class_="section") if section.get()
             else h.p("a paragraph", id="shape", class_="paragraph"))
    return h.div(
        h.button("reverse", id="reverse", on_click=lambda: order.set(order.peek()[::-1])),
        h.button("swap", id="swap", on_click=lambda: section.set(not section.peek())),
        h.ul(*[h.li(f"item {k}", key=k, id=f"item-{k}", class_="item") for k in order.get()], id="list"),
        h.div(h.span("before", id="before"), shape, h.span("after", id="after"), id="holder"),
        h.p(" ".join(order.get()), id="order"),
    )


app = App({"/": Patches})
