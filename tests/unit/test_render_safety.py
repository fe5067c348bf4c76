"""Render safety (issue 17, point 4): raw text that cannot end its element, the URL
policy on every URL attribute, refused ``on*``/reserved/malformed names -- in SSR
HTML, in INSERT/REPLACE payloads and in SET_ATTR patches alike. The last tests
hand the output to Chromium, whose parser is the one that matters."""

from __future__ import annotations

import itertools
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vango_mp.protocol import INSERT, REPLACE, SET_ATTR
from vango_mp.vdom import diff, h, normalize, render_html, vnode_wire
from vango_mp.vdom.apply import apply_patches, parse_html
from vango_mp.vdom.diff import assign_hids
from vango_mp.vdom.nodes import Element, Text
from vango_mp.vdom.safety import (
    BLOCKED_URL,
    URLPolicy,
    UnsafeAttributeError,
    UnsafeMarkupError,
    get_url_policy,
    raw_text,
    set_url_policy,
    url_scheme,
)

ROOT = Path(__file__).resolve().parents[2]


def numbered(*children: Any) -> list:
    nodes = normalize(children)
    assign_hids(nodes, itertools.count(1).__next__)
    return nodes


def html_of(*children: Any) -> str:
    return render_html(numbered(*children))


def noop() -> None:
    pass


@pytest.fixture
def policy() -> Iterator[None]:
    """Restore the process-wide URL policy after a test that changes it."""
    before = get_url_policy()
    yield
    set_url_policy(before)


# region Raw text ------------------------------------------------------------------

END = re.compile(r"</(?P<tag>[a-zA-Z]+)[\t\n\f\r />]")


def raw_region(html: str, tag: str) -> tuple[str, str]:
    """Where the HTML tokenizer ends a raw-text ``tag`` that opens first in ``html``:
    at the first ``</tag`` followed by whitespace, ``/`` or ``>`` (any case).
    Returns (the raw text, what follows)."""
    start = re.search(rf"<{tag}\b[^>]*>", html, re.I)
    assert start, html
    for m in END.finditer(html, start.end()):
        if m.group("tag").lower() == tag:
            return html[start.end():m.start()], html[m.start():]
    raise AssertionError(f"<{tag}> never ends in {html!r}")


def test_style_and_script_text_is_written_raw() -> None:
    css = 'ul > li + p ~ a[href^="x"]::after { content: "&amp; \' <b>" }'
    js = "if (a < b && c > d) { s = \"'&'\"; }"
    html = html_of(h.style(css), h.script(js))
    assert html == f'<style data-hid="1">{css}</style><script data-hid="2">{js}</script>'
    dom = parse_html(html)
    assert [c.text_content() for c in dom.children] == [css, js]


CLOSERS = [
    "</style>", "</STYLE>", "</StYlE >", "</style/x>", "</style\t>", "</style\n", "</script>", "</SCRIPT >",
    "</script/>", "</noscript>", "</textarea>", "</title>", "</xmp>", "</iframe>", "</noembed>",
]


@pytest.mark.parametrize("tag", ["style", "script"])
@pytest.mark.parametrize("closer", CLOSERS)
def test_raw_text_cannot_end_its_element(tag: str, closer: str) -> None:
    payload = f"a {{}} {closer}<img src=x onerror=alert(1)><{tag}>x"
    html = html_of(h.div(h(tag, payload), h.p("after")))
    raw, rest = raw_region(html, tag)
    assert rest.startswith(f"</{tag}><p "), "the text ended the element early"
    assert "<img" in raw  # kept as text, unescaped: raw text is not decoded
    assert "</" not in raw


@pytest.mark.parametrize("ancestor", ["noscript", "textarea", "title", "xmp", "iframe", "noembed", "noframes"])
def test_raw_text_cannot_end_a_raw_text_ancestor(ancestor: str) -> None:
    """<noscript> (with scripting on), <textarea>... end at their own end tag, wherever it sits."""
    html = html_of(h(ancestor, h.style(f"</{ancestor}><img src=x onerror=alert(1)>")), h.p("after"))
    raw, rest = raw_region(html, ancestor)
    assert rest.startswith(f"</{ancestor}><p "), html


