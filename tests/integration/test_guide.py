"""docs/GUIDE.md's examples run as printed, each against a real server."""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, Server, start_server

pytestmark = pytest.mark.timeout(60)


def guide_block(marker: str) -> str:
    text = (ROOT / "docs" / "GUIDE.md").read_text()
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        if marker in block:
            return block
    raise AssertionError(f"no GUIDE python block containing {marker!r}")


def serve_example(tmp_path: Path, module: str, *args: str, env: dict[str, str] | None = None) -> Server:
    (tmp_path / f"{module}.py").write_text(guide_block(f"# {module}.py"))
    return start_server("--workers", "1", "--app", f"{module}:app", *args,
                        env={"PYTHONPATH": f"{tmp_path}:{ROOT}", **(env or {})})


@pytest.fixture
def example(tmp_path: Path) -> Iterator:
    started: list[Server] = []

    def start(module: str, *args: str, env: dict[str, str] | None = None) -> Server:
        started.append(serve_example(tmp_path, module, *args, env=env))
        return started[-1]

    yield start
    for srv in started:
        srv.stop()


def fetch(url: str, headers: dict[str, str] | None = None, data: bytes | None = None,
          method: str | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {}, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_csp_example(example) -> None:
    srv = example("guide_csp")
    status, headers, _ = fetch(srv.url + "/")
    csp = headers["Content-Security-Policy"]
    assert status == 200
    assert "img-src 'self' data: https://images.example" in csp
    assert "style-src 'self';" in csp


def guide_toml(marker: str) -> str:
    text = (ROOT / "docs" / "GUIDE.md").read_text()
    for block in re.findall(r"```toml\n(.*?)```", text, re.S):
        if marker in block:
            return block
    raise AssertionError(f"no GUIDE toml block containing {marker!r}")


def test_hosts_example(tmp_path: Path) -> None:
    config = tmp_path / "guide-hosts.toml"
    config.write_text(guide_toml("# guide-hosts.toml"))
    srv = start_server("--workers", "1", "--config", str(config))
    try:
        def call(method: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
            conn = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
            conn.request(method, "/", headers=headers)
            resp = conn.getresponse()
            resp.read()
            conn.close()
            return resp.status, dict(resp.getheaders())

        assert call("POST", {"Host": "rebound.attacker.test"})[0] == 400
        status, headers = call("GET", {"Host": "www.example.com", "X-Forwarded-Proto": "https"})
        assert status == 301 and headers["Location"] == "https://example.com/"
        status, headers = call("GET", {"Host": "example.com", "X-Forwarded-Proto": "https"})
        assert status == 200 and "; Secure" in headers["Set-Cookie"]
    finally:
        srv.stop()


def test_csrf_example(example) -> None:
    srv = example("guide_csrf")
    _, headers, body = fetch(srv.url + "/")
    token = headers["Set-Cookie"].split(";", 1)[0].split("=", 1)[1]
    assert f'<input type="hidden" name="_csrf" value="{token}"' in body.decode()


def test_ops_example(tmp_path: Path) -> None:
    config = tmp_path / "guide-ops.toml"
    config.write_text(guide_toml("# guide-ops.toml"))
    token = re.search(r'ops_token = "([^"]+)"', config.read_text()).group(1)  # type: ignore[union-attr]
    # The test runner acts as a trusted proxy so that X-Forwarded-For can name an outside client.
    srv = start_server("--workers", "1", "--config", str(config), env={"VANGO_TRUSTED_PROXIES": "127.0.0.1"})
    try:
        outside = {"X-Forwarded-For": "203.0.113.5"}
        assert fetch(srv.url + "/_vango/metrics", headers=outside)[0] == 403
        assert fetch(srv.url + "/_vango/metrics", headers={**outside, "Authorization": f"Bearer {token}"})[0] == 200
        assert fetch(srv.url + "/_vango/metrics", headers={"X-Forwarded-For": "10.20.3.4"})[0] == 200
        assert fetch(srv.url + "/_vango/health", headers=outside)[2] == b'{"status": "ok"}'
    finally:
        srv.stop()


def test_routes_example(example) -> None:
    srv = example("guide_routes")
    status, headers, body = fetch(srv.url + "/")
    token = re.search(r'name="_csrf" value="([^"]+)"', body.decode()).group(1)  # type: ignore[union-attr]
    assert headers["Cache-Control"] == "no-store"
    cookie = {"Cookie": f"vango_csrf={token}"}
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
    conn.request("POST", "/contact", body=b"message=hi&_csrf=" + token.encode(), headers={**cookie, **form})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    assert resp.status == 303 and resp.headers["Location"] == "/?sent=1"
    assert "sent=1" in resp.headers["Set-Cookie"] and "HttpOnly" in resp.headers["Set-Cookie"]
    assert fetch(srv.url + "/contact", data=b"message=forged", headers={**cookie, **form})[0] == 403
    assert json.loads(fetch(srv.url + "/api/messages/0")[2]) == {"message": "hi"}
    assert fetch(srv.url + "/api/messages/5")[0] == 404
    assert fetch(srv.url + "/webhooks/payment", data=b"{}")[0] == 202


def test_page_response_example(tmp_path: Path) -> None:
    namespace: dict = {}
    exec(compile(guide_block("def OldPricing"), "GUIDE", "exec"), namespace)
    from vango_mp.routes import Response
    from vango_mp.vdom.mount import Root

    response = Response()
    root = Root(namespace["OldPricing"](), context={"response": response})
    root.render_initial()
    assert (response.status, response.redirect_to) == (301, "/pricing")
    live = Root(namespace["OldPricing"](), context={})
    live.render_initial()
    assert "Moved to /pricing" in live.html()


def test_static_example(example, tmp_path: Path) -> None:
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "app.css").write_text("h1 { color: teal }\n")
    srv = example("guide_static")
    _, _, body = fetch(srv.url + "/")
    href = re.search(r'href="(/_vango/assets/app\.[0-9a-f]+\.css)"', body.decode()).group(1)  # type: ignore[union-attr]
    status, headers, css = fetch(srv.url + href)
    assert status == 200 and css == b"h1 { color: teal }\n" and "immutable" in headers["Cache-Control"]
    assert fetch(srv.url + "/favicon.ico")[0] == 200


def test_url_policy_example(example) -> None:
    srv = example("guide_urls")
    status, _, body = fetch(srv.url + "/")
    html = body.decode()
    assert status == 200
    assert 'href="sms:+15550100" id="sms"' in html  # allowed by the app's policy
    assert 'href="about:blank" id="js"' in html  # never allowed


def test_pages_example(example) -> None:
    srv = example("guide_pages")

    def get(path: str) -> tuple[int, dict[str, str], str]:
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=5)  # redirects not followed
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read().decode()
        conn.close()
        return resp.status, dict(resp.getheaders()), body

    status, _, body = get("/items/7")
    assert status == 200
    assert re.search(r'id="shell".*id="items-layout".*id="item-id" data-type="int"[^>]*>Item #7<', body, re.S)
    assert 'id="new-item"' in get("/items/new")[2]
    status, _, body = get("/hello/Zo%C3%AB%20Smith")
    assert status == 200 and "Hello, Zoë Smith!" in body
    assert ">docs/a b.txt<" in get("/files/docs/a%20b.txt")[2]
    status, _, body = get("/")
    assert 'id="shell"' in body and 'id="items-layout"' not in body
    for unknown in ("/items/abc", "/items/99999999999999999999", "/nope"):
        status, _, body = get(unknown)
        assert status == 404 and 'id="not-found"' in body and 'id="shell"' in body, unknown
    assert 'id="items-layout"' in get("/items/abc")[2]  # the layouts of its prefix
    status, headers, _ = get("//items/./7/?tab=2")
    assert status in (301, 308) and headers["Location"] == "/items/7?tab=2"
    status, headers, _ = get("/members")
    assert status in (302, 303) and headers["Location"] == "/?login=1"
    assert get("/old-pricing")[0] == 410


