"""The HTTP side of a worker: app routes and pages (stateless SSR), the client script, health and metrics.

Each handler is given only what it uses (Tornado's ``initialize`` kwargs);
the live socket is :mod:`vango_mp.live`.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import tornado.escape
import tornado.httputil
import tornado.web

from . import assets, auth, client_js, errors, navigation, routes, security
from .observability import logs
from .protocol import html_hash
from .router import App
from .settings import Settings
from .vdom.mount import Root

log = logging.getLogger("vango_mp.handlers")
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)  # the expiry of a deleted cookie
_CLIENT, JS_VERSION = client_js.build()  # vango.js minified and gzipped, once per process
_PAGE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width,initial-scale=1"><title>{title}</title>{meta}</head>'
    '<body><div id="vango-root" data-hid="0">{body}</div>'
    '<script nonce="{nonce}">window.__vango={boot}</script>'
    '<script src="/_vango/vango.js?v={version}" defer></script>{dev}</body></html>'
)
_DEVTOOLS = '<script src="/_vango/devtools.js" defer></script>'  # --dev only (vango_mp.observability.devtools)


class WorkerHeader:
    """Headers of every response (mixed into each handler, WebSocket too).

    ``X-Vango-Worker`` names the worker; the app's security headers
    (:mod:`vango_mp.headers`) come with a fresh CSP nonce, ``csp_nonce``,
    which a page puts on its bootstrap script.
    """

    application: tornado.web.Application
    request: tornado.httputil.HTTPServerRequest
    csp_nonce: str
    # Whether prepare() checks the Host against allowed_hosts: the operational
    # endpoints answer any Host (load balancers probe by address).
    host_checked = True

    def prepare(self) -> None:
        """Refuse (400) or redirect to the canonical host a request naming another Host.

        Runs for the WebSocket upgrade too (Tornado calls prepare() before
        ``WebSocketHandler.get``): an upgrade is refused, never redirected.
        A subclass overriding prepare() must call this one.
        """
        if not self.host_checked:
            return
        settings = self.application.settings
        trusted = settings["vango_settings"].trusted_proxies
        policy: security.HostPolicy = settings["vango_hosts"]
        req = self.request
        host = security.request_host(req, trusted)
        upgrade = req.headers.get("Upgrade", "").lower() == "websocket"
        decision = policy.decide(host, req.method or "GET", upgrade)
        if decision == policy.REDIRECT:
            scheme = security.request_scheme(req, trusted)
            self.redirect(f"{scheme}://{policy.canonical}{req.uri or '/'}", permanent=True)  # type: ignore[attr-defined]
        elif decision == policy.REFUSE:
            raise tornado.web.HTTPError(400, reason="Host not allowed")

    def csrf_token(self) -> str:
        """This browser's CSRF token: its cookie when valid, else a new one, set as the cookie.

        One token per browser, kept across tabs and page loads (double
        submit: the page carries the token, the HttpOnly cookie its twin).
        """
        cached: str | None = getattr(self, "_vango_csrf", None)
        if cached is not None:
            return cached
        settings = self.application.settings
        secret: bytes = settings["vango_csrf_secret"]
        token = self.get_cookie(security.CSRF_COOKIE)  # type: ignore[attr-defined]
        if not token or not security.verify_csrf(secret, token, token):
            s: Settings = settings["vango_settings"]
            token = security.mint_csrf(secret)
            secure = security.request_scheme(self.request, s.trusted_proxies) == "https"
            self.set_cookie(security.CSRF_COOKIE, token,  # type: ignore[attr-defined]
                            **security.cookie_flags(secure, s.secure_cookies))
        self._vango_csrf = token
        return token

    def set_default_headers(self) -> None:
        # Runs before initialize() (hence the application settings), and again
        # when an error page replaces a response: the error page gets its own nonce.
        settings = self.application.settings
        self.set_header("X-Vango-Worker", settings["vango_worker"])  # type: ignore[attr-defined]
        if not hasattr(self, "request_id"):  # one id per request, in its log lines and X-Request-Id
            self.request_id = logs.new_request_id(self.request.headers.get("X-Request-Id"))
        self.set_header("X-Request-Id", self.request_id)  # type: ignore[attr-defined]
        self.csp_nonce, headers = settings["vango_headers"].headers()
        for name, value in headers:
            self.set_header(name, value)  # type: ignore[attr-defined]


class AppHandler(WorkerHeader, tornado.web.RequestHandler):
    """Every path not under ``/_vango/``: the app's routes first, then its pages.

    A page is a stateless SSR plus the client bootstrap (the session starts
    at the WebSocket). Both go through the app's middleware; app routes
    answering an unsafe method are CSRF-checked before it. Unknown path: 404;
    known path, other method: 405 with ``Allow``.
    """

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
    ws_path = "/_vango/ws"  # the page's socket (the status page has its own)

    def initialize(self, app: App, slot: int, settings: Settings, csrf_secret: bytes) -> None:
        self.app, self.slot, self.vango_settings, self.csrf_secret = app, slot, settings, csrf_secret

    async def get(self, path: str) -> None:
        request = self.vango_request("/" + path)
        endpoint, refusal = self.endpoint(request)
        response = refusal if refusal is not None else await routes.chain(self.app.middleware, endpoint)(request)
        self.send(response)

    head = post = put = patch = delete = options = get

    def endpoint(self, request: routes.Request) -> tuple[routes.CallNext, routes.Response | None]:
        """What answers ``request`` (through the middleware), or a refusal that skips it (CSRF)."""
        method, found = request.method, self.app.match_http(request.path)
        for route, params in found:
            if method in route.methods:
                request.params = params
                if route.csrf and method in routes.UNSAFE_METHODS and not self.csrf_ok(request):
                    return route, routes.Response.text("CSRF token missing or invalid", 403)
                return route, None
        allowed = {m for route, _ in found for m in route.methods}
        if self.app.resolve(self.request.uri or request.path, run_middleware=False).found:
            if method in ("GET", "HEAD"):
                return self.render_page, None
            allowed |= {"GET", "HEAD"}
        elif request.path == "/favicon.ico" and not found:
            if method in ("GET", "HEAD"):
                return self.favicon, None
            allowed = {"GET", "HEAD"}
        elif not found and method in ("GET", "HEAD"):
            return self.render_page, None  # the app's not-found page, with 404
        return _refuse(405 if allowed else 404, allowed), None

    async def favicon(self, request: routes.Request) -> routes.Response:
        """The app's ``static_dir/favicon.ico``, else the built-in one (no app route or page claimed the path)."""
        icon = self.app.assets.favicon()
        return routes.Response(icon.body, headers={"Cache-Control": assets.FAVICON_CACHE},
                               content_type=icon.content_type)

    def csrf_ok(self, request: routes.Request) -> bool:
        """Double submit: the token in the header or form field equals this browser's signed cookie."""
        if self.vango_settings.dev:
            return True
        token = request.headers.get(routes.CSRF_HEADER) or request.form.get(routes.CSRF_FIELD, "")
        return security.verify_csrf(self.csrf_secret, token, self.get_cookie(security.CSRF_COOKIE))

    async def render_page(self, request: routes.Request) -> routes.Response:
        """The SSR of the page at ``request.path``; the page may set status, headers, cookies or redirect."""
        response = routes.Response.html("")
        response.set_header("Cache-Control", "no-store")
        token = request.csrf_token
        url = self.request.uri or request.path
        user = self.ssr_user(request, url)  # before the first render: no flash of "guest"
        resolved = navigation.resolve(self.app, url, user=user)
        if resolved.redirect is not None:  # not canonical (308), or a route middleware redirected
            return routes.Response(b"", status=resolved.http_status, headers={"Location": resolved.redirect})
        context = {"csrf": token, "request": request, "response": response, "user": user}
        try:
            root = navigation.mount(self.app, url, worker=self.slot, context=context,
                                    allowed_redirect_hosts=self.vango_settings.allowed_redirect_hosts)
        except Exception as exc:  # the page cannot render: a 500 page, never a half page
            return self.error_page(url, exc)
        location: navigation.Location = root.context["location"]
        try:
            body = root.html()
        finally:
            root.dispose()
        if response.redirect_to is not None:
            return response
        if response.status == 200:
            response.status = location.resolved.status
        boot: dict[str, Any] = {"csrf": token, "path": self.request.uri or request.path, "ws": self.ws_path,
                                "worker": self.slot, "h": html_hash(body)}
        if self.app.prefetch:
            boot["prefetch"] = True
        if not self.app.reconnect_toast:
            boot["toast"] = False
        response.body = _PAGE.format(
            title=tornado.escape.xhtml_escape(location.title),
            meta="".join(f'<meta name="{tornado.escape.xhtml_escape(k)}" content="{tornado.escape.xhtml_escape(v)}" '
                         'data-vango-head>' for k, v in location.meta.items()),
            nonce=self.csp_nonce,
            body=body,
            boot=json.dumps(boot).replace("</", "<\\/"),
            version=JS_VERSION,
            dev=_DEVTOOLS if self.vango_settings.dev else "",
        ).encode()
        return response

    def ssr_user(self, request: routes.Request, url: str) -> Any:
        """The app's ``auth_func`` on this request, as a handshake would run it (None: a guest, or it raised)."""
        if self.app.auth_func is None:
            return None
        try:
            return self.app.auth_func(auth.as_request(self, url, request.client_ip))
        except Exception:
            log.exception("auth_func raised while rendering %s: rendering as a guest", request.path)
            return None

    def error_page(self, url: str, exc: Exception) -> routes.Response:
        """500: the app's ``error_page`` component (rendered without the client), else a plain styled page."""
        log.error("first load of %s raised", url, exc_info=exc)
        errors.call_on_error(self.app, errors.AppError("page", exc, url))
        body = errors.plain_error_page(self.app.title, self.csp_nonce, exc, self.vango_settings.dev)
        if self.app.error_page is not None:
            try:
                root = Root(self.app.error_page(error=exc))
                root.render_initial()
                try:
                    inner = root.html()
                finally:
                    root.dispose()
                body = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>'
                        f'{tornado.escape.xhtml_escape(self.app.title)}</title></head><body>{inner}</body></html>')
            except Exception:
                log.exception("App(error_page=...) raised too; serving the plain error page")
        response = routes.Response.html(body, 500)
        response.set_header("Cache-Control", "no-store")
        return response

    def vango_request(self, path: str) -> routes.Request:
        req, s = self.request, self.vango_settings
        return routes.Request(
            method=req.method or "GET",
            path=path,
            params={},
            query_all={k: [self.decode_argument(v) for v in vs] for k, vs in req.query_arguments.items()},
            headers=req.headers,
            cookies={name: morsel.value for name, morsel in req.cookies.items()},
            body=req.body,
            form_all={k: [self.decode_argument(v) for v in vs] for k, vs in req.body_arguments.items()},
            client_ip=security.client_ip(req.remote_ip or "", req.headers.get("X-Forwarded-For"), s.trusted_proxies),
            scheme=security.request_scheme(req, s.trusted_proxies),
            host=security.request_host(req, s.trusted_proxies),
            csp_nonce=self.csp_nonce,
            _csrf=self.csrf_token,
        )

    def send(self, response: routes.Response) -> None:
        """Write ``response``: its headers over the defaults, cookies under the strict policy, the redirect checked."""
        self.set_status(response.status)
        seen: set[str] = set()
        for name, value in response.headers.get_all():
            (self.add_header if name in seen else self.set_header)(name, value)
            seen.add(name)
        for cookie in response.cookies:
            self.set_strict_cookie(cookie)
        if response.redirect_to is not None:
            self.set_header("Location", self.location(response))
        self.finish(response.body or None)

    def set_strict_cookie(self, cookie: routes.Cookie) -> None:
        s = self.vango_settings
        secure = security.strict_cookie_secure(self.request, trusted_proxies=s.trusted_proxies,
                                               secure_cookies=s.secure_cookies, dev=s.dev)
        # Tornado writes no Max-Age=0: a deletion (delete_cookie) gets an expiry in the past as well.
        gone = cookie.max_age is not None and cookie.max_age <= 0
        self.set_cookie(cookie.name, cookie.value, domain=cookie.domain, path=cookie.path,
                        max_age=cookie.max_age, httponly=cookie.httponly, samesite=cookie.samesite,
                        secure=secure or None, expires=_EPOCH if gone else None)

    def location(self, response: routes.Response) -> str:
        url = response.redirect_to or "/"
        if not response.external:
            return url
        allowed = self.vango_settings.allowed_redirect_hosts
        checked = routes.validate_external_redirect_url(url, allowed)
        if checked is None:
            raise routes.RedirectNotAllowed(
                f"redirect to {url!r} refused: its host is not in allowed_redirect_hosts {allowed!r}")
        return checked