def test_script_comment_opener_is_neutralised() -> None:
    """``<!--<script>`` in script data enters the double-escaped state, where our own ``</script>``
    would no longer end the element: the rest of the page would become script."""
    html = html_of(h.script("var a = '<!--<script>'; var b = 1;"), h.p("after"))
    raw, rest = raw_region(html, "script")
    assert "<!--" not in raw and raw == "var a = '<\\!--<script>'; var b = 1;"
    assert rest.startswith("</script><p ")
    # In a style sheet "<!--" is harmless and stays as written.
    assert raw_text("style", "<!-- a {} -->") == "<!-- a {} -->"


def test_neutralised_text_means_the_same_in_js_and_css_strings() -> None:
    # "<\/" and "<\!" are "</" and "<!" in a JS or CSS string: the meaning survives.
    assert raw_text("script", "x = '</script>' + '<!--'") == "x = '<\\/script>' + '<\\!--'"
    assert raw_text("style", 'a::after { content: "</style>" }') == 'a::after { content: "<\\/style>" }'


def test_raw_text_carriage_returns_become_newlines() -> None:
    assert html_of(h.style("a{}\r\nb{}\rc{}")) == '<style data-hid="1">a{}\nb{}\nc{}</style>'


def test_raw_text_element_holds_only_text() -> None:
    with pytest.raises(UnsafeMarkupError, match=r"<style data-hid=1> holds only text"):
        html_of(h.style(h.b("x")))


@pytest.mark.parametrize("tree,raw", [
    (lambda s: h.svg(h.style(s)), False),  # SVG <style> text is parsed: a raw <img> would break out
    (lambda s: h.math(h.style(s)), False),
    (lambda s: h.svg(h.g(h.script(s))), False),
    (lambda s: Element("SVG", None, None, [Element("style", None, None, [Text(s)])]), False),
    (lambda s: h.svg(h.foreignObject(h.style(s))), True),  # HTML integration points: HTML again
    (lambda s: h.svg(h.desc(h.style(s))), True),
    (lambda s: h.math(h.mi(h.style(s))), True),
    (lambda s: h.math(h.mi(h.mglyph(h.style(s)))), False),
    (lambda s: h.svg(h.math(h.mi(h.style(s)))), False),  # <math> inside <svg> is an SVG element
    (lambda s: h.math(h.annotation_xml(h.svg(h.style(s)))), False),
    (lambda s: h.svg(h.foreignObject(h.svg(h.style(s)))), False),
])
def test_style_in_foreign_content_is_escaped(tree: Any, raw: bool) -> None:
    payload = "a > b <img src=x onerror=alert(1)>"
    html = html_of(tree(payload))
    if raw:
        assert payload in html
    else:
        assert "<img" not in html and "a &gt; b &lt;img" in html


# endregion
# region URL policy ----------------------------------------------------------------

UNSAFE_URLS = [
    "javascript:alert(1)", "JavaScript:alert(1)", "JAVASCRIPT:alert(1)", " javascript:alert(1)",
    "\x01\x02 javascript:alert(1)", "java\tscript:alert(1)", "java\nscript:alert(1)", "java\rscript:alert(1)",
    "javascript\t:alert(1)", "\u200bjavascript:alert(1)", "\ufeffjavascript:alert(1)", "\u00a0javascript:alert(1)",
    "ｊａｖａｓｃｒｉｐｔ：alert(1)", "&#106;avascript:alert(1)", "&#x6A;avascript:alert(1)",
    "javascript&colon;alert(1)", "javascript&#58;alert(1)", "java&Tab;script:alert(1)",
    "&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A;alert(1)", "&amp;#106;avascript:alert(1)",
    "vbscript:msgbox(1)", "VBScript:x", "data:text/html,<script>alert(1)</script>",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", "data:image/svg+xml,<svg onload=alert(1)>",
    " data:application/javascript,alert(1)", "file:///etc/passwd", "livescript:x", "jar:x", "blob:x",
    "filesystem:x", "chrome://settings", "wss://evil", "ftp://x", "x-unknown:y",
]
SAFE_URLS = [
    "", "/", "/a/b?c=d&e=f#g", "a/b", "./a:b", "../x", "#top", "?q=a:b", "//cdn.example.com/x.js",
    "http://example.com/", "https://example.com/a?b=c&d=e", "HTTPS://EXAMPLE.COM", "mailto:a@example.com",
    "tel:+1-555-0100", "12:30", "page.html", "https://example.com/javascript:alert(1)",
]