def test_navigation_example(example) -> None:
    import asyncio

    from vango_mp.testing import TestClient

    srv = example("guide_nav")

    async def go() -> None:
        async with TestClient(srv.url) as client:
            page = await client.open("/people?q=a")
            assert page.title == "People" and page.texts("#people li") == ["ada", "alan", "grace"]
            await page.fill("#q", "li")  # the query is written with replace
            assert page.url.endswith("/people?q=li") and page.texts("#people li") == ["linus"]
            await page.click("a[href='/people/linus']")  # a live navigation, same session
            assert page.title == "Linus" and page.text("#name") == "Linus"
            await page.back()  # kept alive: the filter is as it was
            assert page.url.endswith("/people?q=li") and page.texts("#people li") == ["linus"]
            await page.navigate("/people/ada")
            await page.click("#all")  # navigate() from a handler
            assert page.url.endswith("/people") and page.title == "People"

    asyncio.run(go())


def test_events_example(example) -> None:
    import asyncio

    from vango_mp.testing import TestClient

    srv = example("guide_events")

    async def go() -> None:
        async with TestClient(srv.url) as client:
            page = await client.open("/")
            await page.fire("#pad", "click", {"x": 12, "y": 34, "button": 0, "shift": True})
            assert page.text("#where") == "12,34 with shift"
            await page.press("#cmd", "Enter", ctrl=True)
            assert page.text("#command") == "ran with ctrl=True"
            await page.press("#cmd", "Escape")
            assert page.text("#command") == "cancelled"
            await page.fill("#search", "abc")
            assert page.text("#where") == "abc"
            assert json.loads(page.attr("#cmd", "data-vo") or "{}") == {"keydown": {"k": ["Enter", "Escape"]}}
            assert json.loads(page.attr("#search", "data-vo") or "{}") == {"input": {"d": 300}}

    asyncio.run(go())


