"""The HTTP side of an app: its own routes, middleware, responses, and the CSRF token in forms.

Pages are components served over the live socket; everything else an app
needs over plain HTTP — JSON endpoints, OAuth callbacks, webhooks, form
posts — is an *app route*: ``@app.route("/api/items/{id}", methods=["GET"])``
on a function of a :class:`Request` that returns a :class:`Response` (or a
dict/list, sent as JSON; or a str, sent as text). Middleware — async
callables ``(request, call_next) -> Response`` in ``App(middleware=[...])``
— wrap every app route and every page request, outermost first.

Unsafe methods (POST, PUT, PATCH, DELETE) are CSRF-checked before any
middleware runs: the request must carry this browser's token, in the form
field ``_csrf`` (:func:`csrf_input` renders it) or the ``X-CSRF-Token``
header, equal to its CSRF cookie (double submit, as the reference).
``csrf=False`` on a route exempts it (a webhook called by another server);
``--dev`` turns the check off.
"""

from __future__ import annotations

from .vdom import Node, h, use_context

CSRF_FIELD = "_csrf"  # form field carrying the token
CSRF_HEADER = "X-CSRF-Token"  # header carrying the token (fetch/XHR)


def csrf_token() -> str:
    """This browser's CSRF token, for a form or a fetch header rendered by a component.

    Call it while rendering. In the server-side render of a page it is the
    token of the request's cookie; in a live session, the token of the
    browser the session belongs to (``session.csrf_token``), or ``""`` when
    the session does not know it.
    """
    token = use_context("csrf")
    if token is None:
        token = getattr(use_context("session"), "csrf_token", None)
    return str(token or "")


def csrf_input() -> Node:
    """``<input type="hidden" name="_csrf" value=TOKEN>``: put it inside a form that posts to an app route."""
    return h.input(type="hidden", name=CSRF_FIELD, value=csrf_token())


__all__ = ["CSRF_FIELD", "CSRF_HEADER", "csrf_input", "csrf_token"]
