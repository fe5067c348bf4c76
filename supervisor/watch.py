"""``--reload``: notice when the app's source files change.

The supervisor's loop is synchronous and starts no threads (see
:mod:`supervisor.arbiter`), so this is a poll it calls on each loop turn:
at most every ``interval`` seconds it stats the ``.py`` files under the app's
directory and reports what changed since the last look. A few hundred stats
cost well under a millisecond; an inotify library would need a thread or a
second process to fit the selector loop and would buy nothing at this size.

Which files: the directory that holds the app's top-level module or package
(as ``uvicorn --reload`` watches its app directory), found with
:func:`importlib.util.find_spec` on the top-level name only, which locates
the file without running it: in reload mode the supervisor must not import
the app (every worker imports it fresh). Hidden directories,
``__pycache__``, virtual environments and ``site-packages`` are skipped, and
at most ``MAX_FILES`` files are watched (a warning names the cut).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from collections.abc import Callable

log = logging.getLogger("vango_mp.supervisor")

POLL_INTERVAL = 0.2  # seconds between two looks: an edit is seen within this
MAX_FILES = 5000  # a bound on the work of one look (an app dir holding a whole tree)
SKIP_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", "venv", "env"})


def watch_root(app_spec: str, cwd: str | None = None) -> str:
    """The directory to watch for ``module:attr``: where its top-level module or package lives.

    Falls back to ``cwd`` (the current directory) when the module cannot be
    located without importing it.
    """
    top = app_spec.partition(":")[0].split(".")[0]
    here = cwd or os.getcwd()
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        spec = None
    origin = spec.origin if spec is not None else None
    if not origin or not os.path.isabs(origin):  # built-in, frozen, namespace package
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        return locations[0] if locations else here
    folder = os.path.dirname(origin)
    # A package: its parent, so a sibling module the app imports is watched too.
    return os.path.dirname(folder) if os.path.basename(origin) == "__init__.py" else folder


def source_files(root: str, limit: int = MAX_FILES) -> dict[str, float]:
    """``.py`` file -> mtime under ``root`` (skipping hidden, cache and environment dirs), at most ``limit``."""
    found: dict[str, float] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS
                         and not os.path.exists(os.path.join(folder, d, "pyvenv.cfg")))
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            if len(found) >= limit:
                log.warning("--reload watches only the first %d files under %s", limit, root)
                return found
            path = os.path.join(folder, name)
            try:
                found[path] = os.stat(path).st_mtime
            except OSError:  # removed between the listing and the stat
                continue
    return found


class SourceWatch:
    """Poll the source files under one directory; :meth:`changed` lists what was edited, added or removed."""

    def __init__(self, root: str, *, interval: float = POLL_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.root = root
        self.interval = interval
        self.clock = clock
        self.files = source_files(root)
        self.next_at = clock() + interval
        log.info("--reload: watching %d files under %s", len(self.files), root)

    def due_in(self) -> float:
        """Seconds until the next look (the loop's wait is at most this)."""
        return max(0.0, self.next_at - self.clock())

    def changed(self) -> list[str]:
        """Files that changed since the last look (empty when none did, or it is not time yet)."""
        if self.clock() < self.next_at:
            return []
        self.next_at = self.clock() + self.interval
        now = source_files(self.root)
        old, self.files = self.files, now
        return sorted(p for p in now.keys() | old.keys() if now.get(p) != old.get(p))
