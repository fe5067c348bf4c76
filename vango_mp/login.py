"""Login cookies: a signed user id an app route sets after checking a password, and clears on logout.

The pattern (docs/GUIDE.md, "Log in and log out")::

    @app.route("/login", methods=["POST"])          # CSRF-checked: the form carries csrf_input()
    def do_login(request):
        user = check_password(request.form.get("username"), request.form.get("password"))
        if user is None:
            return redirect("/login?error=1")
        return login_response(user.id, "/profile")  # Set-Cookie + 303

    def auth_func(request):                        # App(auth_func=...): every page render and handshake
        return USERS.get(read_login(request))

The cookie holds the user id signed with the worker's secret (Tornado's
signed values: HMAC-SHA256 and a timestamp; ``max_age_days``), so every
worker and every restart that shares the secret reads it. It follows the
reference's cookie policy: HttpOnly (no script reads it), SameSite=Lax (a
cross-site POST does not carry it), and Secure whenever the request came
over TLS (here or at a trusted proxy); on plain HTTP it is set only under
``--dev``, with ``secure_cookies = false`` or for a loopback client
(:meth:`vango_mp.routes.Response.set_cookie`). The signature proves who
logged in, not that the login is still wanted: revocation is the app's
``AuthCheckConfig.check`` (:mod:`vango_mp.authcheck`).
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import tornado.web

from .routes import Response, redirect

LOGIN_COOKIE = "vango_login"
DEFAULT_MAX_AGE_DAYS = 14
_secret: bytes = secrets.token_bytes(32)  # replaced by the worker's (shared) secret: see install_secret


def install_secret(worker_secret: bytes) -> None:
    """Derive the login-cookie key from the worker's secret (the workers of one cluster share it)."""
    global _secret
    _secret = hashlib.sha256(b"vango-login:" + worker_secret).digest()


def sign_login(user_id: str) -> str:
    """The cookie value for ``user_id`` (signed, timestamped)."""
    return tornado.web.create_signed_value(_secret, LOGIN_COOKIE, str(user_id)).decode()


def read_login(request: Any, *, max_age_days: float = DEFAULT_MAX_AGE_DAYS) -> str | None:
    """The user id of a request's login cookie, when its signature and age check out, else None.

    ``request``: anything with a ``cookies`` mapping (an app route's
    :class:`~vango_mp.routes.Request`, the request ``auth_func`` gets).
    """
    value = (getattr(request, "cookies", None) or {}).get(LOGIN_COOKIE)
    if not value:
        return None
    decoded = tornado.web.decode_signed_value(_secret, LOGIN_COOKIE, value, max_age_days=max_age_days)
    return decoded.decode() if decoded is not None else None


def login_response(user_id: str, to: str = "/", *, max_age_days: float = DEFAULT_MAX_AGE_DAYS) -> Response:
    """A 303 to ``to`` (a path on this site) that sets the login cookie for ``user_id``."""
    response = redirect(to)
    response.set_cookie(LOGIN_COOKIE, sign_login(user_id), max_age=int(max_age_days * 86400),
                        httponly=True, samesite="Lax")
    return response


def logout_response(to: str = "/login") -> Response:
    """A 303 to ``to`` that clears the login cookie (then call ``broadcast_auth_logout``)."""
    response = redirect(to)
    response.delete_cookie(LOGIN_COOKIE)
    return response


__all__ = ["LOGIN_COOKIE", "install_secret", "login_response", "logout_response", "read_login", "sign_login"]
