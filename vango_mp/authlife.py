"""Auth over a session's life: the user as state, revalidation, expiry, logout on every worker.

- :func:`use_user` reads the session's user in a component (the server-side
  render's user before the socket exists); it is reactive: a login,
  logout or expiry re-renders what read it.
- :class:`AuthLife` (one per worker) runs the app's
  :class:`~vango_mp.authcheck.AuthCheckConfig`: one timer checks each user
  with a live session here once per ``interval`` (one check per user, not
  per tab), and expires the sessions of a revoked user with the configured
  action (:mod:`vango_mp.authcheck`).
- :func:`broadcast_auth_logout` (the reference's BroadcastAuthLogout) ends
  the login of a user everywhere: on this worker at once, on the others
  through a :class:`Transport` -- the worker bus's broadcast today; a
  Redis pub/sub channel carries the same ``auth.logout`` message between
  machines (anything with ``broadcast(kind, body)`` that delivers ``body``
  to :meth:`AuthLife.on_logout` on every other worker). Attached sessions of
  that user expire (their page reloads, or goes where ``on_expired`` says);
  detached and cold ones are ended (they could never resume anyway: strict
  resume needs the login the user just gave up).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from . import metrics
from .authcheck import (
    AuthCheckConfig, AuthExpiredAction, AuthExpiredConfig, AuthExpiredReason, Outcome, Verdict, decide, due,
    outcome_of,
)
from .identity import identity
from .navigation import Pending
from .protocol import NAV_LOAD, Close
from .security import redact
from .session import Session
from .sessions.states import State
from .vdom import use_context

log = logging.getLogger("vango_mp.authlife")

LOGOUT = "auth.logout"  # the bus (or Redis) message: {"user": user_key, "reason": AuthExpiredReason value}
CHECK_THREADS = 4  # a worker's threads for synchronous checks (they run off the event loop)
_current: AuthLife | None = None


class Transport(Protocol):
    """How a logout reaches the other workers: the bus client, or a Redis publisher."""

    def broadcast(self, kind: str, body: Any = None) -> None: ...


class Owner(Protocol):
    """The session owner, as far as auth needs it."""

    def __iter__(self) -> Any: ...

    def entries(self) -> list[Session]: ...

    def end(self, session: Session, code: int, reason: str, metric: str) -> None: ...


@dataclass(slots=True)
class Freshness:
    """When a session's user was last checked, and last found valid (monotonic seconds)."""

    last_check: float
    last_ok: float


def use_user() -> Any:
    """The user of the page being rendered (None: a guest); re-renders the component when it changes.

    In a live session it is ``session.user``; in the server-side render,
    what the app's ``auth_func`` returned for the request.
    """
    session = use_context("session")
    if session is not None:
        return session.user
    return use_context("user")


