"""The demo's account pages with a short revalidation interval and a way to revoke a user (tests only).

``POST /revoke/{name}`` marks a user revoked on every worker (a GlobalSignal);
the check then fails and ``auth_func`` no longer accepts the cookie.
Logging in again lifts the revocation.
"""

from __future__ import annotations

from typing import Any

from vango_mp.authcheck import AuthCheckConfig, AuthExpiredAction, AuthExpiredConfig, AuthFailureMode
from vango_mp.demo import account
from vango_mp.globals import GlobalSignal
from vango_mp.router import App
from vango_mp.routes import Request, Response
from vango_mp.uploadhandler import UploadHandler
from vango_mp.uploads import UploadedFile, use_upload
from vango_mp.vdom import Node, component, h, use_signal

INTERVAL = 1.0
UploadHandler.IDLE_TIMEOUT = 2.0  # a stalled upload body is dropped sooner than the default 60 s
REVOKED: GlobalSignal[dict[str, bool]] = GlobalSignal("test.revoked", {})


def revoked(user: Any) -> bool:
    return bool(REVOKED.peek().get(user.id))


def auth_func(request: Any) -> account.User | None:
    user = account.current_user(request)
    return None if user is None or revoked(user) else user


async def check(user: Any) -> bool:
    return not revoked(user)


@component
def Files() -> Node:
    """Several files at once (at most 3, text or images, 1 MiB each), with a cancel button."""
    names = use_signal("")

    def got(files: list[UploadedFile]) -> None:
        parts = []
        for f in files:
            with f.open() as fh:
                parts.append(f"{f.name}:{f.type}:{f.size}:{len(fh.read())}")
        names.set(";".join(parts))

    up = use_upload(got, max_files=3, max_file_size=1 << 20, accept=["text/plain", ".png"])
    done, total = up.progress.get()
    return h.main(
        h.input(type="file", id="files", **up.props()),
        h.p(f"{done}/{total}", id="progress"),
        h.p(up.state.get(), id="state"),
        h.p(up.error.get(), id="error"),
        h.p(names.get(), id="names"),
        h.button("cancel", id="cancel", on_click=up.cancel),
    )


app = App({**account.PAGES, "/files": Files}, auth_func=auth_func, route_middleware=[account.guard],
          auth_check=AuthCheckConfig(interval=INTERVAL, check=check, failure_mode=AuthFailureMode.FAIL_CLOSED,
                                     on_expired=AuthExpiredConfig(AuthExpiredAction.NAVIGATE_TO, "/login")))


@app.route("/login", methods=["POST"])
async def login(request: Request) -> Response:
    response = await account.do_login(request)
    name = request.form.get("username", "")
    if response.redirect_to == "/profile" and REVOKED.peek().get(name):
        await REVOKED.update({name: False})
    return response


app.route("/logout", methods=["POST"])(account.do_logout)


@app.route("/revoke/{name}", methods=["POST"])
async def revoke(request: Request) -> dict[str, Any]:
    await REVOKED.update({request.params["name"]: True})
    return {"revoked": request.params["name"]}
