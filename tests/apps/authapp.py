"""Apps with auth hooks for the auth-rule tests; the user comes from a ``user`` cookie."""

from __future__ import annotations

from typing import Any

from vango_mp.router import App
from vango_mp.vdom import Node, component, h, use_context, use_signal


@component
def Whoami() -> Node:
    session = use_context("session")
    clicks = use_signal(0)
    user = session.user if session is not None else None
    return h.main(
        h.p(f"user={user}", id="user"),
        h.p(f"clicks={clicks.get()}", id="clicks"),
        h.button("+", id="inc", on_click=lambda: clicks.update(lambda n: n + 1)),
    )


def cookie_user(request: Any) -> str | None:
    return request.cookies.get("user") or None


def start_from_cookie(request: Any, session: Any) -> None:
    session.set_user(cookie_user(request))


def refuse_resume(request: Any, session: Any) -> None:
    raise PermissionError("no resumes today")


routes = {"/": Whoami}
# Strict (default) with auth_func: every resume revalidates from the cookie.
strict = App(routes, auth_func=cookie_user)
# Strict with only a start hook: an authenticated session can never resume.
start_only = App(routes, on_session_start=start_from_cookie)
# Strict, guests resume even when the resume hook raises.
guest_hook = App(routes, on_session_resume=refuse_resume)
# TrustSessionID acknowledged for production with a short window (ResumeWindow <= 30 s).
trust = App(routes, on_session_start=start_from_cookie, auth_resume_policy="trust_session_id",
            allow_trust_session_id_in_production=True)
# TrustSessionID without the acknowledgement: refused at startup.
trust_unacknowledged = App(routes, on_session_start=start_from_cookie, auth_resume_policy="trust_session_id")