class AuthLife:
    """One worker's side of auth freshness and logout (see the module doc)."""

    def __init__(self, owner: Owner, config: AuthCheckConfig | None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.owner, self.config, self.clock = owner, config, clock
        self.transport: Transport | None = None
        self._fresh: weakref.WeakKeyDictionary[Session, Freshness] = weakref.WeakKeyDictionary()
        self._checking: set[str] = set()  # user keys with a check in flight
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def install(self) -> AuthLife:
        """Make this the worker's instance (what :func:`broadcast_auth_logout` and friends use)."""
        global _current
        _current = self
        return self

    def handlers(self) -> dict[str, Callable[[Any, int], Any]]:
        """Bus handlers by kind."""
        return {LOGOUT: self.on_logout}

    @property
    def tick_interval(self) -> float:
        """How often :meth:`tick` should run: a quarter interval, between 50 ms and 1 s."""
        interval = self.config.interval if self.config is not None else 0.0
        return min(1.0, max(0.05, interval / 4)) if interval > 0 else 0.0

    # -- expiry -------------------------------------------------------------------

    def expired_config(self) -> AuthExpiredConfig:
        return self.config.on_expired if self.config is not None else AuthExpiredConfig()

    def expire(self, session: Session, reason: AuthExpiredReason) -> None:
        """Expire ``session``'s auth on its own loop: drop the user, then the configured action."""
        session.dispatch(lambda: self.expire_now(session, reason))

    def expire_now(self, session: Session, reason: AuthExpiredReason) -> None:
        """On the session loop: the user goes (reactive), then reload / navigate / the app's handler."""
        if not session.alive:
            return
        metrics.inc("vango_auth_expired_total", reason=reason.value)
        log.info("session %s: auth expired (%s)", redact(session.id), reason.value)
        cfg = self.expired_config()
        session.user = None
        if cfg.action is AuthExpiredAction.CUSTOM and cfg.handler is not None:
            cfg.handler(session)
            return
        location = session.root.context.get("location") if session.root is not None else None
        if location is not None:
            url = cfg.path if cfg.action is AuthExpiredAction.NAVIGATE_TO else location.resolved.url
            location.pending = Pending(url, NAV_LOAD)  # the next frame: a full load, through the HTTP pipeline

    # -- logout everywhere ---------------------------------------------------------

    def logout(self, user_key: str, reason: AuthExpiredReason = AuthExpiredReason.LOGOUT) -> int:
        """Log ``user_key`` out here and, through the transport, on every other worker; sessions hit here."""
        hit = self.apply_logout(user_key, reason)
        if self.transport is not None:
            try:
                self.transport.broadcast(LOGOUT, {"user": user_key, "reason": reason.value})
            except Exception:  # the bus is gone: this worker is going too; the others check on resume
                log.exception("could not broadcast a logout")
        return hit

    def on_logout(self, body: Any, peer: int) -> None:
        """A logout from another worker (bus handler)."""
        try:
            user_key, reason = str(body["user"]), AuthExpiredReason(body.get("reason", "logout"))
        except (TypeError, KeyError, ValueError):
            log.warning("malformed %s message from %s", LOGOUT, peer)
            return
        self.apply_logout(user_key, reason)

    def apply_logout(self, user_key: str, reason: AuthExpiredReason) -> int:
        """Expire this worker's attached sessions of ``user_key``; end its detached and cold ones."""
        hit = 0
        for session in self.owner.entries():
            if not session.authenticated or session.user_key != user_key:
                continue
            if session.state is State.ATTACHED:
                if session._user.peek() is None:
                    continue  # expired already
                try:
                    self.expire(session, reason)
                except Exception:  # one session's trouble must not spare the others
                    log.exception("session %s: could not expire its auth", redact(session.id))
            else:
                self.owner.end(session, Close.NOT_AUTHORIZED, "logged out", "logout")
            hit += 1
        return hit

    # -- revalidation --------------------------------------------------------------

    def tick(self) -> None:
        """Start the periodic checks that are due (one per user, however many tabs it has here)."""
        cfg = self.config
        if cfg is None or cfg.interval <= 0:
            return
        now = self.clock()
        due_users: dict[str, list[Session]] = {}
        for session in self.owner:
            key = session.user_key
            if key is None or session._user.peek() is None:
                continue
            fresh = self._fresh.get(session)
            if fresh is None:  # its auth_func ran when it was created
                fresh = self._fresh[session] = Freshness(session.created, session.created)
            if key not in self._checking and due(cfg, last_check=fresh.last_check, now=now):
                due_users.setdefault(key, []).append(session)
        for key, sessions in due_users.items():
            self._checking.add(key)
            asyncio.ensure_future(self._check(key, sessions, AuthExpiredReason.ACTIVE_REVALIDATE_FAILED))

    async def _check(self, key: str, sessions: list[Session], reason: AuthExpiredReason) -> Verdict:
        try:
            outcome = await self.run_check(sessions[0].user)
        finally:
            self._checking.discard(key)
        return self.settle(sessions, outcome, reason)

    def settle(self, sessions: list[Session], outcome: Outcome, reason: AuthExpiredReason) -> Verdict:
        """Apply one check's outcome to the sessions it was for; the last verdict."""
        assert self.config is not None
        now = self.clock()
        verdict = Verdict.KEEP
        for session in sessions:
            fresh = self._fresh.setdefault(session, Freshness(now, now))
            fresh.last_check = now
            verdict = decide(self.config, outcome, last_ok=fresh.last_ok, now=now)
            if verdict is Verdict.KEEP:
                fresh.last_ok = now
            elif verdict is Verdict.EXPIRE and session.alive and session._user.peek() is not None:
                self.expire(session, reason)
        return verdict

    async def run_check(self, user: Any) -> Outcome:
        """Run the app's check on ``user`` within its timeout, off the session loop (a thread if it is sync)."""
        assert self.config is not None and self.config.check is not None
        check, timeout = self.config.check, self.config.timeout
        try:
            if inspect.iscoroutinefunction(check):
                result = await asyncio.wait_for(check(user), timeout)
            else:
                if self._pool is None:
                    self._pool = concurrent.futures.ThreadPoolExecutor(CHECK_THREADS, "vango-auth-check")
                result = await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(self._pool, check, user),
                                                timeout)
                if inspect.isawaitable(result):
                    result = await asyncio.wait_for(result, timeout)
        except asyncio.TimeoutError:
            log.warning("auth check timed out after %gs", timeout)
            return Outcome.FAILED
        except Exception as err:
            outcome = outcome_of(error=err)
            if outcome is Outcome.FAILED:
                log.warning("auth check failed: %r", err)
            return outcome
        return outcome_of(result)

    async def revalidate(self, session: Session) -> bool:
        """Check ``session``'s user now; False (and expired) when the check says so."""
        if session.authenticated and session._user.peek() is None:
            self.expire(session, AuthExpiredReason.ON_DEMAND_REVALIDATE_FAILED)  # fail closed, as the reference
            return False
        if self.config is None or self.config.check is None or session.user_key is None:
            return True
        outcome = await self.run_check(session.user)
        return self.settle([session], outcome, AuthExpiredReason.ON_DEMAND_REVALIDATE_FAILED) is not Verdict.EXPIRE

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


