"""Exit codes, the exceptions that stop the supervisor, and how a worker's exit is described."""

from __future__ import annotations

import signal

# Supervisor exit statuses.
EXIT_OK = 0  # stopped by TERM/INT/QUIT
EXIT_CRASH_LIMIT = 1  # a slot crashed more than crash_intensity times in crash_period
EXIT_CONFIG = 2  # invalid config or app: nothing was forked
EXIT_STARTUP = 3  # could not bind the listener or create the bus
EXIT_INTERNAL = 4  # a bug in the supervisor's loop: the workers were stopped gracefully first

# Worker (child) exit statuses.
WORKER_EXIT_OK = 0
WORKER_EXIT_ERROR = 70  # serve() raised (EX_SOFTWARE)
WORKER_EXIT_ORPHAN = 71  # the supervisor died before the parent-death signal was armed


class HaltServer(Exception):
    """Stop the supervisor now: stop every worker, then exit with ``exit_status``."""

    def __init__(self, reason: str, exit_status: int = EXIT_CRASH_LIMIT) -> None:
        super().__init__(reason)
        self.reason = reason
        self.exit_status = exit_status


class StopServer(Exception):
    """Every worker has stopped after TERM/INT/QUIT: exit cleanly."""


def describe_exit(code: int) -> str:
    """A child's exit as the log says it: ``exit status N`` or ``killed by SIGNAME``."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"
