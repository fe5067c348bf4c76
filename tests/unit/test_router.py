"""Page routing (vango_mp.routing, App.resolve/match/mount): canonical URLs, typed parameters and their
decoding, precedence, layouts and their identity across navigation, route middleware, not found, status."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vango_mp.reactive import Signal, on_cleanup, signal
from vango_mp.navigation import mount
from vango_mp.router import App, Match
from vango_mp.routing import (
    INVALID,
    MAX_INT,
    NOT_FOUND,
    Deny,
    ErrorPage,
    InvalidPath,
    NotFoundPage,
    PageRoute,
    Redirect,
    Resolution,
    RouteContext,
    Router,
    canonicalize,
    canonicalize_path,
    is_canonical,
    parse_pattern,
    parse_query,
)
from vango_mp.vdom import Node, Root, component, h, use_effect, use_signal
from vango_mp.vdom.apply import apply_patches, parse_html, select, select_one


@component
def Home() -> Node:
    return h.p("home", id="home")


@component
def Item(id: int) -> Node:
    return h.p(f"item {id} ({type(id).__name__})", id="item-id")


@component
def NewItem() -> Node:
    return h.p("new", id="new")


@component
def Slug(slug: str) -> Node:
    return h.p(slug, id="slug")


@component
def Rest(rest: str) -> Node:
    return h.p(rest, id="rest")


@component
def Hello(name: str) -> Node:
    return h.p(name, id="name")


# -- 1. canonicalisation ----------------------------------------------------------------------

CANONICAL = [
    # input, canonical url, changed
    ("/", "/", False),
    ("", "/", True),
    ("about", "/about", True),
    ("/about", "/about", False),
    ("/about/", "/about", True),
    ("/a/b/c/", "/a/b/c", True),
    ("//a///b", "/a/b", True),
    ("//evil.example/x", "/evil.example/x", True),  # never protocol-relative
    ("/a/./b/.", "/a/b", True),
    ("/a/b/../c", "/a/c", True),
    ("/a/..", "/", True),
    ("/../../etc/passwd", "/etc/passwd", True),  # never above the root
    ("/a/b/../../..//c/", "/c", True),
    ("/a/%2e%2E/b", "/b", True),  # dot segments spelt with escapes, as a browser reads them
    ("/a/.%2e/b", "/b", True),
    ("/a/%2e/b", "/a/b", True),
    ("/a%2Fb", "/a%2Fb", False),  # an encoded slash separates nothing
    ("/a%2F..%2Fb", "/a%2F..%2Fb", False),  # ... so it is no dot segment either
    ("/a/...", "/a/...", False),
    ("/x/?q=a//b/../c", "/x?q=a//b/../c", True),  # the query as it is
    ("/x?q=1&q=2#top", "/x?q=1&q=2#top", False),
    ("/x?", "/x", True),
    ("/x#", "/x", True),
    ("/hello/Zoë Smith", "/hello/Zo%C3%AB%20Smith", True),  # what a browser would send
    ("/hello/Zo%C3%AB%20Smith", "/hello/Zo%C3%AB%20Smith", False),
    ("/hello/Zo%c3%ab", "/hello/Zo%c3%ab", False),  # escapes kept as they are
    ("/100%", "/100%25", True),  # a lone % is a literal percent sign
    ("/100%2", "/100%252", True),
    ("/a|b[c]^", "/a|b[c]^", False),  # browsers send these unencoded
    ("/{x}", "/%7Bx%7D", True),
    ("/q?x=a b&y=ü", "/q?x=a%20b&y=%C3%BC", True),
    ("/q?x=%zz", "/q?x=%25zz", True),
]


@pytest.mark.parametrize(("raw", "url", "changed"), CANONICAL)
def test_canonicalize(raw: str, url: str, changed: bool) -> None:
    canon = canonicalize(raw)
    assert (canon.url, canon.changed) == (url, changed)
    assert canonicalize_path(raw) == url
    assert is_canonical(raw) is (not changed)
    assert not canonicalize(url).changed  # the canonical form is canonical


@pytest.mark.parametrize("raw", [
    "/a\\b", "/\\evil.example", "/a%00b", "/a\x00b", "/a\nb", "/a\tb",
    "https://evil.example/x", "javascript:alert(1)", "mailto:x@y",
    "/a%FFb", "/a%C3", "/\udcff",
])
def test_canonicalize_refuses(raw: str) -> None:
    with pytest.raises(InvalidPath):
        canonicalize(raw)
    assert not is_canonical(raw)


def test_canonicalize_splits_query_and_fragment() -> None:
    canon = canonicalize("/a/b/?x=1&y=/../#frag/..")
    assert (canon.path, canon.query, canon.fragment) == ("/a/b", "x=1&y=/../", "frag/..")


_URL_CHARS = st.sampled_from(list("/./..ab%2e%2F%C3%ABzé?&=#x ")) | st.characters(blacklist_categories=["Cs", "Cc"])


@given(st.lists(_URL_CHARS, max_size=30).map("".join))
def test_canonical_form_is_stable_and_safe(raw: str) -> None:
    try:
        canon = canonicalize(raw)
    except InvalidPath:
        return
    assert canon.path.startswith("/") and not canon.path.startswith("//")
    assert canon.path == "/" or not canon.path.endswith("/")
    assert "//" not in canon.path and "\\" not in canon.path  # (a backslash in the query means nothing)
    assert all(seg not in (".", "..") for seg in canon.path.split("/"))
    assert canon.url.isascii() and " " not in canon.url
    again = canonicalize(canon.url)
    assert again.url == canon.url and not again.changed


# -- 2. typed parameters, decoding once, precedence -----------------------------------------------

ITEM_ROUTES = {"/items/new": NewItem, "/items/{id:int}": Item, "/items/{slug}": Slug, "/items/{rest:path}": Rest}


@pytest.mark.parametrize("order", list(itertools.permutations(ITEM_ROUTES)))
def test_precedence_ignores_dict_order(order: tuple[str, ...]) -> None:
    router = Router({pattern: ITEM_ROUTES[pattern] for pattern in order})
    assert [r.pattern for r in router.routes] == list(ITEM_ROUTES)
    assert router.resolve("/items/new").page is NewItem
    assert router.resolve("/items/42").params == {"id": 42}
    assert router.resolve("/items/42").page is Item
    assert router.resolve("/items/abc").params == {"slug": "abc"}
    assert router.resolve("/items/a/b").params == {"rest": "a/b"}


def test_precedence_is_decided_at_the_leftmost_difference() -> None:
    router = Router({"/{section}/edit": Slug, "/users/{rest:path}": Rest, "/users/{id:int}/edit": Item})
    assert router.resolve("/users/7/edit").page is Item  # static, int, static beats static, path
    assert router.resolve("/users/edit").page is Rest  # a static first segment beats a parameter
    assert router.resolve("/posts/edit").params == {"section": "posts"}


@pytest.mark.parametrize("patterns", [
    ("/a/{x}", "/a/{y}"), ("/a/{x:int}", "/a/{y:int}"), ("/a/{x}", "/a/{y:str}"), ("/f/{a:path}", "/f/{b:path}"),
    ("/a/{x}", "/b/{x}", "/a/{y}"),  # not next to each other in the dict
])
def test_routes_matching_the_same_paths_are_refused(patterns: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="match the same paths"):
        Router({p: Slug for p in patterns})


@pytest.mark.parametrize(("path", "expected"), [
    ("/items/0", 0), ("/items/007", 7), ("/items/%31%32", 12), (f"/items/{MAX_INT}", MAX_INT),
])
def test_int_parameter(path: str, expected: int) -> None:
    r = Router({"/items/{id:int}": Item}).resolve(path)
    assert r.params == {"id": expected} and type(r.params["id"]) is int


@pytest.mark.parametrize("value", [
    str(MAX_INT + 1), "9" * 19 + "0", "9" * 4400, "-1", "+1", "1.5", "1e3", "0x10", "١٢", "12abc", "%20", "1%20",
])
def test_int_parameter_refuses(value: str) -> None:
    router = Router({"/items/{id:int}": Item})
    assert router.resolve(f"/items/{value}").status == 404
    fallback = Router({"/items/{id:int}": Item, "/items/{slug}": Slug}).resolve(f"/items/{value}")
    assert fallback.page is Slug  # no match for int: the next route gets its chance


def test_path_parameter() -> None:
    router = Router({"/files/{rest:path}": Rest, "/files": Home})
    assert router.resolve("/files/a/b/c.txt").params == {"rest": "a/b/c.txt"}
    assert router.resolve("/files/x").params == {"rest": "x"}
    assert router.resolve("/files").page is Home  # one segment or more: /files is its own route
    assert router.resolve("/files/Zo%C3%AB/a%2Fb").params == {"rest": "Zoë/a/b"}
    assert Router({"/files/{rest:path}": Rest}).resolve("/files").status == 404


def test_encoded_slash_never_enters_a_segment_parameter() -> None:
    router = Router({"/u/{name}": Hello})
    assert router.resolve("/u/a%2Fb").status == 404
    assert Router({"/u/{name}": Hello, "/u/{rest:path}": Rest}).resolve("/u/a%2Fb").params == {"rest": "a/b"}


@pytest.mark.parametrize(("raw", "decoded"), [
    ("/hello/Zo%C3%AB%20Smith", "Zoë Smith"),
    ("/hello/Zoë Smith", "Zoë Smith"),  # handed over decoded: not decoded again
    ("/hello/Zo%c3%ab%20Smith", "Zoë Smith"),
    ("/hello/100%25", "100%"),
    ("/hello/100%", "100%"),
    ("/hello/50%2525", "50%25"),  # decoded twice this would read 50%
    ("/hello/a+b", "a+b"),  # + is a space only in a query
    ("/hello/%E2%9C%93", "✓"),
    ("/hello/%3Fq%3D1%23x", "?q=1#x"),
])
def test_parameters_are_decoded_exactly_once(raw: str, decoded: str) -> None:
    app = App({"/hello/{name}": Hello})
    assert app.resolve(raw).params == {"name": decoded}
    assert app.match(raw) == Match("/hello/{name}", Hello, {"name": decoded})
    root = mount(app, raw, worker=0)
    assert select_one(parse_html(root.html()), "#name").text_content() == decoded  # type: ignore[union-attr]


def test_static_segments_compare_decoded() -> None:
    router = Router({"/café/menu": Home})
    assert router.resolve("/caf%C3%A9/menu").page is Home
    assert router.resolve("/café/menu").page is Home
    assert router.resolve("/caf%C3%A9%2Fmenu").status == 404


@pytest.mark.parametrize("pattern", [
    "items", "", "/a//b", "/a/", "/a/./b", "/a/../b", "/file-{id}", "/{id}x", "/{x:float}", "/{a}/{a}",
    "/{rest:path}/x", "/a?b", "/{key}", "/{1x}",
])
def test_bad_patterns(pattern: str) -> None:
    with pytest.raises(ValueError):
        Router({pattern: Home})


def test_pattern_segments() -> None:
    assert [(s.kind.name, s.text) for s in parse_pattern("/files/{id:int}/{n:str}/{x}/{rest:path}")] == [
        ("STATIC", "files"), ("INT", "id"), ("STR", "n"), ("STR", "x"), ("PATH", "rest")]
    assert parse_pattern("/") == ()


# -- 6./7. resolution, query, canonical redirect, status ------------------------------------------


def test_query_is_a_dict_of_lists() -> None:
    assert parse_query("q=a+b%2Bc&tag=x&tag=y&empty=&flag") == {
        "q": ["a b+c"], "tag": ["x", "y"], "empty": [""], "flag": [""]}
    assert parse_query("") == {}
    assert parse_query("n=%C3%AB&bad=%FF") == {"n": ["ë"], "bad": ["\ufffd"]}
    r = Router({"/items": Home}).resolve("/items?q=a&sort=name&q=b")
    assert r.query == {"q": ["a", "b"], "sort": ["name"]} and list(r.query) == ["q", "sort"]


def test_non_canonical_url_redirects_with_the_page_resolved() -> None:
    r = Router({"/items/{id:int}": Item}).resolve("//items/./7/?tab=2")
    assert (r.url, r.redirect, r.redirect_status, r.canonical) == ("/items/7?tab=2", "/items/7?tab=2", 308, False)
    assert r.page is Item and r.params == {"id": 7} and r.query == {"tab": ["2"]}  # a live navigation shows it at once
    assert r.status == 200 and r.http_status == 308
    ok = Router({"/items/{id:int}": Item}).resolve("/items/7?tab=2")
    assert (ok.redirect, ok.redirect_status, ok.canonical, ok.http_status) == (None, None, True, 200)


def test_route_status() -> None:
    @component
    def Gone() -> Node:
        return h.p("gone", id="gone")

    app = App({"/": Home, "/old": PageRoute(Gone, status=410), "/saved": PageRoute(Home, keep_alive=True)})
    gone = app.resolve("/old")
    assert (gone.page, gone.status, gone.http_status) == (Gone, 410, 410)
    assert app.resolve("/").status == 200
    assert app.resolve("/saved").keep_alive and not app.resolve("/").keep_alive
    assert app.resolve("/old/").http_status == 308  # canonical first, then 410
    with pytest.raises(ValueError):
        App({"/x": PageRoute(Home, status=99)})


def test_invalid_url_resolves_to_400() -> None:
    r = App({"/": Home}).resolve("/a\\b")
    assert (r.status, r.pattern, r.page, r.found, r.redirect) == (400, INVALID, ErrorPage, False, None)
    assert r.error and "backslash" in r.error
    root = mount(App({"/": Home}), "/a\\b", worker=0)
    assert select_one(parse_html(root.html()), "#route-error").attrs["data-status"] == "400"  # type: ignore[union-attr]


# -- 5. not found ---------------------------------------------------------------------------------


def test_not_found_default_page() -> None:
    app = App({"/": Home})
    r = app.resolve("/nope/")
    assert (r.status, r.pattern, r.page, r.found) == (404, NOT_FOUND, NotFoundPage, False)
    assert r.redirect is None and not r.canonical and r.url == "/nope"  # an unknown path is never redirected
    assert app.match("/nope") is None
    root = mount(app, "/nope", worker=0)
    assert select_one(parse_html(root.html()), "#not-found") is not None


def test_not_found_app_page_inside_the_matching_layouts() -> None:
    @component
    def Missing() -> Node:
        return h.p("no such thing", id="not-found")

    app = App({"/": Home, "/items/{id:int}": Item}, not_found=Missing, layouts={"/": Shell, "/items": Section})
    r = app.resolve("/items/abc")
    assert (r.status, r.page, r.layouts) == (404, Missing, (Shell, Section))
    assert app.resolve("/other").layouts == (Shell,)
    root = mount(app, "/items/abc", worker=0)
    dom = parse_html(root.html())
    assert select_one(dom, "#shell #section #not-found") is not None


# -- 3. layouts ---------------------------------------------------------------------------------------

layout_log: list[str] = []


def gone_log(what: str) -> None:
    """Log ``what`` when the calling component unmounts."""
    use_effect(lambda: on_cleanup(lambda: layout_log.append(what)))


@component
def Shell(children: Node) -> Node:
    clicks = use_signal(0)
    gone_log("shell gone")
    return h.div(h.button(f"shell {clicks.get()}", id="shell-btn", on_click=lambda: clicks.update(lambda n: n + 1)),
                 children, id="shell")


@component
def Section(page: Node) -> Node:  # takes the page as `page`
    clicks = use_signal(0)
    gone_log("section gone")
    return h.section(h.button(f"section {clicks.get()}", id="section-btn",
                              on_click=lambda: clicks.update(lambda n: n + 1)), page, id="section")


@component
def Detail(children: Node) -> Node:
    return h.article(children, id="detail")


@component
def Counter() -> Node:
    n = use_signal(0)
    gone_log("counter gone")
    return h.button(f"count {n.get()}", id="count", on_click=lambda: n.update(lambda v: v + 1))


@component
def ItemPage(id: int) -> Node:
    seen = use_signal(0)
    gone_log("item page gone")
    return h.div(h.p(f"item {id}", id="item-id"), h.button(f"seen {seen.get()}", id="seen",
                                                          on_click=lambda: seen.update(lambda v: v + 1)))


def layout_app() -> App:
    # the dict order is scrambled on purpose: nesting follows prefix length
    return App({"/": Home, "/counter": Counter, "/items/{id:int}": ItemPage, "/items/{id:int}/edit": Item,
                "/itemsets": Home, "/{slug}": Slug},
               layouts={"/items/{n:int}": Detail, "/": Shell, "/items": Section})


def test_layout_chain_outermost_first() -> None:
    app = layout_app()
    assert app.resolve("/items/3/edit").layouts == (Shell, Section, Detail)
    assert app.resolve("/items/3").layouts == (Shell, Section, Detail)
    assert app.resolve("/counter").layouts == (Shell,)
    assert app.resolve("/itemsets").layouts == (Shell,)  # a prefix is whole segments
    assert app.resolve("/anything").layouts == (Shell,)  # /{slug} does not start with /items
    assert app.router.layouts_for("/items/{id:int}") == (Shell, Section, Detail)
    dom = parse_html(mount(app, "/items/3/edit", worker=0).html())
    assert select_one(dom, "#shell > #section > #detail > #item-id") is not None


def test_layout_needs_a_children_or_page_prop() -> None:
    @component
    def Bad(title: str) -> Node:
        return h.div(title)

    with pytest.raises(TypeError, match="children"):
        App({"/": Home}, layouts={"/": Bad})
    with pytest.raises(ValueError, match="same prefix"):
        App({"/": Home}, layouts={"/a/{x}": Shell, "/a/{y}": Section})
    with pytest.raises(ValueError, match="same prefix"):
        App({"/": Home}, layouts={"/{x}": Detail, "/a": Shell, "/{y}": Section})  # not next to each other


@component
def Navigator(current: Signal[Resolution]) -> Node:
    """What live navigation does: one Root whose content is the current resolution's tree."""
    return current.get().tree()