URL_ATTRS = [  # (tag, attribute): every place a URL is navigated to, loaded or submitted
    ("a", "href"), ("area", "href"), ("link", "href"), ("base", "href"), ("img", "src"), ("iframe", "src"),
    ("frame", "src"), ("embed", "src"), ("script", "src"), ("audio", "src"), ("video", "src"),
    ("source", "src"), ("track", "src"), ("input", "src"), ("form", "action"), ("button", "formaction"),
    ("input", "formaction"), ("video", "poster"), ("blockquote", "cite"), ("q", "cite"), ("del", "cite"),
    ("body", "background"), ("table", "background"), ("object", "data"), ("object", "codebase"),
    ("img", "longdesc"), ("html", "manifest"), ("a", "xlink:href"), ("use", "href"), ("image", "xlink:href"),
    ("my-widget", "href"), ("A", "HREF"),
]


def attr_in_html(html: str, name: str) -> str | None:
    """The value the HTML parser reads for ``name`` on the first element (entities decoded)."""
    return parse_html(html).children[0].attrs.get(name.lower())


@pytest.mark.parametrize("tag,name", URL_ATTRS)
@pytest.mark.parametrize("url", UNSAFE_URLS)
def test_unsafe_urls_are_neutralised(tag: str, name: str, url: str) -> None:
    node = Element(tag, {name: url})
    html = html_of(node)
    assert attr_in_html(html, name) == BLOCKED_URL
    assert vnode_wire(node)[2][name] == BLOCKED_URL


@pytest.mark.parametrize("tag,name", URL_ATTRS)
@pytest.mark.parametrize("url", SAFE_URLS)
def test_safe_urls_are_kept(tag: str, name: str, url: str) -> None:
    node = Element(tag, {name: url})
    assert attr_in_html(html_of(node), name) == url
    assert vnode_wire(node)[2][name] == url


def test_other_attributes_are_not_urls() -> None:
    html = html_of(h.div("x", title="javascript:alert(1)", data_x="javascript:1", data="javascript:1"))
    assert html.count("javascript:") == 3  # plain text there, never navigated to


def test_scheme_reading() -> None:
    assert url_scheme("JaVa\tScRiPt:x") == "javascript"
    assert url_scheme("/x:y") is None and url_scheme("1x:y") is None and url_scheme("#a:b") is None
    assert url_scheme("mailto:x") == "mailto"


def test_srcset_and_ping_drop_only_the_bad_entries() -> None:
    node = h.img(src="/a.png", srcset="/a.png 1x, javascript:alert(1) 2x, /b.png 3x,data:text/html,x 4x")
    attrs = vnode_wire(numbered(node)[0])[2]
    assert attrs["srcset"] == "/a.png 1x, /b.png 3x"
    assert h.img(srcset="/a.png 1x, /b.png 2x").attrs["srcset"] == "/a.png 1x, /b.png 2x"
    html = html_of(h.source(srcset=" javascript:x, /c.png 100w"), h.a("p", ping="/p1 javascript:x /p2"))
    assert 'srcset="/c.png 100w"' in html and 'ping="/p1 /p2"' in html
    # "javascript:x,/c.png" (no space) is one URL to a browser: the whole candidate goes.
    assert 'srcset data-hid="1"' in html_of(h.source(srcset="javascript:x,/c.png 100w"))
    # The srcset rule for URLs with commas: a URL ends at whitespace; trailing commas end the candidate.
    assert vnode_wire(numbered(h.img(srcset="/a,b.png 1x,javascript:x, /c.png"))[0])[2]["srcset"] == "/a,b.png 1x, /c.png"


def test_svg_animation_cannot_set_a_javascript_href() -> None:
    html = html_of(h.svg(
        h.a(h.set(attributeName="href", to="javascript:alert(1)"),
            h.animate(attributeName="href", values="/x;javascript:alert(1)"),
            h.animate(attributeName="x", values="0;10;0", **{"from": "0", "to": "10"}),
            **{"xlink:href": "javascript:alert(2)"})))
    assert "javascript" not in html
    assert 'values="0;10;0"' in html and 'to="10"' in html