def _refuse(status: int, allowed: set[str]) -> routes.CallNext:
    async def refuse(request: routes.Request) -> routes.Response:
        response = routes.Response.text(f"{status}: {tornado.httputil.responses[status]}", status)
        if allowed:
            response.set_header("Allow", ", ".join(sorted(allowed)))
        return response

    return refuse


class CsrfHandler(WorkerHeader, tornado.web.RequestHandler):
    """``GET /_vango/csrf`` -> ``{"token": ...}``: the token of the cookie this browser holds now.

    The client asks when its HELLO was refused with 4002 (another tab
    replaced the cookie after this page was served). Only a same-origin
    script can read the answer (no CORS), and JSON under nosniff is no script.
    """

    def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.finish({"token": self.csrf_token()})


def send_asset(handler: WorkerHeader, asset: assets.Asset, cache_control: str) -> None:
    """Send ``asset``, gzipped when the browser accepts it; 304 when its ETag still matches.

    The compressed variant has its own ETag (``"<hash>-gz"``); Tornado's
    ``compress_response`` leaves it alone (it has a Content-Encoding) and adds
    ``Vary: Accept-Encoding``.
    """
    gzipped = asset.gzipped is not None and assets.accepts_gzip(handler.request.headers.get("Accept-Encoding", ""))
    handler.set_header("Content-Type", asset.content_type)  # type: ignore[attr-defined]
    handler.set_header("Cache-Control", cache_control)  # type: ignore[attr-defined]
    handler.set_header("ETag", asset.etag(gzipped))  # type: ignore[attr-defined]
    if gzipped:
        handler.set_header("Content-Encoding", "gzip")  # type: ignore[attr-defined]
    if handler.check_etag_header():  # type: ignore[attr-defined]
        handler.set_status(304)  # type: ignore[attr-defined]
        handler.finish()  # type: ignore[attr-defined]
        return
    handler.finish(asset.gzipped if gzipped else asset.body)  # type: ignore[attr-defined]