def click(root: Root, dom: Any, css: str) -> None:
    el = select_one(dom, css)
    assert el is not None and el.hid is not None
    handler = root.handler(el.hid, "click")
    assert handler is not None
    handler()
    go(root, dom)


def go(root: Root, dom: Any) -> None:
    apply_patches(dom, root.rerender())
    assert dom.inner_html() == parse_html(root.html()).inner_html()


def text(dom: Any, css: str) -> str:
    return select_one(dom, css).text_content()  # type: ignore[union-attr]


def test_layouts_keep_their_state_and_the_keyed_page_is_replaced() -> None:
    app = layout_app()
    layout_log.clear()
    current = signal(app.resolve("/items/1"))
    root = Root(Navigator(current=current))
    root.render_initial()
    dom = parse_html(root.html())
    click(root, dom, "#shell-btn")
    click(root, dom, "#section-btn")
    click(root, dom, "#seen")
    assert (text(dom, "#shell-btn"), text(dom, "#section-btn"), text(dom, "#seen")) == ("shell 1", "section 1", "seen 1")

    current.set(app.resolve("/items/2"))  # same route, other parameters: same page instance, new props
    go(root, dom)
    assert (text(dom, "#shell-btn"), text(dom, "#section-btn"), text(dom, "#item-id")) == ("shell 1", "section 1",
                                                                                              "item 2")
    assert text(dom, "#seen") == "seen 1" and layout_log == []

    current.set(app.resolve("/items/2/edit"))  # another page under the same layouts: only the page is replaced
    go(root, dom)
    assert (text(dom, "#shell-btn"), text(dom, "#section-btn")) == ("shell 1", "section 1")
    assert text(dom, "#item-id") == "item 2 (int)" and layout_log == ["item page gone"]

    current.set(app.resolve("/counter"))  # out of /items: the section layout goes, the shell stays
    go(root, dom)
    assert text(dom, "#shell-btn") == "shell 1" and select(dom, "#section") == []
    assert layout_log == ["item page gone", "section gone"]
    click(root, dom, "#count")

    current.set(app.resolve("/items/5"))  # back in: a fresh section, the shell still the same
    go(root, dom)
    assert (text(dom, "#shell-btn"), text(dom, "#section-btn"), text(dom, "#seen")) == ("shell 1", "section 0", "seen 0")
    assert layout_log == ["item page gone", "section gone", "counter gone"]
    root.dispose()


