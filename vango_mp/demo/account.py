"""Demo login: ``/login``, a ``/profile`` behind a route guard, an avatar upload, logout on every tab.

Two demo users, ``alice`` / ``wonderland`` and ``bob`` / ``builder``; their
passwords are kept as Argon2id hashes (argon2-cffi) and checked off the
event loop. Logging in posts the form (CSRF-checked) to the ``/login`` app
route, which sets a signed HttpOnly cookie (:mod:`vango_mp.login`) and
redirects to ``/profile``; ``#logout`` posts to ``/logout``, which clears
it and logs the user out of every live session on every worker
(:func:`vango_mp.authlife.broadcast_auth_logout`): those tabs go to
``/login``. The profile page's first HTML already shows the user
(``auth_func`` runs before the first render).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..authcheck import AuthCheckConfig, AuthExpiredAction, AuthExpiredConfig
from ..authlife import broadcast_auth_logout, use_user
from ..login import login_response, logout_response, read_login
from ..navigation import use_head, use_query
from ..router import App, Redirect, RouteContext
from ..routes import Request, Response, csrf_input, redirect
from ..uploads import UploadedFile, use_upload
from ..vdom import Node, component, h, use_signal

AVATAR_MAX = 25 * 1024 * 1024
AVATAR_TYPES = ("image/*",)
GUARDED = ("/profile",)


@dataclass(frozen=True, slots=True)
class User:
    id: str
    name: str


USERS = {"alice": User("alice", "Alice"), "bob": User("bob", "Bob")}
_HASHES = {  # PasswordHasher().hash(password): alice / wonderland, bob / builder
    "alice": "$argon2id$v=19$m=65536,t=3,p=4$Z3QHb+CuB9mpBo4CMKbFmQ$WZuSt9TRLrJOF9wHhJECueepYYmBNc+M2l7/OZZWlxM",
    "bob": "$argon2id$v=19$m=65536,t=3,p=4$yVPEdcJMfJvvxXYN7I/DUg$vQsvuRo9I0EpstekhxGDUS8Qy3tKbUyqBzb9plugnSI",
}
# An unknown name is checked against this one, so it takes as long as a known name with a wrong password.
_DUMMY = "$argon2id$v=19$m=65536,t=3,p=4$DufNqUgiKkwOw90ZtQ98NQ$6/z0+C8SdvYQvTtV8jZ5LRyl5FXbwZPqI6JaIkUuMLM"
_hasher = PasswordHasher()


def check_password(username: str, password: str) -> User | None:
    """The user whose password this is, else None (Argon2id; slow on purpose: call it off the loop)."""
    try:
        _hasher.verify(_HASHES.get(username, _DUMMY), password)
    except (VerificationError, InvalidHashError):
        return None
    return USERS.get(username)


def current_user(request: Any) -> User | None:
    """``auth_func``: the user of the request's login cookie."""
    return USERS.get(read_login(request) or "")


def guard(ctx: RouteContext) -> Redirect | None:
    """Route middleware: the profile needs a login."""
    if ctx.pattern in GUARDED and ctx.user is None:
        return Redirect("/login")
    return None


def avatar_path(user: User) -> str:
    directory = os.path.join(tempfile.gettempdir(), f"vango-demo-avatars-{os.getuid()}")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    return os.path.join(directory, user.id)


# -- app routes ----------------------------------------------------------------------


async def do_login(request: Request) -> Response:
    """POST /login (CSRF-checked): the cookie and a redirect to the profile, or back with an error."""
    username, password = request.form.get("username", ""), request.form.get("password", "")
    user = await asyncio.get_running_loop().run_in_executor(None, check_password, username, password)
    if user is None:
        return redirect("/login?error=1")
    return login_response(user.id, "/profile")


def do_logout(request: Request) -> Response:
    """POST /logout (CSRF-checked): clear the cookie here, end the login in every tab everywhere."""
    user = current_user(request)
    if user is not None:
        broadcast_auth_logout(user)
    return logout_response("/login")


# -- pages ---------------------------------------------------------------------------


@component
def Login() -> Node:
    use_head(title="Log in · vango-mp")
    user = use_user()
    failed = "error" in use_query()
    return h.main(
        h.h1("Log in"),
        h.p("Try alice / wonderland or bob / builder."),
        h.p(f"Logged in as {user.name}: ", h.a("profile", href="/profile"), id="logged-in") if user else None,
        h.p("Wrong user name or password", id="login-error", role="alert") if failed else None,
        h.form(
            csrf_input(),
            h.label("User ", h.input(id="username", name="username", autocomplete="username", required=True)),
            h.label(" Password ", h.input(id="password", name="password", type="password",
                                          autocomplete="current-password", required=True)),
            h.button("Log in", type="submit", id="login"),
            method="post", action="/login",
        ),
    )


@component
def Profile() -> Node:
    use_head(title="Profile · vango-mp")
    user: User | None = use_user()
    stored = use_signal(-1)
    digest = use_signal("")

    def save_avatar(files: list[UploadedFile]) -> None:
        if user is None:
            return
        sha = hashlib.sha256()
        with files[0].open() as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                sha.update(block)
        stored.set(files[0].save(avatar_path(user)))
        digest.set(sha.hexdigest())

    up = use_upload(save_avatar, accept=AVATAR_TYPES, max_files=1, max_file_size=AVATAR_MAX)
    done, total = up.progress.get()
    return h.main(
        h.h1("Profile"),
        h.p("Signed in as ", h.strong(user.name if user else "guest", id="user")),
        h.form(csrf_input(), h.button("Log out", type="submit", id="logout"), method="post", action="/logout"),
        h.h2("Avatar"),
        h.label("Image (at most 25 MB) ", h.input(type="file", id="avatar", **up.props())),
        h.progress(f"{up.percent}%", id="upload-progress", value=str(done), max=str(total or 1)),
        h.p(up.error.get(), id="upload-error", role="alert"),
        h.p("Stored: ", h.span(str(stored.get()) if stored.get() >= 0 else "none", id="avatar-size"), " bytes, sha256 ",
            h.code(digest.get(), id="avatar-sha256")),
        h.p(h.a("Home", href="/")),
    )


PAGES = {"/login": Login, "/profile": Profile}
# Every tab of a user who logs out (or whose login expires) goes to the login page.
AUTH_CHECK = AuthCheckConfig(on_expired=AuthExpiredConfig(AuthExpiredAction.NAVIGATE_TO, "/login"))


def install(app: App) -> App:
    """Add the login and logout routes to ``app`` (its pages come from :data:`PAGES`)."""
    app.route("/login", methods=["POST"])(do_login)
    app.route("/logout", methods=["POST"])(do_logout)
    return app
