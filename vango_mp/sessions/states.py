"""A session's lifecycle states and the transitions between them.

::

                 attach            freeze
      (new) --> DETACHED <------- ATTACHED        DETACHED ---> COLD
                   |   ---------->   |                            |
                   |     detach      |                     thaw   |
                   |                 |            DETACHED <------+
                   v                 v
          HANDED_OVER or CLOSED (terminal; the reason is kept apart)

Every live state may end HANDED_OVER (another worker, the store or a
successor owns it now) or CLOSED (expired, evicted, refused, overflowed,
the worker stopped); ATTACHED -> ATTACHED is a newer socket taking over.
Only :meth:`vango_mp.sessions.SessionOwner.transition` moves a session.
"""

from __future__ import annotations

from ..session import State


TRANSITIONS: dict[State, frozenset[State]] = {
    State.DETACHED: frozenset({State.ATTACHED, State.COLD, State.HANDED_OVER, State.CLOSED}),
    State.ATTACHED: frozenset({State.ATTACHED, State.DETACHED, State.HANDED_OVER, State.CLOSED}),
    State.COLD: frozenset({State.DETACHED, State.HANDED_OVER, State.CLOSED}),
    State.HANDED_OVER: frozenset(),
    State.CLOSED: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A transition the table does not allow (raised in debug mode, logged otherwise)."""


def allowed(src: State, dst: State) -> bool:
    return dst in TRANSITIONS[src]