def test_components_and_testing_examples(example) -> None:
    """The component example served, and the testing example run against it as printed."""
    import asyncio

    srv = example("guide_components")
    namespace: dict[str, object] = {}
    exec(compile(guide_block("# test_guide_components.py"), "test_guide_components.py", "exec"), namespace)
    asyncio.run(namespace["check_tags"](srv.url))  # type: ignore[operator]


def test_forms_example(example) -> None:
    import asyncio

    from vango_mp.testing import TestClient

    srv = example("guide_forms")

    async def go() -> None:
        async with TestClient(srv.url) as client:
            page = await client.open("/")
            await page.change("#plan", "pro")
            assert page.text("#problem") == "name is required"
            await page.fill("#name", "Ada", wait=False)
            await page.change("#name")
            assert page.text("#problem") == ""
            await page.check("#python", wait=False)
            await page.check("#rust", wait=False)
            await page.submit("form")
            assert page.text("#saved") == "Ada (pro) likes python and rust"

    asyncio.run(go())


def test_async_example(example) -> None:
    import asyncio

    from vango_mp.testing import TestClient

    srv = example("guide_async")

    async def go() -> None:
        async with TestClient(srv.url) as client:
            page = await client.open("/", connect=False)
            assert page.text("#entry") == "…"  # the first load renders the resource loading
            await page.connect()
            await page.wait_for_text("#entry", "HELLO")
            await page.fill("#word", "nope")
            await page.wait_for_text("#entry", "error: no entry for 'nope'")
            await page.click("#save", wait=False)
            await page.wait_for(lambda p: p.events_done)  # disable_with: EVENT_DONE ends the busy state
            assert page.text("#saves") == "saved 1 times"
            await page.wait_for_text("#ticks", "alive")

    asyncio.run(go())


