"""Turning a session into a sealed blob and back (adoption, hand-over, cold tier, store).

The payload carries what the app state needs (signal values by stable hook
id, session KV, route, auth flag) and what the *client* needs to go on
without a FULL after a move: the seq, the last rendered tree with its
element ids (``vdom.snapshot``), the next id, and the tail of the patch
history. The new owner renders the page from the values and diffs it against
that tree (``Root.render_over``): elements keep the ids the client's DOM
has, and what renders differently here (``#worker``, a clock) becomes one
more PATCHES frame after the replayed ones. Only a client behind the carried
history gets a FULL, which it morphs in place.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

from ..persist import MAX_BLOB, BlobRejected, portable, seal, unseal
from ..protocol import encode_patches
from ..session import Session
from ..vdom.mount import Root
from ..vdom.snapshot import load_tree

HISTORY_BYTES = 256 * 1024  # patch frames carried in a blob, newest first, at most this much


class TooLarge(ValueError):
    """A session whose sealed form exceeds ``persist.MAX_BLOB``: it cannot move."""


class Mounter(Protocol):
    """Builds a session's page (``App.mount`` bound to this worker); rendered unless ``render`` is False."""

    def __call__(self, path: str, session: Session, values: dict[str, Any] | None, render: bool = True) -> Root: ...


class Sealer:
    """Seals sessions with the current secret and opens blobs sealed with the current or previous one."""

    def __init__(self, secrets: Sequence[bytes], *, schema: str, debug: bool, max_age: float,
                 mount: Mounter) -> None:
        self.secrets = list(secrets)
        self.schema = schema
        self.debug = debug
        self.max_age = max_age
        self.mount = mount

    def seal(self, session: Session) -> bytes:
        """The sealed blob of a live session (TooLarge, or persist.Unserializable in debug)."""
        if session.blob is not None and session.root is None:
            return session.blob  # cold: it already is its blob
        root = session.root
        tree, next_hid = root.snapshot()
        payload = {
            "id": session.id,
            "schema": self.schema,
            "ts": time.time(),
            "path": session.path,
            "ip": session.ip,
            "seq": session.seq,
            "age": time.monotonic() - session.created,
            "data": portable(session.data, debug=self.debug, what="session key"),
            "signals": portable(root.signal_values(), debug=self.debug, what="signal"),
            "authenticated": session.authenticated,
            "user_key": session.user_key,
            "browser": session.browser,
            "tree": portable({"tree": tree}, debug=False, what="rendered tree").get("tree"),
            "next_hid": next_hid,
            "history": session.history.tail(HISTORY_BYTES) if session.history is not None else [],
        }
        blob = seal(payload, self.secrets[0])
        if len(blob) > MAX_BLOB:
            raise TooLarge(f"sealed session is {len(blob)} bytes, over {MAX_BLOB}")
        return blob

    def open(self, session_id: str, blob: bytes) -> dict[str, Any]:
        """Verify a blob for ``session_id`` (BlobRejected otherwise) and return its payload."""
        return unseal(blob, self.secrets, session_id=session_id, schema=self.schema, max_age=self.max_age)

    def remount(self, session: Session, payload: dict[str, Any]) -> bool:
        """Rebuild ``session`` from an opened payload (LookupError: no route any more).

        True when the client's DOM as of the payload's seq is known (its tree
        came along): then the client is caught up with patches -- the replayed
        history, then what renders differently here -- instead of a FULL.
        """
        path = str(payload["path"])
        root = self.mount(path, session, payload.get("signals") or {}, render=False)
        session.path, session.root, session.blob = path, root, None
        session.seq = int(payload.get("seq", 0))
        session.data = dict(payload.get("data") or {})
        session.authenticated = bool(payload.get("authenticated"))
        session.user_key = payload.get("user_key")
        session.browser = str(payload.get("browser") or "")
        session.created = time.monotonic() - float(payload.get("age", 0))
        try:
            shown, next_hid = load_tree(payload.get("tree")), int(payload.get("next_hid", 0))
        except (ValueError, TypeError):
            root.render_initial()  # nothing to diff against: the client needs a FULL
            return False
        patches = root.render_over(shown, next_hid)
        session.load_history([(int(s), bytes(f)) for s, f in payload.get("history") or ()])
        if patches:
            session.seq += 1
            session.record_frame(session.seq, encode_patches(session.seq, patches))
        return True


__all__ = ["BlobRejected", "Mounter", "Sealer", "TooLarge"]
