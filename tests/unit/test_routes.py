"""The app-side HTTP helpers without a server: the CSRF token in forms, responses, redirects, middleware."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from vango_mp.routes import (
    HTTPRoute, RedirectNotAllowed, Response, chain, csrf_input, csrf_token, is_relative_url, redirect, to_response,
    validate_external_redirect_url,
)
from vango_mp.vdom import Node, component, h
from vango_mp.vdom.mount import Root


@component
def Form() -> Node:
    return h.form(csrf_input(), h.span(csrf_token(), id="t"))


def render(context: dict[str, Any]) -> str:
    root = Root(Form(), context=context)
    root.render_initial()
    try:
        return root.html()
    finally:
        root.dispose()


def test_the_ssr_token_comes_from_the_render_context() -> None:
    html = render({"csrf": "tok-1", "session": None})
    assert 'type="hidden"' in html and 'name="_csrf"' in html and 'value="tok-1"' in html


def test_a_live_session_supplies_its_browser_token() -> None:
    assert 'value="tok-2"' in render({"session": SimpleNamespace(csrf_token="tok-2")})


def test_without_a_token_the_field_is_empty() -> None:
    assert '<input type="hidden" name="_csrf" value data-hid' in render({"session": SimpleNamespace()})


# -- responses, redirects, routes, middleware ----------------------------------------

@pytest.mark.parametrize("url, ok", [
    ("/", True), ("/thanks?x=1#top", True), ("/a%20b", True),
    ("//evil.example/", False), ("/\\evil.example", False), ("https://evil.example/", False),
    ("javascript:alert(1)", False), ("thanks", False), ("/a b", False), ("/a\r\nSet-Cookie: x=1", False), ("", False),
])
def test_relative_redirects_only(url: str, ok: bool) -> None:
    assert is_relative_url(url) is ok
    if ok:
        assert redirect(url).headers.get("Location") is None and redirect(url).redirect_to == url
    else:
        with pytest.raises(RedirectNotAllowed):
            redirect(url)


@pytest.mark.parametrize("url, expected", [
    ("https://accounts.example/x?y=1", "https://accounts.example/x?y=1"),
    ("HTTPS://Accounts.Example", "https://accounts.example/"),
    ("https://login.sso.example:8443/cb", "https://login.sso.example:8443/cb"),
    ("https://evil.example/", None),
    ("https://accounts.example@evil.example/", None),
    ("https://user:pw@accounts.example/", None),
    ("javascript://accounts.example/%0aalert(1)", None),
    ("//accounts.example/", None),
    ("https://accounts.example\\@evil.example/", None),
    ("https://accounts.example.evil.example/", None),
    ("https://sso.example:9999/", None),
])
def test_external_redirects_only_to_allowed_hosts(url: str, expected: str | None) -> None:
    allowed = ["accounts.example", "*.sso.example:8443"]
    assert validate_external_redirect_url(url, allowed) == expected
    assert validate_external_redirect_url(url, []) is None


def test_redirect_statuses() -> None:
    assert redirect("/x").status == 303 and redirect("/x", 308).status == 308
    with pytest.raises(ValueError):
        redirect("/x", 200)


def test_handler_results_become_responses() -> None:
    assert to_response({"a": 1}).body == b'{"a":1}'
    assert to_response([1]).headers["Content-Type"].startswith("application/json")
    assert to_response("hi").headers["Content-Type"] == "text/plain; charset=utf-8"
    assert to_response(b"\x00").headers["Content-Type"] == "application/octet-stream"
    assert to_response(None).status == 204
    with pytest.raises(TypeError):
        to_response(42)


def test_strict_cookie_arguments() -> None:
    response = Response()
    response.set_cookie("a", "1")
    assert (response.cookies[0].httponly, response.cookies[0].samesite) == (True, "Lax")
    with pytest.raises(ValueError):
        response.set_cookie("a", "1", samesite="lax-ish")


def test_routes_patterns_and_methods() -> None:
    route = HTTPRoute("/api/items/{item_id}", lambda r: None, ["get", "post"])
    assert route.methods == {"GET", "HEAD", "POST"}
    assert route.match("/api/items/7") == {"item_id": "7"} and route.match("/api/items/7/x") is None
    with pytest.raises(ValueError):
        HTTPRoute("/_vango/mine", lambda r: None)
    with pytest.raises(ValueError):
        HTTPRoute("/x", lambda r: None, ["BREW"])


def test_middleware_order_sync_and_async_and_short_circuit() -> None:
    seen: list[str] = []

    async def outer(request, call_next):  # noqa: ANN001, ANN202
        seen.append("outer")
        response = await call_next(request)
        response.set_header("X-Outer", "1")
        return response

    def inner(request, call_next):  # noqa: ANN001, ANN202 - sync: hands on call_next's awaitable
        seen.append("inner")
        return Response.text("stop", 401) if request == "blocked" else call_next(request)

    async def endpoint(request):  # noqa: ANN001, ANN202
        seen.append("endpoint")
        return Response.text("ok")

    run = chain([outer, inner], endpoint)
    response = asyncio.run(run("fine"))  # type: ignore[arg-type]
    assert seen == ["outer", "inner", "endpoint"] and response.headers["X-Outer"] == "1"
    seen.clear()
    response = asyncio.run(run("blocked"))  # type: ignore[arg-type]
    assert seen == ["outer", "inner"] and response.status == 401 and response.headers["X-Outer"] == "1"

    def broken(request, call_next):  # noqa: ANN001, ANN202
        return "not a response"

    with pytest.raises(TypeError):
        asyncio.run(chain([broken], endpoint)("x"))  # type: ignore[arg-type]
