"""Authentication at handshake and resume: the reference's AuthResumePolicy, and who owns a session.

Threat model: a session id can leak (a log, a screenshot, a shared link).
It is never enough on its own: every session is bound to the browser that
opened it (a hash of its HttpOnly CSRF cookie, which scripts and other
sites cannot read) and, once authenticated, to its user's identity
(:func:`vango_mp.identity.identity`); both are sealed with the session and
checked by :func:`vet` on every resume, by the owner *before* it gives the
session up, so a refused resume changes nothing for the owner. Out of
scope: an attacker who holds the victim's cookies (the browser itself is
compromised).

- **strict** (default): a session that was ever authenticated never resumes
  on its id alone. ``auth_func`` (run once per handshake) or
  ``on_session_resume`` must establish the *same* user from the new request;
  with neither configured, or no user or another user after them, the
  resume is refused with "not authorized" (4003) — on this worker and on any
  other — and the session is left as it was.
- **trust_session_id**: an authenticated session resumes on its id alone, but
  only in memory on the worker that holds it (an adopted or persisted session
  carries no user object, so it is always revalidated). Outside ``--dev`` it
  needs ``allow_trust_session_id_in_production`` and ResumeWindow ≤ 30 s.

A guest session whose ``on_session_resume`` raises resumes as a guest.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .security import redact

from .identity import browser_key, identity
from .router import App
from .session import Session
from .settings import Settings

log = logging.getLogger("vango_mp.auth")

STRICT = "strict"
TRUST_SESSION_ID = "trust_session_id"
POLICIES = (STRICT, TRUST_SESSION_ID)
TRUST_MAX_RESUME_WINDOW = 30.0


class NotAuthorized(Exception):
    """The handshake or resume must be refused with 4003."""


class AuthConfigError(ValueError):
    """An app/settings combination the reference forbids."""


@dataclass(frozen=True, slots=True)
class HandshakeRequest:
    """What auth hooks see of the WebSocket upgrade request."""

    path: str
    remote_ip: str
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)


def check_config(app: App, settings: Settings) -> None:
    """Raise AuthConfigError for a policy the reference rejects."""
    policy = app.auth_resume_policy
    if policy not in POLICIES:
        raise AuthConfigError(f"auth_resume_policy must be one of {', '.join(POLICIES)}, not {policy!r}")
    if policy != TRUST_SESSION_ID or settings.dev:
        return
    if not app.allow_trust_session_id_in_production:
        raise AuthConfigError(
            "auth_resume_policy='trust_session_id' outside --dev needs allow_trust_session_id_in_production=True"
        )
    if settings.resume_window > TRUST_MAX_RESUME_WINDOW:
        raise AuthConfigError(
            f"auth_resume_policy='trust_session_id' needs resume_window <= {TRUST_MAX_RESUME_WINDOW:g}s"
        )


@dataclass(frozen=True, slots=True)
class Binding:
    """Who a session belongs to: kept with it, sealed in its blob, checked on every resume."""

    browser: str
    user_key: str | None = None
    authenticated: bool = False

    @classmethod
    def of(cls, session: Session) -> Binding:
        return cls(session.browser, session.user_key, session.authenticated)

    def wire(self) -> list[Any]:
        return [self.browser, self.user_key, self.authenticated]

    @classmethod
    def from_wire(cls, data: Any) -> Binding:
        browser, user_key, authenticated = data
        return cls(str(browser), None if user_key is None else str(user_key), bool(authenticated))

    @classmethod
    def of_payload(cls, payload: Mapping[str, Any]) -> Binding:
        """The binding sealed in a blob's payload."""
        key = payload.get("user_key")
        return cls(str(payload.get("browser") or ""), None if key is None else str(key),
                   bool(payload.get("authenticated")))


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the socket that wants a session presents: its browser, and the user ``auth_func`` finds."""

    browser: str
    user: Any = None
    user_key: str | None = None
    checked: bool = False  # auth_func ran (its user, or None, is an answer)
    token: str = field(default="", repr=False)  # the CSRF token itself: for the session's forms, never sent on

    def wire(self) -> list[Any]:
        """What an owner needs to vet an adoption (never the user object itself)."""
        return [self.browser, self.user_key, self.checked]

    @classmethod
    def from_wire(cls, data: Any) -> Credentials:
        browser, user_key, checked = data
        return cls(str(browser), None, None if user_key is None else str(user_key), bool(checked))


def credentials(app: App, request: HandshakeRequest, csrf_cookie: str | None) -> Credentials:
    """Authenticate a handshake once, before any session is touched (NotAuthorized if auth_func raises)."""
    browser, token = browser_key(csrf_cookie), csrf_cookie or ""
    if app.auth_func is None:
        return Credentials(browser, token=token)
    try:
        user = app.auth_func(request)
    except Exception as err:
        raise NotAuthorized(f"auth_func raised: {err}") from None
    return Credentials(browser, user, identity(user), checked=True, token=token)


def vet(app: App, binding: Binding, creds: Credentials, *, in_memory: bool) -> None:
    """May ``creds`` resume a session bound as ``binding``? NotAuthorized if not; touches nothing.

    The same browser always (an id alone is not enough); for an
    authenticated session also the same user, revalidated now -- unless the
    app trusts the id and the session is live on this worker.
    """
    if binding.browser != creds.browser:
        raise NotAuthorized("session belongs to another browser")
    if not binding.authenticated:
        return
    if app.auth_resume_policy == TRUST_SESSION_ID and in_memory:
        return
    if app.auth_func is None and app.on_session_resume is None:
        raise NotAuthorized("authenticated session needs auth_func or on_session_resume to resume")
    if creds.checked and creds.user_key is None:
        raise NotAuthorized("authentication did not revalidate")
    if creds.checked and creds.user_key != binding.user_key:
        raise NotAuthorized("another user")


def on_start(app: App, request: HandshakeRequest, session: Session, creds: Credentials) -> None:
    """A new session: bind it to this browser, set its user (guests allowed), run the start hook."""
    session.browser = creds.browser
    if creds.checked:
        session.set_user(creds.user)
    if app.on_session_start is not None:
        app.on_session_start(request, session)


def on_resume(app: App, request: HandshakeRequest, session: Session, creds: Credentials, *, in_memory: bool) -> None:
    """Resume a session ``vet`` accepted: refresh its user, run the resume hook (NotAuthorized to refuse).

    A refusal here leaves the session as it was (user and all): a resume
    that fails never logs the owner's page out.
    """
    vet(app, Binding.of(session), creds, in_memory=in_memory)
    if session.authenticated and app.auth_resume_policy == TRUST_SESSION_ID and in_memory:
        return
    before = (session.user, session.user_key, session.authenticated)
    try:
        if before[2]:
            session.user = None  # strict: the new request must establish the user again
        if creds.checked:
            session.set_user(creds.user)
        if app.on_session_resume is not None:
            app.on_session_resume(request, session)
        if before[2] and (session.user is None or session.user_key != before[1]):
            raise NotAuthorized("authentication did not revalidate the same user")
    except NotAuthorized:
        session.user, session.user_key, session.authenticated = before
        raise
    except Exception as err:
        session.user, session.user_key, session.authenticated = before
        if before[2]:
            raise NotAuthorized(f"resume hook refused: {err}") from None
        log.exception("on_session_resume failed for guest session %s; resuming as guest", redact(session.id))


def as_request(handler: Any, path: str, ip: str) -> HandshakeRequest:
    """Build the hook view of a Tornado handler's request."""
    req = handler.request
    return HandshakeRequest(
        path=path,
        remote_ip=ip,
        headers={k: v for k, v in req.headers.get_all()},
        cookies={name: morsel.value for name, morsel in req.cookies.items()},
    )
