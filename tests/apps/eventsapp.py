"""An app that records every event it receives, typed, for the event tests (browser and wire).

``GET /log`` answers the recorded events as JSON: ``[{"name", "type", "fields"}]``
(the typed event's fields; ``form`` as name -> every value). ``#n`` shows how
many events the page handled, so a test can wait for the server.
Other pages: ``/async`` (async handlers, resources, errors), ``/hooks`` (a
conditional hook), ``/broken`` (its first render raises; ``error_app`` has an
``error_page``), ``/storm`` (runaway effects and tasks).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from vango_mp import (
    App, ErrorBoundary, Event, component, h, on, use_effect, use_interval, use_resource, use_signal,
)
from vango_mp.errors import AppError
from vango_mp.vdom import Node
from vango_mp.vdom.component import use_held

LOG: list[dict[str, Any]] = []
ERRORS: list[dict[str, Any]] = []  # what on_error saw
CANCELLED: list[str] = []  # fetches and tasks that were cancelled
STARTED: list[str] = []  # fetches that started


def fields(event: Event) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(event):
        if f.name in ("payload", "hid", "cseq", "name"):
            continue
        value = getattr(event, f.name)
        if f.name == "form":
            value = {k: event.form.get_all(k) for k in event.form}
        elif isinstance(value, list):
            value = [dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for v in value]
        out[f.name] = value
    return out


@component
def Events() -> Node:
    n = use_signal(0)

    def record(event: Event) -> None:
        LOG.append({"name": event.name, "type": type(event).__name__, "fields": fields(event)})
        n.update(lambda k: k + 1)

    async def slow(event: Event) -> None:
        record(event)
        await asyncio.sleep(0.4)
        n.update(lambda k: k + 1)

    return h.main(
        h.p(str(n.get()), id="n"),
        h.div("click me", id="clicker", on_click=record, on_dblclick=record, on_mousedown=record,
              on_mouseup=record, on_contextmenu=on(record, prevent_default=True)),
        h.div("hover me", id="hover", on_mouseenter=record, on_mouseleave=record),
        h.div("move here", id="mover", on_mousemove=on(record, throttle=300), style="height:200px;width:300px"),
        h.input(id="keys", on_keydown=record, on_keyup=record),
        h.input(id="enter-only", on_keydown=on(record, keys=["Enter"])),
        h.input(id="deb", on_input=on(record, debounce=1500)),  # long: a loaded machine's typing stays one burst
        h.input(id="deb-long", on_input=on(record, debounce=60_000)),  # only a blur (or submit) sends it
        h.input(id="other"),
        h.input(id="focus", value="f", on_focus=record, on_blur=record),
        h.div(h.div("tall", style="height:600px"), id="scroller", style="height:60px;overflow:auto",
              on_scroll=record),
        h.div("resize", id="resizer", on_resize=record),
        h.div("touch", id="touch", on_touchstart=record, on_touchend=record),
        h.form(
            h.input(name="title", id="title"),
            h.select(h.option("A", value="a"), h.option("B", value="b"), h.option("C", value="c"),
                     name="tags", id="tags", multiple=True),
            h.label(h.input(type="checkbox", name="color", value="red", id="red"), "red"),
            h.label(h.input(type="checkbox", name="color", value="green", id="green"), "green"),
            h.label(h.input(type="checkbox", name="color", value="blue", id="blue"), "blue"),
            h.input(type="file", name="upload", id="upload", multiple=True),
            h.button("Send", type="submit", id="send"),
            id="form", on_change=record, on_submit=record,
        ),
        h.a("prevented link", href="/elsewhere", id="link", on_click=on(record, prevent_default=True)),
        h.button("Save", id="busy", type="button", on_click=on(slow, disable_with="Saving…")),
        h.button("Busy", id="busy2", type="button", on_click=on(slow, loading=True)),
        h.button("Stop", id="stopper", type="button", on_click=on(record, stop_propagation=True)),
    )


async def fetch_upper(text: str) -> str:
    STARTED.append(text)
    try:
        await asyncio.sleep(30 if text == "stale" else 0.1)  # "stale" ends only by being cancelled
    except asyncio.CancelledError:
        CANCELLED.append(text)
        raise
    if text == "bad":
        raise ValueError("no such thing")
    return text.upper()


@component
def Async() -> Node:
    q = use_signal("a")
    done = use_signal(0)
    ticks = use_signal(0)
    res = use_resource(fetch_upper, deps=q.get)
    use_interval(lambda: ticks.update(lambda k: k + 1), 0.05)
    greeting = use_signal("")

    async def greet() -> None:  # an async effect: once, after the first render
        await asyncio.sleep(0.05)
        greeting.set("effect ran")

    use_effect(greet)

    gate = use_held(asyncio.Event)  # the second step waits for #release: a test sees "done 1" for sure

    async def run() -> None:
        await asyncio.sleep(0.1)
        done.update(lambda k: k + 1)
        await gate.wait()
        gate.clear()
        done.update(lambda k: k + 1)

    async def fail() -> None:
        await asyncio.sleep(0.05)
        raise LookupError("async handler failed")

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            CANCELLED.append("forever")
            raise

    def boom() -> None:
        raise RuntimeError("sync handler failed")

    state = "loading" if res.loading else f"error {res.error}" if res.error is not None else f"value {res.value}"
    return h.main(
        h.input(id="q", value=q.get(), on_input=lambda e: q.set(str(e.value or ""))),
        h.p(state, id="res"),
        h.p(f"done {done.get()}", id="done"),
        h.p("ticking" if ticks.get() else "not yet", id="ticks"),
        h.p(greeting.get(), id="greeting"),
        h.button("run", id="run", on_click=run),
        h.button("release", id="release", on_click=gate.set),
        h.button("fail", id="fail", on_click=fail),
        h.button("forever", id="forever", on_click=forever),
        h.button("boom", id="boom", on_click=boom),
        h.button("inc", id="inc", on_click=lambda: done.update(lambda k: k + 1)),
    )


@component
def Hooks() -> Node:
    flag = use_signal(False)
    if flag.get():
        use_signal("conditional")  # broken on purpose: a hook only on some renders
    count = use_signal(0)
    return h.main(
        h.p(f"count {count.get()}", id="count"),
        h.button("inc", id="inc", on_click=lambda: count.update(lambda k: k + 1)),
        h.button("flip", id="flip", on_click=lambda: flag.set(not flag.peek())),
    )


@component
def Bomb(armed: bool) -> Node:
    if armed:
        raise ValueError("bomb went off")
    return h.p("calm", id="calm")


@component
def Boundaries() -> Node:
    armed = use_signal(False)
    outside = use_signal(False)
    pokes = use_signal(0)
    return h.main(
        h.p(f"pokes {pokes.get()}", id="pokes"),
        ErrorBoundary(Bomb(armed=armed.get()),
                      fallback=lambda err, reset: h.button(f"fallback: {err}", id="fallback",
                                                           on_click=lambda: (armed.set(False), reset()))),
        Bomb(armed=outside.get()) if outside.get() else h.p("outside fine", id="outside"),
        h.button("arm", id="arm", on_click=lambda: armed.set(True)),
        h.button("arm outside", id="arm-outside", on_click=lambda: outside.set(True)),
        h.button("disarm outside", id="disarm-outside", on_click=lambda: outside.set(False)),
        h.button("poke", id="poke", on_click=lambda: pokes.update(lambda k: k + 1)),
    )


@component
def Broken() -> Node:
    raise KeyError("broken on first render")


@component
def LiveFails() -> Node:
    from vango_mp import use_context

    if use_context("session") is not None:  # the server render works, the live one does not
        raise ValueError("only the live render fails")
    return h.p("server render", id="ssr")


@component
def Storm() -> Node:
    a = use_signal(0)
    looping = use_signal(False)
    spawns = use_signal(0)

    def loop() -> None:
        # it reads what it writes: every write runs it again, a runaway loop
        if looping.get():
            a.set(a.get() + 1)

    use_effect(loop)

    async def noop() -> None:
        await asyncio.sleep(0)

    def spawn_many(event: Event) -> None:
        session = event_session[0]
        for _ in range(500):
            session.spawn(noop(), "test task")
            spawns.update(lambda k: k + 1)

    return h.main(
        h.p(f"a {a.get()}", id="a"),
        h.p(f"spawns {spawns.get()}", id="spawns"),
        h.button("loop", id="loop", on_click=lambda: looping.set(True)),
        h.button("spawn", id="spawn", on_click=spawn_many),
        SessionGrab(),
    )


event_session: list[Any] = [None]


@component
def SessionGrab() -> Node:
    from vango_mp import use_context

    event_session[0] = use_context("session")
    return h.span()


def on_error(err: AppError) -> None:
    ERRORS.append({"kind": err.kind, "error": repr(err.error), "event": err.event, "path": err.path,
                   "hid": err.hid, "stack": err.stack})


@component
def ErrorPage(error: BaseException) -> Node:
    return h.main(h.h1("Our own error page", id="own-error"), h.p(type(error).__name__))


PAGES = {"/": Events, "/async": Async, "/hooks": Hooks, "/boundaries": Boundaries, "/broken": Broken,
         "/storm": Storm, "/live-fails": LiveFails}
app = App(PAGES, on_error=on_error)
error_app = App(PAGES, on_error=on_error, error_page=ErrorPage)

for _app in (app, error_app):
    @_app.route("/log")
    def log(request: Any) -> dict[str, Any]:
        return {"events": LOG, "errors": ERRORS, "cancelled": CANCELLED, "started": STARTED}
