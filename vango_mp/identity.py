"""Fingerprints of who a session belongs to: its user and its browser (kept with it, sealed)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any


def identity(user: Any) -> str | None:
    """A stable fingerprint of a user, kept with the session (sealed) to check who resumes it.

    The user's ``id`` (attribute or key) when it has one, else the user itself
    when it is a str or an int; anything else by its ``repr`` -- give such user
    objects an ``id``, or a resume elsewhere will not recognise them.
    """
    if user is None:
        return None
    key = getattr(user, "id", None)
    if key is None and isinstance(user, Mapping):
        key = user.get("id")
    if key is None:
        key = user if isinstance(user, (str, int)) else repr(user)
    return hashlib.blake2b(f"{type(key).__name__}:{key}".encode(), digest_size=16).hexdigest()


def browser_key(csrf_cookie: str | None) -> str:
    """The fingerprint of the browser a session belongs to: its HttpOnly CSRF cookie, hashed."""
    return hashlib.blake2b((csrf_cookie or "").encode(), digest_size=16).hexdigest()