def test_data_images_only_where_only_an_image_loads(policy: None) -> None:
    png = "data:image/png;base64,iVBORw0KGgo="
    assert attr_in_html(html_of(h.img(src=png)), "src") == BLOCKED_URL  # off by default
    set_url_policy(URLPolicy(data_images=True))
    assert attr_in_html(html_of(h.img(src=png)), "src") == png
    assert attr_in_html(html_of(h.img(src=" DATA:IMAGE/PNG;base64,AA")), "src") == " DATA:IMAGE/PNG;base64,AA"
    assert attr_in_html(html_of(h.video(poster=png)), "poster") == png
    for node in (h.a("x", href=png), h.iframe(src=png), h.object(data=png), h.embed(src=png)):
        assert BLOCKED_URL in html_of(node)
    assert attr_in_html(html_of(h.img(src="data:image/svg+xml,<svg/>")), "src") == BLOCKED_URL
    assert attr_in_html(html_of(h.img(src="data:text/html,<b>")), "src") == BLOCKED_URL


def test_policy_is_configurable(policy: None) -> None:
    set_url_policy(URLPolicy(schemes=frozenset({"https", "ftp"}), allow_relative=False, replacement="#blocked"))
    assert attr_in_html(html_of(h.a("x", href="ftp://x")), "href") == "ftp://x"
    for url in ("http://x", "mailto:a@b", "/relative", "javascript:x"):
        assert attr_in_html(html_of(h.a("x", href=url)), "href") == "#blocked"
    with pytest.raises(ValueError, match="javascript"):
        URLPolicy(schemes=frozenset({"https", "JavaScript:"}))
    with pytest.raises(TypeError):
        set_url_policy({"schemes": ["https"]})  # type: ignore[arg-type]
    set_url_policy(None)
    assert get_url_policy() == URLPolicy()


# endregion
# region Attribute and tag names ----------------------------------------------------


@pytest.mark.parametrize("name", ["onclick", "onClick", "ONLOAD", "onerror", "onmouseover", "onfocusin"])
def test_event_handler_attributes_are_refused_when_built(name: str) -> None:
    with pytest.raises(UnsafeAttributeError, match=rf"<button> attribute '{name}' is an inline event handler"):
        h.button("x", **{name: "alert(1)"})
    assert issubclass(UnsafeAttributeError, ValueError)


@pytest.mark.parametrize("name", ["onclick", "OnError", "onload"])
def test_event_handler_attributes_are_refused_at_render(name: str) -> None:
    node = numbered(h.div(h.img(src="/x.png", id="pic")))[0]
    img = node.children[0]
    img.attrs = {**img.attrs, name: "alert(1)"}  # past the h() check: the renderer still refuses
    with pytest.raises(UnsafeAttributeError, match=rf"<img data-hid=2>: attribute '{name}'"):
        render_html([node])
    with pytest.raises(UnsafeAttributeError, match="<img data-hid=2>"):
        vnode_wire(node)


def test_names_that_are_not_handlers_are_fine() -> None:
    assert html_of(h.div(on="x", on_click=noop, **{"on-demand": "1", "on:x": "2"})) == (
        '<div on="x" on-demand="1" on:x="2" data-hid="1" data-ve="click"></div>'
    )


@pytest.mark.parametrize("name", ['x onload', 'a"b', "a>b", "a=b", "", "x\n", "data-hid", "DATA-HID", "Data-Ve"])
def test_malformed_and_reserved_names_are_refused_at_render(name: str) -> None:
    with pytest.raises(UnsafeAttributeError):
        html_of(Element("p", {name: "1"}))
    with pytest.raises(UnsafeAttributeError):
        vnode_wire(numbered(Element("p", {name: "1"}))[0])


def test_reserved_names_refused_in_any_case_when_built() -> None:
    with pytest.raises(UnsafeAttributeError, match="reserved"):
        h.div(DATA_HID="5")


@pytest.mark.parametrize("tag", ["img src=x onerror=alert(1)", "a>", "b/", "", "1a", 'x"'])
def test_malformed_tags_are_refused(tag: str) -> None:
    with pytest.raises(UnsafeMarkupError, match="not a valid tag name"):
        html_of(Element(tag))
    with pytest.raises(UnsafeMarkupError):
        vnode_wire(numbered(Element(tag))[0])


# endregion
# region Patches -------------------------------------------------------------------


