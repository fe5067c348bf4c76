"""Worker side of the msgpack Unix-socket bus (the hub lives in the supervisor).

Each worker holds one stream connection to the hub, a Unix socket in the
supervisor's private runtime directory (mode 0700). Workers never talk to each
other directly: the hub routes requests, fans out broadcasts and sequences
global-signal writes.

Framing
-------
The stream is a sequence of msgpack objects, one per message: an array whose
first element is the message code, followed by the fields of the message
class in declaration order. A message whose packed size exceeds
``COMPRESS_THRESHOLD`` is sent as msgpack ``ExtType(LZ4_EXT, lz4 block)``
instead (the block stores its uncompressed size). Decoding uses a streaming
``msgpack.Unpacker`` whose buffer is bounded by ``max_frame``: a frame larger
than that, undecodable bytes, an unknown code or fields of the wrong type
raise :class:`BusProtocolError`, and the connection is dropped -- msgpack
documents that an ``Unpacker`` cannot be reused after any error other than
``OutOfData``.

Messages (W = worker, H = hub)
------------------------------
==== ============ ===== ====================================================
code name         dir   fields
==== ============ ===== ====================================================
1    Hello        W→H   slot, pid, generation -- first frame on a connection
2    Ready        W→H   (none) -- the worker serves; READY=1 waits for all
3    Heartbeat    W→H   stats: map (attached, detached, rss, pressure, ...)
4    Request      W↔H   rid, peer, kind, body -- W→H: peer is the target
                        (a slot, ``ANY`` or ``HUB``); H→W: the source slot
5    Response     W↔H   rid, ok, body -- ``ok=False``: body is an error text
6    Broadcast    W↔H   peer, kind, body -- to every other worker; H→W peer
                        is the source slot (``HUB`` for the hub itself)
7    GlobalWrite  W→H   wid, key, op, args, default
8    GlobalUpdate H→W   key, seq, value, origin (writer pid), wid
9    GlobalError  H→W   wid, key, error -- the op was rejected
10   Snapshot     H→W   values: {key: [seq, value]} -- right after Hello
11   Order        H→W   kind, body -- e.g. ``reopen_logs``
==== ============ ===== ====================================================

Request routing: to a slot, the hub forwards to the newest worker in that
slot (during a rolling reload two workers share one); to ``ANY`` it fans out
to every other worker and answers with the first ``ok`` response whose body
is not ``None`` (``None`` when all declined, left or there are none -- used
for session adoption: exactly one owner can say yes). A *hint* -- a map with
``"hint": true``, such as "it moved to slot 2" -- wins only once every other
worker has answered without a real answer, so a stale hint never beats the
owner's; to ``HUB`` the hub answers itself (``stats``: every worker's last
heartbeat stats; ``peers``).

Failure behaviour
-----------------
- *Timeout*: :meth:`BusClient.request` raises :class:`BusTimeout` after
  ``timeout`` seconds; a late response is dropped.
- *Slow peer*: the hub never blocks on a worker; output it cannot send is
  queued up to ``bus_max_backlog`` bytes, beyond which it drops that worker's
  connection (the worker then dies of EOF and is respawned).
- *EOF*: when the hub goes away (supervisor died or dropped us), pending
  requests fail with :class:`BusClosed` and ``on_lost`` runs once; its
  default stops the current Tornado IOLoop so the worker exits.
"""

from __future__ import annotations

from .client import BusClient, Handler, default_stats
from . import frames
from .frames import *  # noqa: F403 - the message classes, framing and constants are the bus's API
from .process import PR_SET_PDEATHSIG, reopen_log_files, set_parent_death_signal

__all__ = [
    *frames.__all__,
    "BusClient", "Handler", "default_stats", "reopen_log_files", "set_parent_death_signal", "PR_SET_PDEATHSIG",
]
