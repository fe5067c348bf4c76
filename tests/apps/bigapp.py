"""A page whose session holds a big, incompressible state: the hand-over tests' app.

``/`` (or ``/big/{kb}``): ``#fill`` puts ``kb`` KiB (default 256) of random
bytes (``os.urandom``: lz4 cannot shrink them, so a sealed session weighs
what its state weighs) into a ``use_signal``; ``#digest`` shows the first
16 hex digits of the state's SHA-256 (``empty`` before the fill) and
``#size`` its size (``Size: N KiB``), so a client can check, after any
move, that it came back byte for byte. ``#count`` shows ``Count: N``
(``#inc`` adds one): each click applied exactly once is what the tests
count. ``#worker`` is the serving worker.

``#ballast`` is not session state: each click adds BALLAST_MIB MiB of
touched memory to a module-level list of the worker process (a leak, the
kind of bloat recycling exists to cure), so a test can push one chosen
worker over ``--max-worker-rss`` at a moment of its choosing while its
sessions stay as they are; ``#ballast-mib`` shows the worker's total as
that click left it.

Serve it with ``vango-mp --app tests.apps.bigapp:app`` from the repository
root (``PYTHONPATH=.``).
"""

from __future__ import annotations

import hashlib
import os

from vango_mp import App, Node, component, h, use_context, use_memo, use_signal

DEFAULT_KB = 256
MAX_KB = 3 * 1024  # a sealed session must stay under persist.MAX_BLOB (4 MiB)
BALLAST_MIB = 8

_ballast: list[bytes] = []  # this worker's leak: survives no hand-over, dies with the process


def digest(state: bytes) -> str:
    """What ``#digest`` shows for ``state``."""
    return hashlib.sha256(state).hexdigest()[:16] if state else "empty"


def _kib(kb: str) -> int:
    return max(1, min(MAX_KB, int(kb))) if kb.isdigit() else DEFAULT_KB


def _leak() -> int:
    """Grow this worker's ballast by BALLAST_MIB MiB; its total in MiB."""
    _ballast.append(b"B" * (BALLAST_MIB * 1024 * 1024))  # b"B" * n writes every page: it counts at once
    return len(_ballast) * BALLAST_MIB


@component
def Big(kb: str = str(DEFAULT_KB)) -> Node:
    size = _kib(kb) * 1024
    count = use_signal(0)
    state = use_signal(b"")
    shown = use_memo(lambda: digest(state.get()))  # hashed once per fill, not per render
    leaked = use_signal(0)  # the worker's ballast as this session's last #ballast click saw it

    def fill() -> None:
        if not state.peek():
            state.set(os.urandom(size))

    return h.main(
        h.p(f"Count: {count.get()}", id="count"),
        h.button("+", id="inc", on_click=lambda: count.update(lambda n: n + 1)),
        h.button("fill", id="fill", on_click=fill),
        h.p(shown.get(), id="digest"),
        h.p(f"Size: {len(state.get()) // 1024} KiB", id="size"),
        h.button("ballast", id="ballast", on_click=lambda: leaked.set(_leak())),
        h.p(f"Ballast: {leaked.get()} MiB", id="ballast-mib"),
        h.p("Served by worker ", h.span(str(use_context("worker", 0)), id="worker")),
    )


app = App({"/": Big, "/big/{kb}": Big}, title="vango-mp big sessions")