def test_page_is_keyed_by_its_pattern() -> None:
    r = layout_app().resolve("/items/9")
    node = r.tree()
    assert node.fn is Shell.__vango_component__ and node.key is None  # type: ignore[attr-defined]
    section = node.props["children"]
    assert section.fn is Section.__vango_component__ and section.key is None  # type: ignore[attr-defined]
    detail = section.props["page"]
    page = detail.props["children"]
    assert page.fn is ItemPage.__vango_component__ and page.key == "/items/{id:int}"  # type: ignore[attr-defined]
    assert page.props == {"id": 9}


def test_same_page_under_two_patterns_is_two_keys() -> None:
    app = App({"/a": Home, "/b": Home})
    assert app.resolve("/a").tree().key != app.resolve("/b").tree().key


# -- 4. route middleware ----------------------------------------------------------------------------


def admin_only(ctx: RouteContext) -> Redirect | Deny | None:
    if not ctx.path.startswith("/admin"):
        return None
    if ctx.user is None:
        return Redirect("/login?next=" + ctx.url)
    if ctx.user != "root":
        return Deny(403, "Admins only")
    return None


def guarded_app(**kw: Any) -> App:
    return App({"/": Home, "/login": Home, "/admin/{section}": Slug}, route_middleware=[admin_only], **kw)


