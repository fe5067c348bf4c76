"""A protocol-level test client: drive a running vango-mp server without a browser.

It speaks the wire protocol of ``docs/PROTOCOL.md`` exactly as
``static/vango.js`` does — same HELLO, same event payloads, same ACK and
RESYNC rules — and keeps a pure-Python DOM (:mod:`vango_mp.vdom.apply`) that
the server's PATCHES and FULL frames are applied to, so a test reads the page
as a browser would show it::

    from vango_mp.testing import TestClient

    async def test_counter():
        async with TestClient("http://127.0.0.1:8080") as client:
            page = await client.open("/counter")      # GET (SSR) + WebSocket + HELLO/WELCOME
            assert page.text("#count") == "Count: 0"  # the SSR HTML, before any event
            await page.click("#inc")                  # EVENT, then waits for the PATCHES frame
            assert page.text("#count") == "Count: 1"

            await page.disconnect()                   # the session detaches on the server
            await page.resume()                       # HELLO with session id + last seq
            assert page.text("#count") == "Count: 1"  # state survived

            todos = await client.open("/todos")
            await todos.fill("#new-todo", "milk")     # sets the value, sends an input event
            await todos.submit("form")                # submit event with the form's fields
            assert todos.texts("li.todo span") == ["milk"]

            await page.click('a[href="/todos"]')      # live navigation: NAVIGATE, then the NAV frame
            assert page.title == "Todos · vango-mp" and page.path == "/todos"
            await page.back()                         # NAVIGATE pop: the counter page again
            assert page.url.endswith("/counter")

The client runs on asyncio with Tornado's HTTP client and WebSocket client;
use it from ``asyncio.run(...)``, an async pytest test, or any coroutine.

**Pages.** :meth:`TestClient.open` GETs the page, parses the SSR root
(``#vango-root``) and the bootstrap (``window.__vango``), keeps the cookies
the response set (the CSRF cookie among them) and, unless ``connect=False``,
opens the WebSocket — sending ``Origin`` (the server's own origin by default)
and the cookies, as a browser would — says HELLO and awaits WELCOME. A
:class:`Page` then exposes ``session_id``, ``worker`` (from WELCOME),
``last_seq``, ``state`` (:class:`PageState`: loaded / connecting / open /
closed), and ``closed_code`` / ``closed_reason`` once the socket closed
(1006 when it died without a close frame). ``status`` is the HTTP status:
any page carrying the bootstrap opens, so an app's 404 page does (a
non-200 without it raises :class:`PageLoadError`). ``title`` is the page's
``<title>`` (then each navigation's).

**Navigation.** A :class:`Page` is a browser tab, as ``vango.js`` drives one.
Clicking a link (:meth:`Page.click` on an ``<a href>`` or anything inside
one, or :meth:`Page.click_link` by text or selector) follows it like the
browser: a same-origin link navigates live on the same socket and session
(NAVIGATE push, then the server's NAV frame: its patches applied, the
history and title updated); a ``#fragment`` on the page shown only adds a
history entry; ``data-vango-reload``, another origin, or a socket that is
not open load the page in full (the socket goes away with 1001, a new
document and session; another origin leaves the page closed at that URL);
``target=_blank`` and ``download`` links raise :class:`NoHandler`. A link
under a ``data-ve`` click listener sends the click first; an ``<a>`` that
listens itself sends only its click. :meth:`Page.navigate` is
``window.vango.navigate(url, {replace})``; :meth:`Page.back` and
:meth:`Page.forward` move through ``history`` and send NAVIGATE pop for an
entry of the same document (a full load for one of an earlier document).
A NAV the server sends unasked (``navigate()`` in a handler, a page writing
its query) is applied the same way; a NAV asking for a full load (mode 3)
is followed. ``url`` is the address bar (absolute, with the #fragment;
the server's URL wins over the one asked for, the fragment is kept when
the path is the one asked for), ``path`` the path and query the server
named (what HELLO says on a reconnect), ``history`` the list of
``[url, document]`` entries with ``history_index``, ``navs_applied`` the
NAV frames applied. Where the browser would fall back to a full load after
5 s without a NAV, the test client raises :class:`FrameTimeout`.
:meth:`Page.hover` sends PREFETCH when ``vango.js`` would on hover, focus
or touch (links with ``data-prefetch``, or every link when the page's
``__vango.prefetch`` is true; ``data-prefetch="false"`` opts out; once per
URL per 30 s; the 100 ms hover delay is not waited for) and says whether it
did; :meth:`Page.prefetch` sends one as is.

**Reading the page.** Selectors are the simple CSS that
:func:`vango_mp.vdom.apply.select` understands (``#id``, ``tag``,
``.class``, ``[attr]``, ``[attr=value]`` and ``~= ^= $= *=``, descendant
and child combinators, ``,`` lists).
:meth:`Page.query`, :meth:`Page.query_all`, :meth:`Page.text`,
:meth:`Page.texts`, :meth:`Page.attr`, :meth:`Page.exists`,
:meth:`Page.count`. A missing element raises :class:`ElementNotFound`.

**Events.** :meth:`Page.click`, :meth:`Page.fill` (input event),
:meth:`Page.change`, :meth:`Page.check`, :meth:`Page.submit`,
:meth:`Page.press` (keydown) find the element, then the nearest
ancestor-or-self whose ``data-ve`` lists the event (as the browser client's
delegation does; no listener raises :class:`NoHandler`), send an EVENT with the
browser's payload and, by default, wait for the next PATCHES or FULL frame
(``wait=False`` returns right after sending; ``timeout`` overrides the
client's default of 5 s; a timeout raises :class:`FrameTimeout`). Like the
browser, clicking a submit button of a form that listens for ``submit``
sends the form's ``submit`` instead of a click. Frames the server pushes on its
own (a global signal, a timer) also count as "the next frame": to assert on
shared state use :meth:`Page.wait_for_text` or :meth:`Page.wait_for`, which
re-check after every frame until a predicate holds.
:meth:`Page.fire` sends any other event (``mousemove``, ``scroll``,
``keyup``...) with the payload given (docs/PROTOCOL.md lists each kind's);
a listener on a ``<form>`` gets the whole form with ``input``/``change``, as
from the browser. Listener options (``on(fn, debounce=...)``) act in the
browser: the test client sends each event as if they let it through.
:attr:`Page.events_done` lists the ``cseq`` of each EVENT_DONE (a
``loading`` listener's handler finished) and :attr:`Page.app_errors` the
``(text, detail)`` of each ERROR frame (detail only with ``--dev``).

**Sessions.** :meth:`Page.disconnect` closes the socket cleanly (1000, as
``window.vango.disconnect()``); :meth:`Page.drop` kills it without a close
frame (network loss); :meth:`Page.resume` (alias :meth:`Page.connect`)
reconnects with the session id and last applied seq and returns once the
server's replay or FULL has brought the page up to the seq WELCOME announced.
Sequence handling follows the browser: duplicates are ignored, a gap sends
RESYNC (at most every 3 s), ACKs go out after 16 frames or 1 s.

**Protocol abuse.** :meth:`Page.raw_send` sends any bytes (or text) as one
WebSocket message; :meth:`Page.send_frame` encodes a frame list;
:meth:`Page.connect` takes ``csrf=`` / ``origin=`` / ``hello=`` overrides;
:meth:`Page.wait_closed` returns the close code and reason. Anything odd the
server sent (undecodable message, patch that does not apply, unknown frame)
is recorded in :attr:`Page.errors` rather than raised, so a test can assert
``page.errors == []``.

**Benchmarks.** :meth:`Page.handler_hid` resolves a selector to the hid an
event goes to once; :meth:`Page.send_event` then skips the DOM lookup.
:meth:`Page.ping` measures a PING/PONG round trip. ``frames_applied``,
``messages_received``, ``bytes_received``, ``last_message`` (raw bytes) and
``last_frame`` count what arrived. ``bench/load.py`` is built this way.

**Caveats.** Compression is declined unless ``TestClient(compression=True)``
(then permessage-deflate is offered, as browsers do; the server declines it).
Cookies are shared by every page of one client, like one browser profile; use
one client per simulated user. The pure-Python DOM has no layout, scripts or
default actions beyond what is described here (links are followed as
above; no scrolling, no focus).
"""

from .client import Document, PageLoadError, TestClient
from .errors import ElementNotFound, FrameTimeout, NoHandler, SessionClosed, UpgradeRefused, VangoTestError
from .page import Page, PageState
from .wire import decode_server

__all__ = [
    "TestClient",
    "Page",
    "PageState",
    "VangoTestError",
    "PageLoadError",
    "Document",
    "ElementNotFound",
    "NoHandler",
    "FrameTimeout",
    "SessionClosed",
    "UpgradeRefused",
    "decode_server",
]