def test_errors_example(example) -> None:
    import asyncio

    from vango_mp.errors import GENERIC_NOTICE
    from vango_mp.testing import TestClient

    srv = example("guide_errors")

    async def go() -> None:
        async with TestClient(srv.url) as client:
            page = await client.open("/")
            assert page.text("#chart") == "average 3.5"
            await page.click("#clear")
            assert page.text("#fallback") == "Chart failed: ZeroDivisionError"
            await page.click("#retry")
            assert page.text("#chart") == "average 1.0"
            await page.click("#save", wait=False)
            await page.wait_for(lambda p: p.app_errors)
            assert page.app_errors[-1] == (GENERIC_NOTICE, None)
            await page.click("#clear")  # the page goes on
            assert page.exists("#fallback")

    asyncio.run(go())
    status, _, body = fetch(srv.url + "/broken")
    assert status == 500 and b"Sorry, this page is broken" in body
    assert "the save failed" in srv.output()


def guide_code(lang: str, marker: str) -> str:
    text = (ROOT / "docs" / "GUIDE.md").read_text()
    for block in re.findall(rf"```{lang}\n(.*?)```", text, re.S):
        if marker in block:
            return block
    raise AssertionError(f"no GUIDE {lang} block containing {marker!r}")


def test_interop_example(example, tmp_path: Path) -> None:
    import asyncio

    from vango_mp.testing import TestClient

    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "guide_interop.js").write_text(guide_code("js", "// static/guide_interop.js"))
    srv = example("guide_interop")

    async def go() -> None:
        async with TestClient(srv.url) as client:
            page = await client.open("/")
            status, _, script = fetch(srv.url + (page.attr("script", "src") or ""))
            assert status == 200 and b"VangoHooks" in script  # the page script, an asset (no inline script)
            await page.click("#save", wait=False)
            await page.wait_for(lambda p: len(p.calls) >= 3)
            assert page.emitted("toast") == [{"text": "Saved"}]
            assert page.calls[1:] == [["c", "focus", "#title"], ["c", "add_class", "#form", "saved"]]
            assert json.loads(page.attr("#help-btn", "data-js-click") or "") == [["toggle", "#help"]]
            await page.push_hook("#chart", "pick", {"index": 2})
            assert page.text("#picked") == "bar 2"
            await page.push_hook("#chart", "pick", {"index": 12})
            hid = int(page.attr("#chart", "data-hid") or 0)
            await page.wait_for(lambda p: ["r", hid] in p.calls)  # revert: the hook undoes its change
            page.send_island("map", {"zoom": 99})  # refused by the validator
            page.send_island("map", {"zoom": 4})
            await page.wait_for_text("#zoom", "zoom 4")
            await page.click("#zoom-out", wait=False)
            await page.wait_for(lambda p: ["i", "map", {"zoom": 1}] in p.calls)

    asyncio.run(go())


def test_reload_example(tmp_path: Path) -> None:
    module = tmp_path / "guide_reload.py"
    module.write_text(guide_block("# guide_reload.py"))
    srv = start_server("--dev", "--reload", "--workers", "1", "--app", "guide_reload:app", cwd=tmp_path)
    try:
        assert b">Hello<" in srv.get("/")[2]
        module.write_text(module.read_text().replace('"Hello"', '"Hello again"'))
        deadline = time.monotonic() + 10
        while b"Hello again" not in srv.get("/")[2]:
            assert time.monotonic() < deadline, srv.output()
            time.sleep(0.05)
    finally:
        srv.stop()


