"""Session stores: where sealed sessions wait for a resume, on one machine or several.

- :mod:`.base` -- :class:`SessionStore`, what every store offers;
- :mod:`.sqlite` -- the embedded store (``state_dir``): one machine;
- :mod:`.redis` -- Redis (``store_url``): every machine of a cluster;
- :mod:`.wire` -- Redis key names and the signed messages between machines.

:func:`open_store` picks one from the settings: ``store_url`` wins; else
SQLite when ``state_dir`` is set; else none (sessions live in memory only).
"""

from __future__ import annotations

import logging
import sqlite3

from ..settings import Settings
from .base import OwnerRefused, SessionStore, StoreBusy

log = logging.getLogger("vango_mp.stores")

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def open_store(settings: Settings, secret: bytes) -> SessionStore | None:
    """The store the settings ask for (``secret``: the current persistence secret, for signed messages)."""
    if settings.store_url:
        from .redis import RedisStore  # the redis package is needed only here

        return RedisStore(settings.store_url, ttl=settings.resume_window, secret=secret,
                          timeout=settings.bus_timeout)
    if settings.state_dir:
        from .sqlite import SqliteStore

        try:
            return SqliteStore(settings.state_dir, ttl=settings.resume_window)
        except (OSError, sqlite3.Error) as err:
            log.error("session store in %s unavailable (%s): sessions live in memory only", settings.state_dir, err)
    return None


__all__ = ["OwnerRefused", "REDIS_SCHEMES", "SessionStore", "StoreBusy", "open_store"]
