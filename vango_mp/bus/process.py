"""Process helpers for bus peers: parent-death signal, log reopening."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import signal

PR_SET_PDEATHSIG = 1


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies.

    Call it in the forked child, then compare ``os.getppid()`` with the
    expected parent: if the parent died before the prctl, it will never fire.
    Caveat: the signal fires when the parent *thread* that forked us exits;
    the supervisor starts no threads. Returns False where prctl is missing.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):  # not Linux
        return False


def reopen_log_files() -> None:
    """Reopen every logging.FileHandler (after logrotate moved the file, on SIGUSR1)."""
    for handler in list(logging.getLogger().handlers):
        if isinstance(handler, logging.FileHandler):
            handler.acquire()
            try:
                handler.close()
                handler.stream = handler._open()
            finally:
                handler.release()