def test_middleware_allows() -> None:
    r = guarded_app().resolve("/admin/users?x=1", user="root")
    assert (r.page, r.params, r.status, r.redirect, r.decision) == (Slug, {"section": "users"}, 200, None, None)
    assert guarded_app().resolve("/").status == 200


def test_middleware_redirects() -> None:
    r = guarded_app().resolve("/admin/users")
    assert (r.redirect, r.redirect_status, r.http_status) == ("/login?next=/admin/users", 302, 302)
    assert isinstance(r.decision, Redirect) and r.url == "/admin/users"
    other = guarded_app().resolve("/admin//users/")  # the middleware sees the canonical URL
    assert other.redirect == "/login?next=/admin/users"


def test_middleware_denies() -> None:
    r = guarded_app().resolve("/admin/users", user="bob")
    assert (r.status, r.page, r.props, r.redirect) == (403, ErrorPage, {"status": 403, "message": "Admins only"}, None)
    assert r.pattern == "/admin/{section}" and r.found
    root = Root(r.tree())  # what a page mounted at this resolution shows
    root.render_initial()
    dom = parse_html(root.html())
    assert select_one(dom, "#route-error").attrs["data-status"] == "403"  # type: ignore[union-attr]
    assert "Admins only" in dom.inner_html() and "403 Forbidden" in dom.inner_html()


