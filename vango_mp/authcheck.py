"""Auth freshness: the reference's AuthCheckConfig, AuthFailureMode and AuthExpired* as plain values.

A session that logged in stays valid only while the app says so. With
``App(auth_check=AuthCheckConfig(interval=60, check=fn))`` every worker
asks ``check(user)`` about each user with a live session, once per
``interval`` (and on demand, :func:`vango_mp.authlife.revalidate_auth`).
The answer, through :func:`decide`:

- ``check`` returns True or None: fresh (the session's last good check is now);
- ``check`` returns False or raises :class:`AuthRevoked` (or
  ``PermissionError``): **revoked**, the session expires whatever the mode;
- ``check`` raises anything else or runs past ``timeout``: a *transient*
  failure. ``FAIL_CLOSED`` expires the session; ``FAIL_OPEN_WITH_GRACE``
  (default) keeps it until ``max_stale`` has passed since its last good check.

An expired session loses its user (components reading it re-render as a
guest) and then does ``on_expired.action``: ``FORCE_RELOAD`` (the browser
reloads the page, which goes through the HTTP pipeline and its guards
again), ``NAVIGATE_TO`` a path (a full load), or ``CUSTOM`` (the app's
``handler(session)`` runs on the session loop).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .routes import is_relative_url

DEFAULT_TIMEOUT = 5.0  # seconds a check may take (reference default)
DEFAULT_MAX_STALE = 15 * 60.0  # seconds without a good check a fail-open session survives (reference default)

Check = Callable[[Any], "bool | None | Awaitable[bool | None]"]


class AuthRevoked(Exception):
    """Raised by a check: this user's login is no longer valid (never a transient failure)."""


class AuthFailureMode(enum.Enum):
    """What a transient check failure (an exception, a timeout) does."""

    FAIL_OPEN_WITH_GRACE = "fail_open_with_grace"  # keep the session, up to max_stale without a good check
    FAIL_CLOSED = "fail_closed"  # expire the session on any failure


class AuthExpiredAction(enum.Enum):
    """What an expired session does in the browser."""

    FORCE_RELOAD = "force_reload"  # reload: the page goes through the HTTP pipeline (guards, auth_func) again
    NAVIGATE_TO = "navigate_to"  # a full load of ``AuthExpiredConfig.path``
    CUSTOM = "custom"  # ``AuthExpiredConfig.handler(session)`` on the session loop


class AuthExpiredReason(enum.Enum):
    """Why a session's auth expired (the metric label ``vango_auth_expired_total{reason}``)."""

    UNKNOWN = "unknown"
    PASSIVE_EXPIRY = "passive_expiry"
    RESUME_REHYDRATE_FAILED = "resume_rehydrate_failed"
    ACTIVE_REVALIDATE_FAILED = "active_revalidate_failed"
    ON_DEMAND_REVALIDATE_FAILED = "on_demand_revalidate_failed"
    NO_REVALIDATION_HOOKS = "no_revalidation_hooks"
    RESUME_IDENTITY_MISMATCH = "resume_identity_mismatch"
    LOGOUT = "logout"  # ours: broadcast_auth_logout() from another tab, worker or machine


@dataclass(frozen=True, slots=True)
class AuthExpiredConfig:
    """The reference's AuthExpiredConfig: ``action``, its ``path`` (NAVIGATE_TO) or ``handler`` (CUSTOM)."""

    action: AuthExpiredAction = AuthExpiredAction.FORCE_RELOAD
    path: str = ""
    reason: AuthExpiredReason = AuthExpiredReason.UNKNOWN
    handler: Callable[[Any], None] | None = None

    def __post_init__(self) -> None:
        if self.action is AuthExpiredAction.NAVIGATE_TO and not is_relative_url(self.path):
            raise ValueError(f"AuthExpiredConfig(NAVIGATE_TO) needs a path on this site like '/login', not {self.path!r}")
        if self.action is AuthExpiredAction.CUSTOM and self.handler is None:
            raise ValueError("AuthExpiredConfig(CUSTOM) needs a handler(session)")


@dataclass(frozen=True, slots=True)
class AuthCheckConfig:
    """The reference's AuthCheckConfig (seconds instead of durations).

    ``interval`` 0 disables the periodic checks (on-demand ones still run);
    ``timeout`` and ``max_stale`` of 0 or less take the reference defaults
    (5 s, 15 min), as NormalizeAuthCheckConfig does.
    """

    interval: float = 0.0
    check: Check | None = None
    timeout: float = DEFAULT_TIMEOUT
    failure_mode: AuthFailureMode = AuthFailureMode.FAIL_OPEN_WITH_GRACE
    max_stale: float = DEFAULT_MAX_STALE
    on_expired: AuthExpiredConfig = field(default_factory=AuthExpiredConfig)

    def __post_init__(self) -> None:
        if self.interval < 0:
            raise ValueError(f"AuthCheckConfig.interval must be >= 0, not {self.interval}")
        if self.interval > 0 and self.check is None:
            raise ValueError("AuthCheckConfig(interval=...) needs check=fn(user)")
        if self.timeout <= 0:
            object.__setattr__(self, "timeout", DEFAULT_TIMEOUT)
        if self.max_stale <= 0:
            object.__setattr__(self, "max_stale", DEFAULT_MAX_STALE)


class Outcome(enum.Enum):
    """What one check said."""

    FRESH = "fresh"
    REVOKED = "revoked"
    FAILED = "failed"  # transient: it raised, or timed out


class Verdict(enum.Enum):
    """What a session does after a check."""

    KEEP = "keep"  # fresh: its last good check is now
    GRACE = "grace"  # a transient failure, tolerated (fail-open, within max_stale)
    EXPIRE = "expire"


def outcome_of(result: Any = None, error: BaseException | None = None) -> Outcome:
    """Classify a check's return value or exception (see the module doc)."""
    if error is not None:
        return Outcome.REVOKED if isinstance(error, (AuthRevoked, PermissionError)) else Outcome.FAILED
    return Outcome.REVOKED if result is False else Outcome.FRESH


def decide(config: AuthCheckConfig, outcome: Outcome, *, last_ok: float, now: float) -> Verdict:
    """The verdict of ``outcome`` for a session whose last good check was at ``last_ok``."""
    if outcome is Outcome.FRESH:
        return Verdict.KEEP
    if outcome is Outcome.REVOKED or config.failure_mode is AuthFailureMode.FAIL_CLOSED:
        return Verdict.EXPIRE
    return Verdict.GRACE if now - last_ok < config.max_stale else Verdict.EXPIRE


def due(config: AuthCheckConfig, *, last_check: float, now: float) -> bool:
    """Whether a periodic check is due for a session last checked at ``last_check``."""
    return config.interval > 0 and now - last_check >= config.interval


__all__ = [
    "AuthCheckConfig", "AuthExpiredAction", "AuthExpiredConfig", "AuthExpiredReason", "AuthFailureMode",
    "AuthRevoked", "Outcome", "Verdict", "decide", "due", "outcome_of",
]
