"""The app the memory-pressure soak drives (bench/soak.py, tests/soak).

``/soak/{kb}``: a counter whose session also holds a ``kb`` KiB payload, so
a few hundred sessions fill a small memory budget. ``#count`` shows
``Count: N`` (``#inc`` adds one), ``#size`` shows ``Size: N KiB`` (``#grow``
adds another ``kb`` KiB), ``#worker`` the serving worker.

The payload is a signal, so it is session state like the count: it moves
with the session between workers, is restored exactly on resume, and the
per-session memory estimate sees it. It is one repeated byte, so a sealed
blob (lz4) carries it in a few hundred bytes while the live session holds
every byte in RSS.

Serve it with ``vango-mp --app bench.soak_app:app`` from the repository
root (``PYTHONPATH=.``).
"""

from __future__ import annotations

from vango_mp import App, Node, component, h, use_context, use_signal

MAX_KB = 16 * 1024


def _kib(kb: str) -> int:
    return max(1, min(MAX_KB, int(kb))) if kb.isdigit() else 1


@component
def Soak(kb: str = "256") -> Node:
    step = _kib(kb) * 1024
    count = use_signal(0)
    payload = use_signal(b"v" * step)  # b"v" * n writes every page: it counts in RSS at once

    return h.main(
        h.p(f"Count: {count.get()}", id="count"),
        h.button("+", id="inc", on_click=lambda: count.update(lambda n: n + 1)),
        h.p(f"Size: {len(payload.get()) // 1024} KiB", id="size"),
        h.button("grow", id="grow", on_click=lambda: payload.set(payload.peek() + b"v" * step)),
        h.p("Served by worker ", h.span(str(use_context("worker", 0)), id="worker")),
    )


app = App({"/soak/{kb}": Soak}, title="vango-mp soak")
