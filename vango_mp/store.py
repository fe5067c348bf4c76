"""The embedded SQLite session store, now :mod:`vango_mp.stores.sqlite` (names kept for existing imports)."""

from .stores.sqlite import FILENAME, OPEN_RETRY_SECONDS, SqliteStore, open_store, prepare, time  # noqa: F401
from .stores.sqlite import SqliteStore as SessionStore  # noqa: F401
