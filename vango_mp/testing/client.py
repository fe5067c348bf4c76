"""The test client: HTTP (SSR pages, cookies) and the pages it opened."""

from __future__ import annotations

import html as html_lib
import json
import re
from dataclasses import dataclass
from http.cookies import SimpleCookie
from types import TracebackType
from typing import Any
from urllib.parse import urljoin, urlsplit

import tornado.httpclient

from . import dom
from .errors import VangoTestError
from .page import Page

_BOOT = re.compile(r"window\.__vango\s*=\s*(\{.*?\})\s*;?\s*</script>", re.DOTALL)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.DOTALL | re.IGNORECASE)
MAX_REDIRECTS = 5


class PageLoadError(VangoTestError):
    """GET of a page did not yield a vango page (status, or no root/bootstrap)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class Document:
    """A served vango page: what a browser tab holds after a full load."""

    url: str  # after redirects
    status: int
    headers: dict[str, str]
    html: str
    boot: dict[str, Any]  # window.__vango
    root: dom.DomNode  # #vango-root
    title: str  # <title>


class TestClient:
    """A browser stand-in for one user against the server at ``base_url``.

    ``timeout`` (seconds, default 5) bounds every wait: HTTP, connect,
    WELCOME, frames. ``compression=True`` offers permessage-deflate on the
    WebSocket as browsers do (the server is expected to decline).
    ``origin`` is sent on upgrades (default: the base URL's origin; None
    sends none). Cookies set by any response are kept for the client's life
    and sent on every request, like one browser profile.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, base_url: str, *, timeout: float = 5.0, compression: bool = False,
                 origin: str | None | Any = dom.UNSET) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be http(s)://host:port, got {base_url!r}")
        self.base_url = f"{parts.scheme}://{parts.netloc}"
        self.timeout = timeout
        self.compression = compression
        self.origin = self.base_url if origin is dom.UNSET else origin
        self.cookies: dict[str, str] = {}
        self.pages: list[Page] = []
        self._http: tornado.httpclient.AsyncHTTPClient | None = None

    async def __aenter__(self) -> TestClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Disconnect every page still open and release the HTTP client."""
        for page in self.pages:
            try:
                await page.disconnect(timeout=self.timeout)
            except VangoTestError:
                page.drop()
        self.pages.clear()
        if self._http is not None:
            self._http.close()
            self._http = None

    # ------------------------------------------------------------ HTTP

    @property
    def http(self) -> tornado.httpclient.AsyncHTTPClient:
        if self._http is None:
            # Our own instance: closing it must not close a shared one.
            self._http = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=64)
        return self._http

    async def get(self, path: str, *, headers: dict[str, str] | None = None) -> tornado.httpclient.HTTPResponse:
        """GET ``path`` with our cookies, following redirects; any status is returned, not raised."""
        url = urljoin(self.base_url, path)
        for _ in range(MAX_REDIRECTS + 1):
            resp = await self.http.fetch(
                url, headers={**self._cookie_header(self.cookies), **(headers or {})},
                follow_redirects=False, raise_error=False,
                connect_timeout=self.timeout, request_timeout=self.timeout,
            )
            if resp.code == 599 and resp.error is not None:
                raise resp.error
            self.store_cookies(resp)
            if resp.code not in (301, 302, 303, 307, 308) or "Location" not in resp.headers:
                return resp
            url = urljoin(url, resp.headers["Location"])
        raise PageLoadError(f"more than {MAX_REDIRECTS} redirects from {path}", resp.code)

    def store_cookies(self, resp: tornado.httpclient.HTTPResponse) -> dict[str, str]:
        """Keep the cookies a response set; return them."""
        jar: SimpleCookie = SimpleCookie()
        for header in resp.headers.get_list("Set-Cookie"):
            jar.load(header)
        got = {name: morsel.value for name, morsel in jar.items()}
        self.cookies.update(got)
        return got

    @staticmethod
    def _cookie_header(cookies: dict[str, str]) -> dict[str, str]:
        if not cookies:
            return {}
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}

    # ------------------------------------------------------------ pages

    async def load_document(self, path: str) -> Document:
        """GET ``path`` as a browser loads a page: a vango page of any status (an app's 404 page is one).

        Raises :class:`PageLoadError` when the answer is not a vango page
        (a non-200 without the bootstrap, or no ``#vango-root``).
        """
        resp = await self.get(path)
        html = resp.body.decode("utf-8", "replace") if resp.body else ""
        found = _BOOT.search(html)
        if found is None:
            why = f"HTTP {resp.code}" if resp.code != 200 else "no window.__vango bootstrap in the page"
            raise PageLoadError(f"GET {path}: {why}", resp.code)
        try:
            boot = json.loads(found.group(1))
            root = dom.extract_root(html)
        except ValueError as err:
            raise PageLoadError(f"GET {path}: {err}", resp.code) from None
        title = _TITLE.search(html)
        return Document(resp.effective_url, resp.code, dict(resp.headers), html, boot, root,
                        html_lib.unescape(title.group(1)).strip() if title else "")

    async def open(self, path: str, *, connect: bool = True, timeout: float | None = None) -> Page:
        """Load ``path`` (SSR) and, unless ``connect=False``, start its live session."""
        doc = await self.load_document(path)
        # A page keeps the cookies it was served with: a later GET may rotate them.
        page = Page(self, doc.url, status=doc.status, headers=doc.headers, html=doc.html,
                    boot=doc.boot, root=doc.root, cookies=dict(self.cookies), title=doc.title)
        self.pages.append(page)
        if connect:
            await page.connect(timeout=timeout)
        return page

    def ws_url(self, ws_path: str) -> str:
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return f"{scheme}://{parts.netloc}{ws_path}"

    def upgrade_headers(self, cookies: dict[str, str], origin: str | None | Any = dom.UNSET) -> dict[str, str]:
        """Headers of a WebSocket upgrade: Origin (unless None) and the cookies."""
        origin = self.origin if origin is dom.UNSET else origin
        headers = self._cookie_header({**self.cookies, **cookies})
        if origin is not None:
            headers["Origin"] = origin
        return headers
