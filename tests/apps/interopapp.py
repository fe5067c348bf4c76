"""JS interop in Chromium: emit, a client hook both ways, client commands, an island and its validator."""

from typing import Any

from vango_mp import App, asset, component, h, use_signal
from vango_mp.interop import HookEvent, emit, js, run_js, use_island


def island_validator(island_id: str, payload: Any) -> None:
    """Inbound {"n": 0..100}; outbound {"text": short str}: anything else is refused."""
    if isinstance(payload, dict) and set(payload) == {"n"} and type(payload["n"]) is int and 0 <= payload["n"] <= 100:
        return
    if isinstance(payload, dict) and set(payload) == {"text"} and isinstance(payload["text"], str) \
            and len(payload["text"]) <= 40:
        return
    raise ValueError("unexpected island payload")


@component
def Island():
    got = use_signal("none")
    handled = use_signal(0)  # messages that reached the handler
    out = use_signal("")

    def on_message(payload: Any) -> None:
        handled.update(lambda v: v + 1)
        got.set(f"got {payload['n']} #{handled.peek()}")
        send({"text": f"echo {payload['n']}"})

    send = use_island("isl", on_message)

    def bad_out() -> None:
        try:
            send({"evil": "<img src=x onerror=alert(1)>"})
            out.set("sent")
        except ValueError:
            out.set("refused")

    return h.div(
        h.probe_island(id="isl", data_island="isl"),
        h.p(got.get(), id="isl-got"),
        h.button("bad", id="isl-bad-out", on_click=bad_out),
        h.p(out.get(), id="isl-out"),
    )


@component
def Home():
    n = use_signal(0)
    shown = use_signal(True)
    heard = use_signal("")

    def on_hook(e: HookEvent) -> None:
        heard.set(f"{e.name} {e.get_int('n')}")
        if e.name == "risky":
            e.revert()

    def bump() -> None:
        n.update(lambda v: v + 1)
        emit("bump", {"n": n.peek()})

    return h.main(
        h.script(src=asset("interop.js")),
        h.p(id="toast-text"),
        h.button("toast", id="emit-btn", on_click=lambda: emit("toast", {"text": "Saved!"})),
        h.div(f"value {n.get()}", id="hooked", data_hook="Probe", on_hook=on_hook) if shown.get() else None,
        h.p(heard.get(), id="heard"),
        h.button("bump", id="bump", on_click=bump),
        h.button("toggle", id="toggle-hook", on_click=lambda: shown.update(lambda v: not v)),
        h.input(id="field", value="hello world"),
        h.div("box", id="box"),
        h.button("cmd", id="cmd-btn", on_click=lambda: run_js(js.select("#field").add_class("#box", "lit"))),
        h.button("local", id="local-btn", data_js_click=js.toggle_class("#box", "local").hide("#toast-text")),
        h.button("copy", id="copy-btn", data_js_click=js.copy("#field")),
        h.button("blur", id="blur-btn", on_click=lambda: run_js(js.blur("#field").show("#toast-text"))),
        Island(),
        h.button("scroll", id="scroll-btn", data_js_click=js.scroll_into_view("#far")),
        h.div(style="height: 3000px"),
        h.p("far away", id="far"),
    )


app = App({"/": Home}, static_dir="interop_static", island_validator=island_validator)
