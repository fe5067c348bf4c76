"""Static assets on a real server: fingerprinted immutable URLs, gzip, 304s, no traversal, the favicon."""

from __future__ import annotations

import asyncio
import gzip
import http.client
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import tornado.httpclient
import tornado.websocket

from tests.conftest import ROOT, Server, start_server

from .rawws import Raw, fetch_page

pytestmark = pytest.mark.timeout(60)

CSS = "body { color: #222; }\n" + "".join(f".c{i} {{ margin: {i}px; }}\n" for i in range(40))
APP = '''
from vango_mp import App, asset, component, h


@component
def Home():
    return h.main(
        h.link(rel="stylesheet", href=asset("app.css")),
        h.img(src=asset("img/logo.svg"), alt="logo", id="logo"),
        h.p("x" * 2000, id="filler"),
    )


app = App({"/": Home}, static_dir="static")
bare = App({"/": Home})
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    root = tmp_path_factory.mktemp("site")
    static = root / "static"
    (static / "img").mkdir(parents=True)
    (static / "app.css").write_text(CSS)
    (static / "img" / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>')
    (static / ".env").write_text("SECRET=1")
    (static / ".git").mkdir()
    (static / ".git" / "config").write_text("[core]")
    (root / "secret.txt").write_text("outside the static dir")
    os.symlink(root / "secret.txt", static / "escape.txt")
    (root / "siteapp.py").write_text(APP)
    srv = start_server("--workers", "1", "--app", "siteapp:app", env={"PYTHONPATH": f"{root}:{ROOT}"})
    yield srv, static
    srv.stop()


def call(server: Server, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def asset_urls(server: Server) -> dict[str, str]:
    _, _, body = call(server, "/")
    css = re.search(r'href="(/_vango/assets/app\.[0-9a-f]{8}\.css)"', body.decode())
    svg = re.search(r'src="(/_vango/assets/img/logo\.[0-9a-f]{8}\.svg)"', body.decode())
    assert css and svg, body[:600]
    return {"css": css.group(1), "svg": svg.group(1)}


def test_fingerprinted_urls_are_immutable(site) -> None:
    server, _ = site
    urls = asset_urls(server)
    status, headers, body = call(server, urls["css"])
    assert status == 200 and body.decode() == CSS
    assert headers["cache-control"] == "public, max-age=31536000, immutable"
    assert headers["content-type"] == "text/css; charset=utf-8"
    assert headers["x-content-type-options"] == "nosniff"
    status, headers, body = call(server, urls["svg"])
    assert status == 200 and headers["content-type"].startswith("image/svg+xml") and body.startswith(b"<svg")
    status, headers, _ = call(server, "/_vango/assets/app.css")  # the plain name: revalidated
    assert status == 200 and headers["cache-control"] == "no-cache"


def test_gzip_where_accepted_and_304s(site) -> None:
    server, _ = site
    url = asset_urls(server)["css"]
    status, headers, body = call(server, url, {"Accept-Encoding": "gzip, deflate, br"})
    assert status == 200 and headers["content-encoding"] == "gzip" and gzip.decompress(body).decode() == CSS
    assert "Accept-Encoding" in headers["vary"] and len(body) < len(CSS)
    assert call(server, url, {"Accept-Encoding": "gzip;q=0"})[1].get("content-encoding") is None
    for accept in ("gzip", "identity"):
        _, headers, _ = call(server, url, {"Accept-Encoding": accept})
        status, _, body = call(server, url, {"Accept-Encoding": accept, "If-None-Match": headers["etag"]})
        assert status == 304 and body == b"", accept


def test_pages_and_the_client_are_gzipped_too(site) -> None:
    server, _ = site
    status, headers, body = call(server, "/", {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert b'id="filler"' in gzip.decompress(body)
    src = re.search(rb'src="(/_vango/vango\.js\?v=\w+)"', gzip.decompress(body)).group(1).decode()  # type: ignore[union-attr]
    status, headers, body = call(server, src, {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["content-encoding"] == "gzip" and b"window.vango" in gzip.decompress(body)
    status, _, _ = call(server, src, {"Accept-Encoding": "gzip", "If-None-Match": headers["etag"]})
    assert status == 304


def test_the_websocket_upgrade_is_not_compressed_away(site) -> None:
    """Browsers send Accept-Encoding on the upgrade too; the handshake and the session still work."""
    server, _ = site

    async def go() -> None:
        page = fetch_page(server.url, "/")
        req = tornado.httpclient.HTTPRequest(server.url.replace("http://", "ws://") + "/_vango/ws", headers={
            "Origin": server.url, "Cookie": page.cookie, "Accept-Encoding": "gzip, deflate, br"})
        raw = Raw(await tornado.websocket.websocket_connect(req))
        welcome = await raw.hello(page)
        assert welcome[0] == 17  # WELCOME
        raw.close()

    asyncio.run(go())


@pytest.mark.parametrize("path", [
    "/_vango/assets/../secret.txt", "/_vango/assets/%2e%2e/secret.txt", "/_vango/assets/..%2fsecret.txt",
    "/_vango/assets/.env", "/_vango/assets/.git/config", "/_vango/assets/escape.txt",
    "/_vango/assets//etc/passwd", "/_vango/assets/%2fetc%2fpasswd", "/_vango/assets/img/../app.css.bak",
    "/_vango/assets/", "/_vango/assets/img",
])
def test_nothing_outside_the_manifest_is_served(site, path: str) -> None:
    server, _ = site
    status, _, body = call(server, path)
    assert status == 404 and b"outside the static dir" not in body and b"SECRET" not in body


def test_the_apps_favicon_or_a_default_one(site, tmp_path: Path) -> None:
    server, static = site
    status, headers, body = call(server, "/favicon.ico")
    assert status == 200 and body[:4] == b"\x00\x00\x01\x00" and b"PNG" in body[:40]
    assert headers["content-type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    assert "max-age" in headers["cache-control"]
    (static / "favicon.ico").write_bytes(b"\x00\x00\x01\x00app-icon")
    srv = start_server("--workers", "1", "--app", "siteapp:app",
                       env={"PYTHONPATH": f"{static.parent}:{ROOT}"})
    try:
        assert call(srv, "/favicon.ico")[2] == b"\x00\x00\x01\x00app-icon"
    finally:
        srv.stop()
        (static / "favicon.ico").unlink()
