"""Errors people can see: what a session does when app code raises, and the first-load error page.

The rule (docs/GUIDE.md, "Errors"):

* A handler (sync or async), an effect or a task raises: the writes it made
  before raising stay, the session goes on. The error is logged with its
  traceback, handed to ``App(on_error=...)`` as an :class:`AppError`, and the
  browser is told: with ``--dev`` an overlay ``#vango-error`` shows the
  exception and the line of the app's code it came from; in production a
  short generic notice (``#vango-notice``, ``data-kind="error"``) and nothing
  about the code.
* A render raises: inside an ``ErrorBoundary`` the boundary shows its
  fallback; otherwise the page keeps its last good DOM and the failed
  component re-renders on its next change. Three renders in a row that
  raise (``session.MAX_RENDER_FAILURES``) make the page unusable: the
  session ends with 4001 and the browser reloads into a fresh one. A component whose hooks changed
  order (a conditional hook) is reset -- its state starts over -- and reports
  the component and hook number.
* Other state that cannot go on (the dispatch queue overflows) ends the
  session the same way. A new session whose first live render raises (the
  server render worked, the live one does not) is refused with 4011: the
  browser shows a notice rather than retrying or reloading in a loop.
* A first load whose render raises answers 500 with the app's
  ``App(error_page=...)`` component, or a plain styled page.
"""

from __future__ import annotations

import html
import logging
import os
import sysconfig
import traceback
from dataclasses import dataclass
from typing import Any

__all__ = ["AppError", "app_line", "describe", "GENERIC_NOTICE", "plain_error_page", "call_on_error", "report",
           "start_failed"]

log = logging.getLogger("vango_mp.errors")

GENERIC_NOTICE = "Something went wrong. Please try again."
MAX_DETAIL = 8 * 1024  # the overlay's traceback, cut

_OURS = os.path.dirname(os.path.abspath(__file__)) + os.sep
_DEMO = _OURS + "demo" + os.sep  # the built-in demo is an app like any other
_STDLIB = {p + os.sep for p in {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]}}


@dataclass(slots=True, frozen=True)
class AppError:
    """What ``App(on_error=fn)`` is called with: one error in a session (or a first load).

    ``kind``: "handler", "task", "effect", "render", "hook" (a component was
    reset: its hooks changed order) or "page" (a first load's render).
    ``path``: the page's URL. ``event``: the event name for a handler, and
    ``hid`` its element (the reference's HandlerError). ``session``: the
    :class:`~vango_mp.session.Session` (None on a first load).
    """

    kind: str
    error: BaseException
    path: str = ""
    event: str = ""
    session: Any = None
    hid: int = 0

    @property
    def stack(self) -> str:
        """The formatted traceback."""
        return "".join(traceback.format_exception(self.error))


def app_line(exc: BaseException) -> str:
    """The innermost traceback line in the app's own code (not vango_mp, not the standard library)."""
    frames = traceback.extract_tb(exc.__traceback__)
    for fs in reversed(frames):
        name = os.path.abspath(fs.filename)
        if (name.startswith(_OURS) and not name.startswith(_DEMO)) or any(name.startswith(p) for p in _STDLIB) or fs.filename.startswith("<"):
            continue
        return f'File "{fs.filename}", line {fs.lineno}, in {fs.name}\n    {(fs.line or "").strip()}'
    return ""


def describe(exc: BaseException, dev: bool) -> tuple[str, str | None]:
    """(text, detail) for the client: the exception and its app line plus traceback in --dev, else generic."""
    if not dev:
        return GENERIC_NOTICE, None
    text = f"{type(exc).__name__}: {exc}"
    where = app_line(exc)
    trace = "".join(traceback.format_exception(exc))
    detail = (where + "\n\n" if where else "") + trace
    return text[:1024], detail[-MAX_DETAIL:]


def start_failed(app: Any, path: str, exc: BaseException) -> None:
    """A new session's first (live) render raised: log it and tell ``on_error`` (kind "page");
    the socket is closed with APP_ERROR and the browser shows a notice instead of retrying."""
    log.error("the live render of %s raised; the session could not start", path, exc_info=exc)
    call_on_error(app, AppError("page", exc, path))


def call_on_error(app: Any, error: AppError) -> None:
    """Hand ``error`` to the app's ``on_error``; its own exception is logged, never raised."""
    hook = getattr(app, "on_error", None)
    if hook is None:
        return
    try:
        hook(error)
    except Exception:
        log.exception("App(on_error=...) raised while handling a %s error", error.kind)


_STYLE = ("body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f6f6f6;color:#222}"
          "main{max-width:36em;margin:15vh auto;padding:2em;background:#fff;border-radius:8px;"
          "box-shadow:0 1px 4px #0002}h1{margin-top:0;font-size:1.4em}"
          "pre{white-space:pre-wrap;font-size:13px;background:#fee;padding:1em;overflow:auto}")


def plain_error_page(title: str, nonce: str, exc: BaseException | None = None, dev: bool = False) -> str:
    """The built-in 500 page: a short styled notice; with --dev the exception and its traceback too.

    The style is an element carrying the response's CSP nonce (no inline style attribute).
    """
    detail = ""
    if dev and exc is not None:
        text, trace = describe(exc, True)
        detail = f'<pre id="vango-error">{html.escape(text)}\n\n{html.escape(trace or "")}</pre>'
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Error · {html.escape(title)}'
            f'</title><style nonce="{html.escape(nonce)}">{_STYLE}</style></head><body><main id="server-error">'
            "<h1>Something went wrong</h1><p>The page could not be shown. Please try again in a moment.</p>"
            f'<p><a href="/">Home</a></p>{detail}</main></body></html>')


def report(session: Any, kind: str, exc: BaseException, *, event: str = "", hid: int = 0,
           logged: bool = False) -> None:
    """One error in a live session: log (unless the tree ``logged`` it), ``on_error``, tell the browser.

    The browser gets an ERROR frame: with ``--dev`` the exception, its app
    line and traceback (the overlay ``#vango-error``); else the generic notice.
    """
    from . import protocol
    from .security import redact

    if not logged:
        log.error("session %s: %s raised%s", redact(session.id), kind, f" ({event})" if event else "", exc_info=exc)
    root = session.root
    location = root.context.get("location") if root is not None else None
    call_on_error(getattr(location, "app", None), AppError(kind, exc, session.path, event, session, hid))
    conn = session.conn
    dev = bool(session._settings.dev)
    if kind == "render" and logged and not dev:
        return  # an ErrorBoundary caught it: its fallback is what the user sees
    if conn is not None:
        text, detail = describe(exc, dev)
        conn.send(protocol.encode_error(text, detail))