class Tree:
    def __init__(self, *children: Any) -> None:
        self.alloc = itertools.count(1).__next__
        self.nodes = normalize(children)
        assign_hids(self.nodes, self.alloc)
        self.dom = parse_html(render_html(self.nodes))

    def to(self, *children: Any) -> list[list[Any]]:
        new = normalize(children)
        patches = diff(0, self.nodes, new, self.alloc)
        apply_patches(self.dom, patches)
        assert self.dom.inner_html() == parse_html(render_html(new)).inner_html()
        self.nodes = new
        return patches


def test_set_attr_patches_pass_the_url_policy() -> None:
    t = Tree(h.a("x", href="/ok", id="l"), h.form(action="/post"))
    patches = t.to(h.a("x", href=" JAVASCRIPT:alert(1)", id="l"), h.form(action="vbscript:x"))
    assert patches == [[SET_ATTR, 1, "href", BLOCKED_URL], [SET_ATTR, 2, "action", BLOCKED_URL]]
    assert t.to(h.a("x", href="https://example.com/", id="l"), h.form(action="/post")) == [
        [SET_ATTR, 1, "href", "https://example.com/"], [SET_ATTR, 2, "action", "/post"],
    ]


def test_set_attr_refuses_a_handler_attribute() -> None:
    t = Tree(h.p("x"))
    with pytest.raises(UnsafeAttributeError, match="<p data-hid=1>: attribute 'onclick'"):
        t.to(Element("p", {"onclick": "alert(1)"}, None, [Text("x")]))


def test_inserted_and_replaced_subtrees_pass_the_url_policy() -> None:
    t = Tree(h.ul(h.li("a", key="a")), h.p("x"))
    patches = t.to(
        h.ul(h.li("a", key="a"), h.li(h.a("b", href="javascript:alert(1)"), h.img(src="data:text/html,x"), key="b")),
        h.iframe(src="javascript:alert(2)"),
    )
    assert [p[0] for p in patches] == [INSERT, REPLACE]
    inserted, replaced = patches[0][3], patches[1][3]
    assert inserted[3][0][2] == {"href": BLOCKED_URL} and inserted[3][1][2] == {"src": BLOCKED_URL}
    assert replaced[2] == {"src": BLOCKED_URL}
    assert "javascript" not in repr(patches) and "data:" not in repr(patches)


# endregion
# region Properties ----------------------------------------------------------------

PIECES = st.sampled_from([
    "javascript", "JaVaScRiPt", "java", "script", "vbscript", "data", "text/html", "image/png", "http", "https",
    ":", "&#58;", "&colon;", "&#x3a;", "&#", "58", ";", "&", "amp;", "&Tab;", "&NewLine;", "\t", "\n", "\r", " ",
    "\x00", "\x01", "\x0b", "\x1f", "\x7f", "\u200b", "\ufeff", "\u00a0", "ｊ", "：", "/", "//", "#", "?", ",",
    "alert(1)", "1x", "%3a", "\\", "'", '"', "<", ">", "=", "mailto", "tel",
])
HOSTILE = st.lists(PIECES, max_size=10).map("".join)
C0_OR_SPACE = "".join(map(chr, range(0x21)))


def browser_scheme(value: str) -> str | None:
    """The WHATWG URL parser's reading of a scheme, written independently of the renderer's:
    strip leading/trailing C0 controls and spaces, drop tabs and newlines, then the scheme state."""
    value = value.strip(C0_OR_SPACE)
    value = re.sub("[\t\n\r]", "", value)
    m = re.match(r"([a-zA-Z][a-zA-Z0-9+.\-]*):", value)
    return m.group(1).lower() if m else None


@settings(max_examples=400, deadline=None)
@given(HOSTILE)
def test_property_no_rendered_url_has_a_refused_scheme(value: str) -> None:
    """Whatever the value, the href the browser parses out of our HTML (entities decoded, as
    the tokenizer decodes them) and the one a patch sets have no scheme but the allowed ones;
    and a value is changed only when it had to be (or looked like it)."""
    allowed = {None, "http", "https", "mailto", "tel", "about"}
    node = numbered(Element("a", {"href": value}))[0]
    parsed = attr_in_html(render_html([node]), "href")
    wired = vnode_wire(node)[2]["href"]
    assert parsed == wired
    assert browser_scheme(parsed) in allowed  # type: ignore[arg-type]
    assert parsed in (value, BLOCKED_URL)
    if browser_scheme(value) not in allowed:
        assert parsed == BLOCKED_URL


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("<>/!-sStTyYlLeEcCrRiIpP \t\n'\"x"), max_size=40),
       st.sampled_from(["style", "script"]))