def test_auth_example(example) -> None:
    import urllib.parse

    from tests.integration.accounts import page, request, set_cookies

    srv = example("guide_auth")
    status, headers, _ = request(srv, "GET", "/members")
    assert (status, headers["Location"]) == (302, "/login")
    form, _ = page(srv, "/login")

    def post(path: str, cookie: str, **fields: str):
        body = urllib.parse.urlencode({"_csrf": form.csrf, **fields}).encode()
        return request(srv, "POST", path, cookie=cookie, body=body,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})

    status, headers, _ = post("/login", form.cookie, name="ada", password="wrong")
    assert (status, headers["Location"]) == (303, "/login?failed=1")
    status, headers, _ = post("/login", form.cookie, name="ada", password="lovelace")
    assert (status, headers["Location"]) == (303, "/members")
    line = set_cookies(headers)["vango_login"]
    assert "HttpOnly" in line and "SameSite=Lax" in line
    cookie = form.cookie + "; " + line.split(";", 1)[0]
    members, status = page(srv, "/members", cookie)
    assert status == 200 and "Hello ada" in members.html  # the first HTML has the user
    status, headers, _ = post("/logout", cookie)
    assert (status, headers["Location"]) == (303, "/login")
    assert "expires=Thu, 01 Jan 1970" in set_cookies(headers)["vango_login"]


def test_upload_example(example) -> None:
    import asyncio

    from tests.integration.accounts import hid_of, open_live, stream_upload, texts, upload_headers

    srv = example("guide_upload")
    sheet = b"a,b\n1,2\n3,4\n"

    async def go() -> None:
        live = await open_live(srv, "/", "")
        path = f"/_vango/upload?hid={hid_of(live.page.html, 'sheet')}"
        status, body = await asyncio.to_thread(stream_upload, srv, path, upload_headers(
            live, [("data.csv", "text/csv", len(sheet))]), [sheet], len(sheet))
        assert status == 200, body
        await live.frames_until(lambda f: "3 rows" in texts([f]))
        status, body = await asyncio.to_thread(stream_upload, srv, path, upload_headers(
            live, [("notes.txt", "text/plain", 3)]), [], 3)
        assert status == 415 and b"notes.txt: type text/plain is not allowed (allowed: .csv, text/csv)" in body
        live.ws.close()

    asyncio.run(go())


# -- operating it: the metrics sink, the status page, JSON logs ----------------------


def test_metrics_sink_example(example) -> None:
    import asyncio

    from vango_mp.testing import TestClient

    srv = example("guide_sink")

    async def clicks() -> None:
        async with TestClient(srv.url) as client:
            page = await client.open("/")
            for _ in range(3):
                await page.click("#click")
            assert page.text("#click") == "3 clicks"

    asyncio.run(clicks())
    tally = json.loads(fetch(srv.url + "/tally")[2])
    assert tally["events"] == 3 and tally["slowest_event_s"] > 0


def test_status_page_example(tmp_path: Path) -> None:
    config = tmp_path / "guide-status.toml"
    config.write_text(guide_toml("# guide-status.toml"))
    token = re.search(r'status_token = "([^"]+)"', config.read_text()).group(1)  # type: ignore[union-attr]
    srv = start_server("--workers", "2", "--config", str(config), env={"VANGO_TRUSTED_PROXIES": "127.0.0.1"})
    try:
        status, _, body = fetch(srv.url + "/_vango/status")
        assert status == 200 and body.count(b"data-worker=") == 2
        outside = {"X-Forwarded-For": "203.0.113.5"}
        assert fetch(srv.url + "/_vango/status", headers=outside)[0] == 403
        assert fetch(srv.url + "/_vango/status", headers={**outside, "Authorization": f"Bearer {token}"})[0] == 200
    finally:
        srv.stop()


def test_json_logs_example(tmp_path: Path) -> None:
    config = tmp_path / "guide-logs.toml"
    config.write_text(guide_toml("# guide-logs.toml"))
    srv = start_server("--workers", "1", "--config", str(config))
    try:
        assert fetch(srv.url + "/counter", headers={"X-Request-Id": "guide-1"})[0] == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            lines = [json.loads(line) for line in srv.output().splitlines() if line.strip()]
            access = [r for r in lines if r.get("request_id") == "guide-1" and r["logger"] == "vango_mp.access"]
            if access:
                break
            time.sleep(0.05)
        assert access and access[0]["path"] == "/counter" and access[0]["status"] == 200
        assert access[0]["worker"] == 0
    finally:
        srv.stop()
