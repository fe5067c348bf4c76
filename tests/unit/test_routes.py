"""The app-side HTTP helpers without a server: the CSRF token in forms."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from vango_mp.routes import csrf_input, csrf_token
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