def test_middleware_deny_with_a_page() -> None:
    @component
    def Paywall() -> Node:
        return h.p("subscribe", id="paywall")

    app = App({"/premium": Home}, route_middleware=[lambda ctx: Deny(402, page=Paywall)])
    r = app.resolve("/premium")
    assert (r.status, r.page, r.props) == (402, Paywall, None)


def test_middleware_context_and_order() -> None:
    seen: list[tuple[str, RouteContext]] = []

    def first(ctx: RouteContext) -> None:
        seen.append(("app", ctx))

    def route_level(ctx: RouteContext) -> Redirect:
        seen.append(("route", ctx))
        return Redirect("/a/../elsewhere/", 307)

    def never(ctx: RouteContext) -> None:
        raise AssertionError("after a decision nothing runs")

    app = App({"/items/{id:int}": PageRoute(Item, middleware=[route_level, never]), "/": Home},
              route_middleware=[first])
    r = app.resolve("/items/4?q=z", user={"name": "ann"})
    assert [name for name, _ in seen] == ["app", "route"]
    ctx = seen[0][1]
    assert (ctx.url, ctx.path, ctx.pattern, dict(ctx.params), dict(ctx.query), ctx.user, ctx.page) == (
        "/items/4?q=z", "/items/4", "/items/{id:int}", {"id": 4}, {"q": ["z"]}, {"name": "ann"}, Item)
    assert (r.redirect, r.redirect_status) == ("/elsewhere", 307)  # the target canonicalised
    seen.clear()
    app.resolve("/")
    assert [name for name, _ in seen] == ["app"]
    seen.clear()
    app.resolve("/nope")  # unknown paths run no middleware
    app.resolve("/items/4", run_middleware=False)
    app.match("/items/4")
    assert seen == []


