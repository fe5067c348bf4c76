"""Authentication at handshake and resume: the reference's AuthResumePolicy.

- **strict** (default): a session that was ever authenticated never resumes
  on its id alone. Its auth projection is cleared, then ``auth_func`` or
  ``on_session_resume`` must re-establish a user from the new request; with
  neither configured, or no user after them, the resume is refused with
  "not authorized" (4003) — on this worker and on any other.
- **trust_session_id**: an authenticated session resumes on its id alone, but
  only in memory on the worker that holds it (an adopted or persisted session
  carries no user object, so it is always revalidated). Outside ``--dev`` it
  needs ``allow_trust_session_id_in_production`` and ResumeWindow ≤ 30 s.

A guest session whose ``on_session_resume`` raises resumes as a guest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from .security import redact

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


def on_start(app: App, request: HandshakeRequest, session: Session) -> None:
    """A new session: authenticate (guests allowed) and run the start hook."""
    if app.auth_func is not None:
        session.set_user(app.auth_func(request))
    if app.on_session_start is not None:
        app.on_session_start(request, session)


def on_resume(app: App, request: HandshakeRequest, session: Session, *, in_memory: bool) -> None:
    """Apply the resume policy; raise NotAuthorized to refuse."""
    if session.authenticated and app.auth_resume_policy == TRUST_SESSION_ID and in_memory:
        return
    if not session.authenticated:
        _guest_resume(app, request, session)
        return
    session.user = None  # the projection never survives a resume on its own
    if app.auth_func is None and app.on_session_resume is None:
        raise NotAuthorized("authenticated session needs auth_func or on_session_resume to resume")
    try:
        if app.auth_func is not None:
            session.set_user(app.auth_func(request))
        if app.on_session_resume is not None:
            app.on_session_resume(request, session)
    except Exception as err:
        raise NotAuthorized(f"resume hook refused: {err}") from None
    if session.user is None:
        raise NotAuthorized("authentication did not revalidate")


def _guest_resume(app: App, request: HandshakeRequest, session: Session) -> None:
    try:
        if app.auth_func is not None:
            session.set_user(app.auth_func(request))
        if app.on_session_resume is not None:
            app.on_session_resume(request, session)
    except Exception:
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
