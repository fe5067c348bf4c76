"""A cheap estimate of the memory one session holds.

What a session costs is mostly its component tree (instances, owners,
reactions, resolved nodes), its signal values, its patch history and its
queues. The estimate adds a measured fixed cost per session and per resolved
node to the deep size of the signal values and session KV, the exact bytes
of the patch history and a fixed cost per queued item::

    SESSION_BYTES + NODE_BYTES * nodes + deep size(signals, KV)
        + history bytes + QUEUED_BYTES * queued

It is incremental: :class:`~vango_mp.session.Session` keeps its history bytes
exact on every frame and marks itself ``cost_stale`` when it renders;
:func:`refresh` re-estimates only stale sessions, so a memory check costs
nothing for sessions that sat still. Memory an app keeps outside signals and
KV (a memo's cache, a closure) is not seen: the pressure response checks
its estimates against RSS after every round (see :mod:`vango_mp.pressure`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from itertools import islice
from typing import Any

from .session import Session
from .vdom.nodes import count_nodes


# Fitted with tracemalloc on the demo app: /counter (25 nodes) holds 9.3 KiB,
# /todos with 20 and 200 items (124 and 1024 nodes) 46 and 356 KiB, history
# and signal values aside: ~2 KiB per session and ~320 bytes per resolved
# node (the node, its attrs, handler entries, its share of the component
# instance that made it).
SESSION_BYTES = 2 * 1024
NODE_BYTES = 320
CONNECTION_BYTES = 12 * 1024  # an attached session's socket, handler and stream buffers (bench/load.py)
QUEUED_BYTES = 300  # an Event or a callback waiting in a session queue
COLD_BYTES = 600  # a cold Session record besides its blob
VALUE_SAMPLE = 512  # objects a deep size looks at before extrapolating


def refresh(sessions: Iterable[Session]) -> int:
    """Re-estimate every stale session; how many were."""
    done = 0
    for session in sessions:
        if session.cost_stale and session.alive:
            session.cost = estimate(session)
            session.cost_stale = False
            done += 1
    return done


def estimate(session: Session) -> int:
    """Bytes ``session`` is estimated to hold now."""
    root = session.root
    location = root.context.get("location")  # kept-alive and prefetched pages count too
    aside = location.aside_nodes() if location is not None else 0
    total = SESSION_BYTES + NODE_BYTES * (count_nodes(root.nodes) + aside) + session.history_bytes
    total += QUEUED_BYTES * session.queued
    total += deep_size(root.signal_values()) + deep_size(session.data)
    return total


def entry_cost(entry: Session) -> int:
    """The estimate of a live session (with its socket, if attached), or the blob size of a cold one."""
    blob = entry.blob
    if blob is not None:
        return COLD_BYTES + len(blob)
    conn = entry.conn
    return entry.cost + (CONNECTION_BYTES + conn.pending_output() if conn is not None else 0)


def deep_size(value: Any) -> int:
    """``sys.getsizeof`` of ``value`` and what it contains, extrapolated past VALUE_SAMPLE objects.

    Shared objects are counted once per reference (small ints and interned
    strings overcount a little); that errs on the side of evicting.
    """
    total = seen = 0
    unseen = 0  # objects skipped by the sampling, sized at the average below
    stack = [value]
    while stack:
        obj = stack.pop()
        seen += 1
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(islice(obj.keys(), VALUE_SAMPLE))
            stack.extend(islice(obj.values(), VALUE_SAMPLE))
            unseen += 2 * max(0, len(obj) - VALUE_SAMPLE)
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(islice(obj, VALUE_SAMPLE))
            unseen += max(0, len(obj) - VALUE_SAMPLE)
        if seen >= VALUE_SAMPLE and stack:
            unseen += len(stack)
            break
    return total + (total // seen) * unseen
