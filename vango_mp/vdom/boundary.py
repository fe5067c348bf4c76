"""ErrorBoundary: a subtree whose render errors show a fallback instead of breaking the page.

As React's error boundaries: when a component inside raises while
rendering (first render, re-render, or a broken hook order that cannot be
recovered), the boundary renders ``fallback(error, reset)`` in place of its
children, which are unmounted; ``reset()`` (from a handler, e.g. a "Try
again" button) renders them afresh. An error in the fallback itself goes to
the next boundary up; with none, the page keeps its last good DOM and the
session reports the error (see docs/GUIDE.md, "Errors").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .component import ComponentInstance, component, current_instance
from .nodes import Node, h

__all__ = ["ErrorBoundary", "default_fallback"]

Fallback = Callable[[BaseException, Callable[[], None]], Any]


class BoundaryState:
    """What the root's resolver needs of a boundary: the error it shows (None: its children)."""

    __slots__ = ("error", "inst")

    def __init__(self, inst: ComponentInstance) -> None:
        self.error: BaseException | None = None
        self.inst = inst

    def reset(self) -> None:
        """Show the children again (rendered afresh) on the next render."""
        if self.error is None:
            return
        self.error = None
        self.inst._invalidate()


def default_fallback(error: BaseException, reset: Callable[[], None]) -> Node:
    """A short notice with a retry button; the error itself is for the log (and the --dev overlay)."""
    return h.div(h.p("Something went wrong here."), h.button("Try again", type="button", on_click=reset),
                 role="alert", class_="vango-error-boundary")


@component
def ErrorBoundary(children: Any = None, fallback: Fallback | None = None) -> Any:
    """Render ``children``; if one raises while rendering, ``fallback(error, reset)`` instead."""
    inst = current_instance()
    state = inst.boundary
    if state is None:
        state = inst.boundary = BoundaryState(inst)
    if state.error is not None:
        return (fallback or default_fallback)(state.error, state.reset)
    return children