def test_middleware_must_return_a_decision() -> None:
    app = App({"/": Home}, route_middleware=[lambda ctx: "/login"])  # type: ignore[list-item,return-value]
    with pytest.raises(TypeError, match="Redirect or Deny"):
        app.resolve("/")


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "login",
                                    "/a\nb", "javascript:alert(1)"])
def test_redirect_targets_stay_on_site(target: str) -> None:
    with pytest.raises(ValueError):
        Redirect(target)


def test_decisions_are_checked() -> None:
    with pytest.raises(ValueError):
        Redirect("/x", 200)
    with pytest.raises(ValueError):
        Deny(302)


# -- App compatibility ---------------------------------------------------------------------------


def test_app_match_keeps_working_and_pages_mount_through_navigation() -> None:
    app = App({"/": Home, "/hello/{name}": Hello})
    assert app.match("/hello/ann") == Match("/hello/{name}", Hello, {"name": "ann"})
    assert app.match("/hello/ann/") == Match("/hello/{name}", Hello, {"name": "ann"})
    assert app.match("//hello//ann?x=1") is not None
    assert app.match("/") is not None and app.match("/hello") is None
    root = mount(app, "/hello/ann?x=1", worker=3, context={"csrf": "t"})
    assert root.context["params"] == {"name": "ann"} and root.context["location"].resolved.query == {"x": ["1"]}
    assert root.context["worker"] == 3 and root.context["csrf"] == "t" and root.context["path"] == "/hello/ann?x=1"
    assert isinstance(root.context["location"].resolved, Resolution)
    assert [r.pattern for r in app.routes] == ["/", "/hello/{name}"]


def test_schema_covers_layouts_and_not_found() -> None:
    plain = App({"/": Home}).schema
    assert App({"/": Home}).schema == plain
    assert App({"/": Home}, layouts={"/": Shell}).schema != plain
    assert App({"/": Home}, not_found=Counter).schema != plain