def test_property_raw_text_stays_inside(text: str, tag: str) -> None:
    html = html_of(h.div(h(tag, text), h.p("after")))
    raw, rest = raw_region(html, tag)
    assert rest.startswith(f"</{tag}><p ")
    if tag == "script":
        assert "<!--" not in raw
    assert raw.replace("<\\/", "</").replace("<\\!--", "<!--") == text.replace("\r\n", "\n").replace("\r", "\n")


# endregion
# region The client -----------------------------------------------------------------


def test_client_sets_attributes_and_never_evaluates() -> None:
    """vango.js writes patch attributes with setAttribute and text as text nodes; it has no
    eval-like sink (so the server's rules are the whole story), and FULL HTML is parsed in an
    inert <template> (scripts parsed there never run)."""
    js = (ROOT / "vango_mp/static/vango.js").read_text()
    assert re.search(r"setAttr\(el, name, value\) \{\s*el\.setAttribute\(name, value\);", js)
    assert "createTextNode(vnode)" in js
    for sink in ("eval(", "new Function", "Function(", "setTimeout('", 'setTimeout("', "insertAdjacentHTML",
                 "document.write", "outerHTML =", ".srcdoc", "javascript:"):
        assert sink not in js, sink
    assert js.count("innerHTML") == 1 and "const t = this.doc.createElement('template');\n    t.innerHTML = html;" in js


# endregion
# region In a browser ---------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("no chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.set_default_timeout(10_000)
        yield page
        browser.close()


@pytest.mark.browser
def test_in_chromium_hostile_text_and_urls_stay_inert(chromium: Any) -> None:
    """The real parser: hostile text in script/style (also under noscript, textarea and SVG)
    runs nothing, every element stays where the tree put it, and every URL attribute reads
    as a harmless URL to the browser's own URL parser."""
    hostile = "</script></style></noscript></textarea><img src=x onerror=\"window.pwned=1\"><!--<script>"
    tree = h.div(
        h.style(f"#probe > b {{ color: rgb(1, 2, 3) }} /* {hostile} */"),
        h.script(f"window.ran = (window.ran || 0) + 1; var s = '{hostile}';"),
        h.script("window.ran = (window.ran || 0) + 1;"),
        h.noscript(h.style(hostile)), h.textarea(hostile), h.svg(h.style(hostile)),
        h.math(h.mi(h.style(f"/* {hostile} */"))),
        h.p(h.b("styled"), id="probe"),
        *[h.a(f"link {i}", href=u, class_="u") for i, u in enumerate(UNSAFE_URLS + SAFE_URLS)],
        *[Element(t, {n: u, "class": "u"}) for t, n in URL_ATTRS if t not in ("html", "body", "base", "frame", "image")
          for u in UNSAFE_URLS[:6]],
        h.svg(h.a(h.set(attributeName="href", to="javascript:window.pwned=2"), **{"xlink:href": "javascript:x"})),
        id="top",
    )
    html = html_of(tree)
    chromium.set_content(f"<!doctype html><html><body>{html}</body></html>")
    result = chromium.evaluate("""() => {
        const top = document.getElementById('top');
        const kids = [...top.children].map(e => e.localName);
        const schemes = new Set();
        for (const el of top.querySelectorAll('*')) for (const a of el.getAttributeNames()) {
            if (!/^(href|src|action|formaction|poster|cite|background|data|codebase|longdesc|xlink:href|to)$/.test(a)) continue;
            try { schemes.add(new URL(el.getAttribute(a), location.href).protocol); } catch (e) {}
        }
        return {pwned: window.pwned || 0, ran: window.ran, kids, schemes: [...schemes],
                color: getComputedStyle(document.querySelector('#probe > b')).color,
                textarea: document.querySelector('textarea').value};
    }""")
    assert result["pwned"] == 0
    assert result["ran"] == 2  # both scripts ran, each exactly once: neither swallowed the other
    expected = [c.tag for c in tree.children if type(c) is Element]
    assert result["kids"] == [t.lower() for t in expected]
    assert result["color"] == "rgb(1, 2, 3)"  # the raw style sheet applies: `>` was not escaped
    assert result["textarea"] == hostile
    assert set(result["schemes"]) <= {"about:", "http:", "https:", "mailto:", "tel:"}, result["schemes"]


# endregion