# -- what apps call --------------------------------------------------------------------


def broadcast_auth_logout(user: Any, reason: AuthExpiredReason = AuthExpiredReason.LOGOUT) -> int:
    """Log ``user`` (a user object, or a :class:`Session` whose user it is) out of every live session.

    The reference's BroadcastAuthLogout and ``Session.BroadcastAuth``: there
    the page relays the message to the browser's other tabs; here the
    server itself reaches every session of that user, in any browser, on
    every worker. Call it from the logout route (after clearing the login
    cookie: a live session cannot clear an HttpOnly cookie) or from a
    handler. On this worker it acts at once; other workers (and machines,
    with a Redis transport) hear it within a bus round trip. ``reason`` is
    the metric label. Returns the number of sessions hit on this worker; 0
    outside a worker.
    """
    key = user.user_key if isinstance(user, Session) else identity(user)
    if _current is None or key is None:
        return 0
    return _current.logout(key, reason)


def broadcast_auth(session: Session, reason: AuthExpiredReason = AuthExpiredReason.LOGOUT) -> int:
    """``Session.BroadcastAuth``: expire the auth of every session of ``session``'s user, this one included."""
    return broadcast_auth_logout(session, reason)


async def revalidate_auth(session: Session) -> bool:
    """RevalidateAuth: run the app's check on ``session``'s user now; False (and expired) if it fails."""
    if _current is None:
        return True
    return await _current.revalidate(session)


__all__ = ["AuthLife", "Transport", "broadcast_auth", "broadcast_auth_logout", "revalidate_auth", "use_user"]