class ScriptHandler(WorkerHeader, tornado.web.RequestHandler):
    """The thin client. The page links it with ``?v=<hash>``, so that URL is immutable."""

    def get(self) -> None:
        immutable = self.get_argument("v", "") == JS_VERSION
        send_asset(self, _CLIENT, assets.IMMUTABLE if immutable else assets.REVALIDATE)

    head = get


class AssetHandler(WorkerHeader, tornado.web.RequestHandler):
    """``/_vango/assets/<name>``: a file of the app's ``static_dir`` by its manifest name (see :mod:`vango_mp.assets`)."""

    def initialize(self, manifest: assets.Assets) -> None:
        self.manifest = manifest

    def get(self, name: str) -> None:
        found = self.manifest.find(name)
        if found is None:
            raise tornado.web.HTTPError(404)
        asset, fingerprinted = found
        send_asset(self, asset, assets.IMMUTABLE if fingerprinted else assets.REVALIDATE)

    head = get


def ops_allowed(handler: WorkerHeader) -> bool:
    """Health details and metrics: loopback, ``ops_networks`` or the ``ops_token`` only."""
    s: Settings = handler.application.settings["vango_settings"]
    return security.ops_allowed(handler.request, trusted_proxies=s.trusted_proxies,
                                ops_networks=s.ops_networks, ops_token=s.ops_token)


class HealthHandler(WorkerHeader, tornado.web.RequestHandler):
    """``{"status": ...}`` for anyone; the full report (pid, sessions, memory) for operators."""

    host_checked = False

    def initialize(self, health: Callable[[], dict[str, Any]]) -> None:
        self.health = health

    def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        report = self.health()
        self.finish(report if ops_allowed(self) else {"status": report["status"]})


class MetricsHandler(WorkerHeader, tornado.web.RequestHandler):
    """Prometheus text for every worker (peers' figures from their last heartbeat)."""

    host_checked = False

    def initialize(self, exposition: Callable[[], Awaitable[bytes]]) -> None:
        self.exposition = exposition  # vango_mp.observability.exposition.cluster_exposition

    async def get(self) -> None:
        if not ops_allowed(self):
            raise tornado.web.HTTPError(403)
        body = await self.exposition()
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.finish(body)
