"""One page of the test client: its DOM, its WebSocket and its session.

The frame handling mirrors ``static/vango.js`` section "session and
sequence": WELCOME sets the session id (and, for a new session, the seq the
SSR page stands for); PATCHES apply in seq order, duplicates are dropped and
a gap asks for RESYNC; FULL replaces the root's children; ACKs are batched.
NAV frames are PATCHES that also move the page's history, as vango.js's
section "navigation": a Page is a browser tab, its ``history`` a list of
entries, each tagged with the document (full load) it belongs to.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import tornado.httpclient
import tornado.iostream
import tornado.websocket

from .. import protocol
from . import dom
from .errors import ElementNotFound, FrameTimeout, NoHandler, SessionClosed, UpgradeRefused, VangoTestError
from .sequence import Sequence
from .wire import ABNORMAL_CLOSE, MAX_SERVER_MESSAGE, MAX_URL, PREFETCH_TTL, decode_server


class Connector(Protocol):
    """What a page needs of its TestClient: where and how to open its socket."""

    timeout: float
    compression: bool

    def ws_url(self, ws_path: str) -> str: ...

    def upgrade_headers(self, cookies: dict[str, str], origin: Any = ...) -> dict[str, str]: ...

    async def load_document(self, path: str) -> Any: ...  # a client.Document


class PageState(enum.Enum):
    LOADED = "loaded"  # SSR HTML fetched, no socket (yet, or any more before the first connect)
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSED = "closed"


class Page:
    """A loaded page and (once connected) its live session; see the package docstring."""

    def __init__(
        self, client: Connector, url: str, *, status: int, headers: dict[str, str], html: str,
        boot: dict[str, Any], root: dom.DomNode, cookies: dict[str, str], title: str = "",
    ) -> None:
        self.client = client
        parts = urlsplit(url)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        #: Path + query of the page shown, as the server named it (what HELLO says on a reconnect).
        self.location = str(boot.get("path") or _path_of(parts))
        #: The tab's history: ``[url, document]`` entries (url: path, query, #fragment or an
        #: absolute URL elsewhere; document: which full load the entry belongs to).
        self.history: list[list[Any]] = [[_path_of(parts) + (f"#{parts.fragment}" if parts.fragment else ""), 0]]
        self.history_index = 0
        self._document = 0
        self.title = title  # document.title: the SSR <title>, then each NAV's
        self.status = status
        self.headers = headers
        self.html = html  # the SSR document as served
        self.boot = boot  # window.__vango
        self.root = root  # #vango-root, kept up to date by PATCHES/FULL
        self.cookies = cookies
        self.timeout = client.timeout
        self.state = PageState.LOADED
        self.session_id: str | None = None
        self.worker: int | None = boot.get("worker")
        self.ssr_worker: int | None = boot.get("worker")
        self.resumed = False
        self._seq = Sequence(self._send_quietly)
        self.welcome_seq = 0
        self.closed_code: int | None = None
        self.closed_reason: str | None = None
        #: Counters a benchmark or test may read.
        self.frames_applied = 0
        self.navs_applied = 0  # NAV frames applied (each also counts in frames_applied)
        self.messages_received = 0
        self.bytes_received = 0
        self.last_message: bytes | None = None  # raw bytes of the last message received
        self.last_frame: list[Any] | None = None  # and its decoded frame
        #: Oddities from the server (undecodable message, failed patch, unknown frame).
        self.errors: list[str] = []
        self.app_errors: list[tuple[str, str | None]] = []  # ERROR frames: (text, detail: only with --dev)
        self.events_done: list[int] = []  # EVENT_DONE frames: the cseqs whose handlers finished
        #: CALLS frames' calls (vango_mp.interop), in order: ["e", name, detail] an emit, ["c", op, selector, arg?]
        #: a client command, ["r", hid] a hook revert, ["i", island_id, payload] an island message.
        self.calls: list[list[Any]] = []
        self._ws: tornado.websocket.WebSocketClientConnection | None = None
        self._welcome: asyncio.Future[list[Any]] | None = None
        self._waiters: list[asyncio.Future[None]] = []
        self._cseq = 0
        self._pongs: dict[int, asyncio.Future[float]] = {}
        self._patched = False  # a frame changed the SSR DOM: a fresh session cannot claim its hash
        self._asked: tuple[str, str] | None = None  # the NAVIGATE awaiting its NAV: (path, "#fragment")
        self._loading: asyncio.Task[None] | None = None  # a full load a NAV asked for (mode 3)
        self._prefetched: dict[str, float] = {}  # url -> when PREFETCH went out

    def __repr__(self) -> str:
        sid = (self.session_id or "-")[:6]
        return f"<Page {self.path} {self.state.value} session={sid}… seq={self.last_seq}>"

    @property
    def last_seq(self) -> int:
        """The last server seq applied (what HELLO says on a reconnect)."""
        return self._seq.last

    @last_seq.setter
    def last_seq(self, seq: int) -> None:
        self._seq.last = seq

    @property
    def path(self) -> str:
        """Path and query of the page shown, as the server named it (``window.__vango.path`` at first)."""
        return self.location

    @property
    def url(self) -> str:
        """The address bar: an absolute URL with the #fragment, if any."""
        return urljoin(self._origin, self.history[self.history_index][0])

    @property
    def fragment(self) -> str:
        """The address bar's fragment without ``#`` ("" when none)."""
        return urlsplit(self.url).fragment

    @property
    def csrf(self) -> str:
        return str(self.boot.get("csrf") or "")

    # ------------------------------------------------------------ connection

    async def connect(
        self, *, timeout: float | None = None, csrf: str | None = None, origin: str | None | object = dom.UNSET,
        hello: list[Any] | None = None, fresh: bool = False,
    ) -> Page:
        """Open the socket, say HELLO (resuming when a session id is known) and await WELCOME.

        ``csrf``/``origin`` override what is sent; ``hello`` replaces the
        HELLO frame outright; ``fresh=True`` starts a new session even when
        one is known. Raises :class:`SessionClosed` when the server closes
        instead of welcoming, :class:`UpgradeRefused` on an HTTP refusal.
        """
        if self._ws is not None:
            raise RuntimeError(f"connect: expected a closed page, got {self.state.value}")
        timeout = self.timeout if timeout is None else timeout
        if fresh:
            self.session_id = None
        self.state = PageState.CONNECTING
        self.closed_code = self.closed_reason = None
        await self._open_socket(timeout, origin)
        sid = self.session_id
        # The SSR hash vouches for the served DOM only; once patched, a fresh
        # session must send FULL, so claim no hash.
        ssr_hash = None if self._patched else self.boot.get("h")
        frame = hello or [protocol.HELLO, protocol.VERSION, self.csrf if csrf is None else csrf, self.path,
                          sid, self.last_seq if sid else 0, ssr_hash]
        loop = asyncio.get_running_loop()
        self._welcome = loop.create_future()
        self.send_frame(frame)
        deadline = loop.time() + timeout
        await self._await_welcome(timeout)
        if self.last_seq < self.welcome_seq:
            # The replay (or FULL) follows WELCOME at once; return with it applied,
            # so the next frame a caller awaits answers what it sends.
            await self.wait_for(lambda p: p.last_seq >= p.welcome_seq, max(0.0, deadline - loop.time()),
                                what=f"replay up to seq {self.welcome_seq}")
        return self

    async def resume(self, *, timeout: float | None = None) -> Page:
        """Reconnect to the same session; see :meth:`connect`."""
        if self.session_id is None:
            raise RuntimeError("resume: this page never had a session (connect first)")
        return await self.connect(timeout=timeout)

    async def _open_socket(self, timeout: float, origin: str | None | object) -> None:
        request = tornado.httpclient.HTTPRequest(
            self.client.ws_url(str(self.boot.get("ws") or "/_vango/ws")),
            headers=self.client.upgrade_headers(self.cookies, origin),
            connect_timeout=timeout, request_timeout=timeout,
        )
        try:
            self._ws = await tornado.websocket.websocket_connect(
                request, on_message_callback=self._on_message, max_message_size=MAX_SERVER_MESSAGE,
                compression_options={} if self.client.compression else None,
            )
        except tornado.httpclient.HTTPClientError as err:
            self.state = PageState.CLOSED
            raise UpgradeRefused(err.code, err.message or "") from None
        except (OSError, tornado.iostream.StreamClosedError) as err:
            self.state = PageState.CLOSED
            raise SessionClosed(f"cannot connect: {err}", None, str(err)) from None
        # Browsers send WebSocket frames with TCP_NODELAY. Tornado's client
        # leaves Nagle on, so an EVENT written right after an ACK waits for
        # the server's delayed ACK: 40 ms stalls (p99 45 ms vs 1.5 ms measured).
        if self._ws.protocol is not None and self._ws.protocol.stream is not None:
            self._ws.protocol.stream.set_nodelay(True)

    async def _await_welcome(self, timeout: float) -> None:
        assert self._welcome is not None
        try:
            frame = await asyncio.wait_for(asyncio.shield(self._welcome), timeout)
        except asyncio.TimeoutError:
            self.drop()
            raise FrameTimeout(f"no WELCOME within {timeout} s") from None
        finally:
            self._welcome = None
        if not frame or frame[0] != protocol.WELCOME:  # closed first: the close resolves it with []
            raise SessionClosed(
                f"server closed before WELCOME: {self.closed_code} {self.closed_reason!r}",
                self.closed_code, self.closed_reason,
            )

    async def disconnect(self, *, code: int = protocol.Close.NORMAL, reason: str = "",
                         timeout: float | None = None) -> None:
        """Close the socket cleanly (flushing the ACK first, as ``window.vango.disconnect()``)."""
        ws = self._ws
        if ws is None:
            return
        self._seq.flush_ack()
        ws.close(code, reason)
        await self.wait_closed(timeout)

    def drop(self) -> None:
        """Kill the socket without a close frame, as a lost network would."""
        ws = self._ws
        if ws is not None and ws.protocol is not None and ws.protocol.stream is not None:
            ws.protocol.stream.close()
        elif ws is not None:
            ws.close()

    close = disconnect

    async def wait_closed(self, timeout: float | None = None) -> tuple[int | None, str | None]:
        """Wait until the socket is closed; return ``(closed_code, closed_reason)``."""
        if self._ws is not None:
            await self.wait_for(lambda p: p._ws is None, timeout, what="socket close", closed_ok=True)
        return self.closed_code, self.closed_reason

    # ------------------------------------------------------------ sending

    def raw_send(self, data: bytes | str) -> None:
        """Send one WebSocket message as is: bytes as binary, str as text."""
        ws = self._require_socket()
        try:
            future = ws.write_message(data, binary=isinstance(data, bytes))
        except tornado.websocket.WebSocketClosedError:
            raise SessionClosed("socket closed under the send", self.closed_code, self.closed_reason) from None
        future.add_done_callback(_retrieve)

    def _send_quietly(self, frame: list[Any]) -> None:
        # ACK, PONG, RESYNC go out from callbacks: a socket closing meanwhile is not an error.
        try:
            self.send_frame(frame)
        except SessionClosed:
            pass

    def send_frame(self, frame: list[Any]) -> None:
        """Encode (flag byte + msgpack) and send one client frame."""
        self.raw_send(protocol.encode(frame))

    async def send_event(self, hid: int, name: str, payload: dict[str, Any] | None = None, *,
                         wait: bool = True, timeout: float | None = None) -> None:
        """Send EVENT for element ``hid``; with ``wait``, return after the next PATCHES/FULL frame."""
        target = self.frames_applied + 1
        self._cseq += 1
        self.send_frame([protocol.EVENT, self._cseq, hid, name, payload])
        if wait:
            await self.wait_for(lambda p: p.frames_applied >= target, timeout,
                                what=f"a PATCHES/FULL frame after {name} on hid {hid}")

    def emitted(self, name: str) -> list[Any]:
        """The payloads of every ``emit(name, ...)`` this page received, oldest first."""
        return [c[2] for c in self.calls if c[0] == "e" and c[1] == name]

    async def push_hook(self, selector: str, name: str, data: dict[str, Any] | None = None, *,
                        wait: bool = True, timeout: float | None = None) -> None:
        """What a client hook's ``this.pushEvent(name, data)`` on ``selector`` sends; with ``wait``, its patches."""
        hid = int(self.attr(selector, "data-hid") or 0)
        target = self.frames_applied + 1
        self.send_frame([protocol.HOOK, hid, name, data])
        if wait:
            await self.wait_for(lambda p: p.frames_applied >= target, timeout, what=f"a frame after hook {name}")

    def send_island(self, island_id: str, payload: Any) -> None:
        """What an island's ``vango:island`` event sends (answers arrive in :attr:`calls`)."""
        self.send_frame([protocol.ISLAND, island_id, payload])

    async def ping(self, timeout: float | None = None) -> float:
        """Send PING, await the PONG; the round trip in seconds."""
        t = time.monotonic_ns() // 1000 % protocol.MAX_INT
        loop = asyncio.get_running_loop()
        fut = self._pongs[t] = loop.create_future()
        self.send_frame([protocol.PING, t])
        try:
            return await asyncio.wait_for(fut, self.timeout if timeout is None else timeout)
        except asyncio.TimeoutError:
            raise FrameTimeout("no PONG") from None
        finally:
            self._pongs.pop(t, None)

    def _require_socket(self) -> tornado.websocket.WebSocketClientConnection:
        if self._ws is None:
            raise SessionClosed(f"page is {self.state.value}, not connected", self.closed_code, self.closed_reason)
        return self._ws

    # ------------------------------------------------------------ user actions

    async def click(self, selector: str, *, wait: bool = True, timeout: float | None = None) -> None:
        """Click the element: a click EVENT, or the form's submit for a submit button (as a browser)."""
        el = self.query(selector)
        control = dom.closest(el, lambda n: n.tag in ("button", "input"))
        form = dom.form_of(control) if control is not None and dom.is_submit_control(control) else None
        if form is not None and dom.closest_listener(form, "submit") is not None:
            await self._submit_form(form, wait=wait, timeout=timeout)
            return
        listener = dom.closest_listener(el, "click")
        link = dom.closest(el, lambda n: n.tag == "a" and "href" in n.attrs)
        # vango.js: a listening <a> sends its click and stays; a link under another listener does both.
        if link is not None and (listener is None or listener.tag != "a"):
            if listener is not None:
                await self._fire(el, "click", None, selector, wait=False, timeout=timeout)
            await self.follow(link, timeout=timeout)
            return
        await self._fire(el, "click", None, selector, wait=wait, timeout=timeout)

    async def click_link(self, text_or_selector: str, *, timeout: float | None = None) -> Page:
        """Follow a link: by selector, else the first ``<a href>`` whose text is exactly ``text_or_selector``."""
        links = [n for n in self.query_all("a[href]") if dom.text_of(n).strip() == text_or_selector]
        link = links[0] if links else None
        if link is None:
            try:
                link = self.query(text_or_selector)
            except (ElementNotFound, ValueError):
                raise ElementNotFound(f"no link {text_or_selector!r} on {self.path}") from None
        await self.follow(link, timeout=timeout)
        return self

    # ------------------------------------------------------------ navigation

    async def follow(self, link: dom.DomNode, *, timeout: float | None = None) -> Page:
        """What a primary click on ``link`` does in the browser (vango.js ``onClick``).

        A same-origin link navigates live (NAVIGATE push, then the NAV);
        ``data-vango-reload``, another origin or a closed socket load the
        page in full (a new document and session); a ``#fragment`` on this
        page only adds a history entry. ``target`` (other than ``_self``) and
        ``download`` links leave the tab alone: :class:`NoHandler`.
        """
        link = dom.closest(link, lambda n: n.tag == "a" and "href" in n.attrs) or link
        href = link.attrs.get("href")
        if href is None:
            raise NoHandler(f"{link!r} is not a link (no href)")
        target = link.attrs.get("target")
        if (target and target != "_self") or "download" in link.attrs:
            raise NoHandler(f"{href!r} opens another tab or downloads (target/download): "
                            "open it with TestClient.open or get")
        url = urljoin(self.url, href)
        parts = urlsplit(url)
        if "data-vango-reload" in link.attrs or not self._ours(url) or self.state is not PageState.OPEN:
            await self._load(url, timeout=timeout)
        elif parts.fragment and _path_of(parts) == _path_of(urlsplit(self.url)):
            self._push_entry(_path_of(parts) + "#" + parts.fragment)  # the browser scrolls; no server round trip
        else:
            await self._navigate(url, protocol.NAV_PUSH, timeout)
        return self

    async def navigate(self, url: str, *, replace: bool = False, timeout: float | None = None) -> Page:
        """``window.vango.navigate(url, {replace})``: NAVIGATE, then return once its NAV is applied.

        Another origin or a closed socket load the page in full instead.
        Raises :class:`FrameTimeout` when no NAV comes (where the browser
        would fall back to a full load after 5 s: a test wants to know).
        """
        url = urljoin(self.url, url)
        if not self._ours(url) or self.state is not PageState.OPEN:
            await self._load(url, timeout=timeout)
        else:
            await self._navigate(url, protocol.NAV_REPLACE if replace else protocol.NAV_PUSH, timeout)
        return self

    async def back(self, *, timeout: float | None = None) -> Page:
        """The Back button: move one entry back; a live page sends NAVIGATE pop and awaits the NAV."""
        return await self._traverse(-1, timeout)

    async def forward(self, *, timeout: float | None = None) -> Page:
        """The Forward button; see :meth:`back`."""
        return await self._traverse(1, timeout)

    async def hover(self, selector: str) -> bool:
        """Hover (or focus, or touch) a link: PREFETCH when vango.js would send one; True if sent.

        As the browser: links with ``data-prefetch`` (every link when the
        page's ``__vango.prefetch`` is true; ``data-prefetch="false"`` opts
        out), same origin, not the page shown, once per URL per 30 s. The
        browser's 100 ms hover delay is not waited for.
        """
        link = dom.closest(self.query(selector), lambda n: n.tag == "a" and "href" in n.attrs)
        marker = link.attrs.get("data-prefetch") if link is not None else None
        if link is None or (self.boot.get("prefetch") is not True if marker is None else marker == "false"):
            return False
        target = link.attrs.get("target")
        if (target and target != "_self") or "download" in link.attrs or "data-vango-reload" in link.attrs:
            return False
        url = urljoin(self.url, link.attrs["href"])
        if not self._ours(url) or self.state is not PageState.OPEN:
            return False
        path, now = _path_of(urlsplit(url)), time.monotonic()
        if path == self.location or now - self._prefetched.get(path, -PREFETCH_TTL) < PREFETCH_TTL:
            return False
        self._prefetched = {k: t for k, t in self._prefetched.items() if now - t < PREFETCH_TTL}
        self._prefetched[path] = now
        self.prefetch(path)
        return True

    def prefetch(self, url: str) -> None:
        """Send PREFETCH for ``url`` (path and query) as is; no answer comes."""
        self.send_frame([protocol.PREFETCH, url])

    def _ours(self, url: str) -> bool:
        """A URL vango.js asks the server for: this origin, a path the server takes."""
        parts = urlsplit(url)
        path = _path_of(parts)
        return f"{parts.scheme}://{parts.netloc}" == self._origin and not path.startswith("//") \
            and len(path) <= MAX_URL

    async def _navigate(self, url: str, mode: int, timeout: float | None) -> None:
        parts = urlsplit(url)
        path = _path_of(parts)
        self._asked = (parts.path or "/", f"#{parts.fragment}" if parts.fragment else "")
        self._prefetched.pop(path, None)
        await self._await_nav([protocol.NAVIGATE, path, mode], timeout, f"the NAV answering NAVIGATE {path}")

    async def _await_nav(self, frame: list[Any], timeout: float | None, what: str) -> None:
        target = self.navs_applied + 1
        self.send_frame(frame)
        await self.wait_for(lambda p: p.navs_applied >= target, timeout, what=what)
        if self._loading is not None:
            await self._loading

    async def _traverse(self, delta: int, timeout: float | None) -> Page:
        index = self.history_index + delta
        if not 0 <= index < len(self.history):
            raise VangoTestError(f"no history entry {'back' if delta < 0 else 'forward'} from {self.url}")
        self.history_index = index
        entry, document = self.history[index]
        parts = urlsplit(urljoin(self._origin, entry))
        if document != self._document:  # another document: the browser loads it in full
            await self._load(self.url, timeout=timeout, push=False)
        elif _path_of(parts) == self.location:
            pass  # only the #fragment differs: the browser scrolls
        elif self.state is not PageState.OPEN:
            await self._load(self.url, timeout=timeout, push=False)  # vango.js reloads
        else:
            self._asked = None
            await self._await_nav([protocol.NAVIGATE, _path_of(parts), protocol.NAV_POP], timeout,
                                  f"the NAV answering NAVIGATE pop {_path_of(parts)}")
        return self

    def _push_entry(self, url: str, document: int | None = None) -> None:
        del self.history[self.history_index + 1:]
        self.history.append([url, self._document if document is None else document])
        self.history_index += 1

    async def _load(self, url: str, *, timeout: float | None = None, push: bool = True) -> None:
        """A full document load of ``url`` in this tab: the socket goes away (1001), a new page and session.

        Another origin cannot be loaded here: the page records the URL and closes.
        """
        self._asked = None
        if self._ws is not None:
            await self.disconnect(code=protocol.Close.GOING_AWAY, timeout=timeout)
        self._document += 1
        if push:
            self._push_entry(url if not self._ours(url) else _path_of(urlsplit(url), fragment=True))
        else:
            self.history[self.history_index][1] = self._document
        if not self._ours(url):
            self.state = PageState.CLOSED
            return
        doc = await self.client.load_document(_path_of(urlsplit(url)))
        final = urlsplit(doc.url)
        fragment = urlsplit(url).fragment
        self.history[self.history_index][0] = _path_of(final) + (f"#{fragment}" if fragment else "")
        self.status, self.headers, self.html, self.boot, self.root, self.title = (
            doc.status, doc.headers, doc.html, doc.boot, doc.root, doc.title)
        self.location = str(doc.boot.get("path") or _path_of(final))
        self.cookies = dict(getattr(self.client, "cookies", {}))
        self.worker = self.ssr_worker = doc.boot.get("worker")
        self.session_id, self.resumed, self.last_seq, self.welcome_seq = None, False, 0, 0
        self._patched = False
        self._prefetched.clear()
        self.state = PageState.LOADED
        await self.connect(timeout=timeout)

    async def fill(self, selector: str, value: str, *, wait: bool = True, timeout: float | None = None) -> None:
        """Set an input's value and send an input EVENT (only if something listens for input)."""
        el = self.query(selector)
        dom.set_value(el, value)
        if dom.closest_listener(el, "input") is not None:
            await self._fire(el, "input", dom.input_payload(el), selector, wait=wait, timeout=timeout)

    async def change(self, selector: str, value: str | None = None, *, wait: bool = True,
                     timeout: float | None = None) -> None:
        """Optionally set the value, then send a change EVENT."""
        el = self.query(selector)
        if value is not None:
            dom.set_value(el, value)
        await self._fire(el, "change", dom.input_payload(el), selector, wait=wait, timeout=timeout)

    async def check(self, selector: str, checked: bool = True, *, wait: bool = True,
                    timeout: float | None = None) -> None:
        """Set a checkbox/radio and send change (else input, else click) to the nearest listener."""
        el = self.query(selector)
        dom.set_checked(el, checked)
        for name in ("change", "input", "click"):
            if dom.closest_listener(el, name) is not None:
                payload = None if name == "click" else dom.input_payload(el)
                await self._fire(el, name, payload, selector, wait=wait, timeout=timeout)
                return
        raise NoHandler(f"nothing listens for change, input or click on {selector!r}")

    async def submit(self, selector: str = "form", *, wait: bool = True, timeout: float | None = None) -> None:
        """Submit a form (or the form of the matched element) with its named fields."""
        el = self.query(selector)
        form = el if el.tag == "form" else dom.form_of(el)
        if form is None:
            raise ElementNotFound(f"{selector!r} is not a form nor inside one")
        await self._submit_form(form, wait=wait, timeout=timeout)

    async def press(self, selector: str, key: str, *, ctrl: bool = False, shift: bool = False,
                    alt: bool = False, meta: bool = False, wait: bool = True, timeout: float | None = None) -> None:
        """Send a keydown EVENT with the key and modifiers."""
        payload = {"key": key, "code": "", "repeat": False, "ctrl": ctrl, "shift": shift, "alt": alt, "meta": meta}
        await self._fire(self.query(selector), "keydown", payload, selector, wait=wait, timeout=timeout)

    async def fire(self, selector: str, name: str, payload: dict[str, Any] | None = None, *, wait: bool = True,
                   timeout: float | None = None) -> None:
        """Send any event (``mousemove``, ``scroll``, ``keyup``...) with the payload the browser would (docs/PROTOCOL.md)
        to the nearest listener, as :meth:`click` does; listener options (debounce...) are the browser's, not applied here."""
        await self._fire(self.query(selector), name, payload, selector, wait=wait, timeout=timeout)

    async def _submit_form(self, form: dom.DomNode, *, wait: bool, timeout: float | None) -> None:
        payload = {"form": dom.form_fields(form)}
        await self._fire(form, "submit", payload, "form", wait=wait, timeout=timeout)

    async def _fire(self, el: dom.DomNode, name: str, payload: dict[str, Any] | None, selector: str, *,
                    wait: bool, timeout: float | None) -> None:
        listener = dom.closest_listener(el, name)
        if listener is None:
            raise NoHandler(f"nothing listens for {name} on {selector!r} or its ancestors")
        if self.state is not PageState.OPEN:
            raise SessionClosed(f"{name} on {selector!r}: page is {self.state.value}", self.closed_code,
                                self.closed_reason)
        if listener.tag == "form" and listener is not el and name in ("input", "change", "focus", "blur"):
            # vango.js: a listener on the form hears the whole form, and which field changed
            payload = {**(payload or {}), "form": dom.form_fields(listener), "field": el.attrs.get("name", "")}
        await self.send_event(dom.hid_of(listener), name, payload, wait=wait, timeout=timeout)

    def handler_hid(self, selector: str, event: str = "click") -> int:
        """The hid an EVENT for ``event`` on ``selector`` is sent to (for benchmarks: resolve once)."""
        listener = dom.closest_listener(self.query(selector), event)
        if listener is None:
            raise NoHandler(f"nothing listens for {event} on {selector!r} or its ancestors")
        return dom.hid_of(listener)

    # ------------------------------------------------------------ reading

    def query_all(self, selector: str) -> list[dom.DomNode]:
        return dom.select(self.root, selector)

    def query(self, selector: str) -> dom.DomNode:
        """The first element matching ``selector``; :class:`ElementNotFound` when none."""
        found = dom.select_one(self.root, selector)
        if found is None:
            raise ElementNotFound(f"no element matches {selector!r} on {self.path}")
        return found

    def exists(self, selector: str) -> bool:
        return dom.select_one(self.root, selector) is not None

    def count(self, selector: str) -> int:
        return len(self.query_all(selector))

    def text(self, selector: str | None = None) -> str:
        """Text content of the first match (of the whole root without a selector)."""
        return dom.text_of(self.root if selector is None else self.query(selector))

    def texts(self, selector: str) -> list[str]:
        return [dom.text_of(n) for n in self.query_all(selector)]

    def attr(self, selector: str, name: str) -> str | None:
        """An attribute of the first match (None when absent); ``value`` reflects :meth:`fill`."""
        return dom.attr_of(self.query(selector), name)

    # ------------------------------------------------------------ waiting

    async def wait_for(self, predicate: Callable[[Page], Any], timeout: float | None = None, *,
                       what: str | None = None, closed_ok: bool = False) -> None:
        """Return once ``predicate(page)`` is true, re-checked after every frame and on close.

        An :class:`ElementNotFound` inside the predicate counts as false.
        Raises :class:`FrameTimeout` after ``timeout`` (default: the
        client's), :class:`SessionClosed` if the socket closes first.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.timeout if timeout is None else timeout)
        while True:
            try:
                if predicate(self):
                    return
            except ElementNotFound:
                pass
            if self._ws is None and not closed_ok:
                raise SessionClosed(
                    f"socket closed ({self.closed_code} {self.closed_reason!r}) while waiting for {what or predicate}",
                    self.closed_code, self.closed_reason)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise FrameTimeout(f"timed out waiting for {what or 'condition'} on {self.path} "
                                   f"(state {self.state.value}, seq {self.last_seq})")
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except asyncio.TimeoutError:
                pass
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    async def wait_for_text(self, selector: str, text: str, timeout: float | None = None) -> None:
        """Wait until the first match of ``selector`` has exactly ``text``."""
        try:
            await self.wait_for(lambda p: p.text(selector) == text, timeout, what=f"{selector} == {text!r}")
        except FrameTimeout as err:
            got = self.text(selector) if self.exists(selector) else "<missing>"
            raise FrameTimeout(f"{err}; {selector} is {got!r}") from None

    async def wait_for_frame(self, timeout: float | None = None) -> None:
        """Wait for the next PATCHES or FULL frame to be applied."""
        target = self.frames_applied + 1
        await self.wait_for(lambda p: p.frames_applied >= target, timeout, what="the next frame")

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # ------------------------------------------------------------ frames in

    def _on_message(self, message: str | bytes | None) -> None:
        if message is None:
            return self._on_close()
        self.messages_received += 1
        self.bytes_received += len(message)
        self.last_message = message if isinstance(message, bytes) else message.encode()
        try:
            frame = decode_server(message)
        except Exception as err:  # anything undecodable: record it; a lost PATCHES shows up as a gap
            self.errors.append(f"undecodable message: {err}")
            return None
        self.last_frame = frame
        handler = self._HANDLERS.get(frame[0])
        if handler is None:
            self.errors.append(f"unknown frame type {frame[0]!r}")
            return None
        try:
            handler(self, frame)
        except (IndexError, TypeError, ValueError) as err:
            self.errors.append(f"malformed frame {frame[0]}: {err}")
        return None

    def _on_welcome(self, f: list[Any]) -> None:
        _, sid, seq, resumed, worker = f[:5]
        if resumed and seq < self.last_seq:
            self.errors.append(f"resumed at seq {seq}, behind our seq {self.last_seq}")
        self.session_id, self.welcome_seq, self.resumed, self.worker = sid, seq, bool(resumed), worker
        # A new session numbers from 0, the SSR page; a WELCOME seq above
        # that announces the FULL that replaces a stale SSR page.
        self._seq.welcomed(bool(resumed))
        self.state = PageState.OPEN
        if self._welcome is not None and not self._welcome.done():
            self._welcome.set_result(f)
        self._notify()

    def _on_patches(self, f: list[Any]) -> None:
        seq, patches = f[1], f[2]
        if not self._seq.next_is(seq):
            return None  # already applied (a replay overlap), or a gap (RESYNC asked)
        try:
            dom.apply_patches(self.root, patches)
        except Exception as err:  # the DOM no longer mirrors the server's tree
            self.errors.append(f"patch frame {seq} failed: {err!r}")
            return None
        self._applied(seq)
        return None

    def _on_full(self, f: list[Any]) -> None:
        dom.replace_children(self.root, f[2])
        self._applied(f[1])

    def _on_nav(self, f: list[Any]) -> None:
        seq, url, mode, title, patches = f[1], f[2], f[3], f[4], f[5]
        if not self._seq.next_is(seq):
            return None  # already applied (a replay overlap), or a gap (RESYNC asked)
        asked, self._asked = self._asked, None
        if mode == protocol.NAV_LOAD:
            self.navs_applied += 1
            self._applied(seq)
            self._loading = asyncio.ensure_future(self._load(urljoin(self.url, url)))
            self._loading.add_done_callback(_retrieve)
            return None
        try:
            dom.apply_patches(self.root, patches)
        except Exception as err:  # the DOM no longer mirrors the server's tree
            self.errors.append(f"NAV frame {seq} failed: {err!r}")
            return None
        # The server's url, with the asked #fragment if the path is the one asked for;
        # an unasked replace (the page wrote its query) keeps the address bar's.
        path = url.split("?")[0]
        if asked is not None:
            fragment = asked[1] if asked[0] == path else ""
        else:
            fragment = f"#{self.fragment}" if mode == protocol.NAV_REPLACE and self.fragment else ""
        if mode == protocol.NAV_PUSH:
            self._push_entry(url + fragment)
        elif mode == protocol.NAV_REPLACE:
            self.history[self.history_index][0] = url + fragment
        self.location = url
        if title:
            self.title = title
        self.navs_applied += 1
        self._applied(seq)
        return None

    def _on_ping(self, f: list[Any]) -> None:
        self._send_quietly([protocol.PONG, f[1]])

    def _on_event_done(self, f: list[Any]) -> None:
        self.events_done.append(int(f[1]))
        self._notify()

    def _on_error(self, f: list[Any]) -> None:
        self.app_errors.append((str(f[1]), None if f[2] is None else str(f[2])))
        self._notify()

    def _on_calls(self, f: list[Any]) -> None:
        self.calls.extend(c for c in f[1] if isinstance(c, list) and c)
        self._notify()

    def _on_pong(self, f: list[Any]) -> None:
        fut = self._pongs.get(f[1])
        if fut is not None and not fut.done():
            fut.set_result(time.monotonic() - f[1] / 1e6)

    _HANDLERS: dict[int, Callable[[Page, list[Any]], None]] = {
        protocol.WELCOME: _on_welcome,
        protocol.PATCHES: _on_patches,
        protocol.FULL: _on_full,
        protocol.NAV: _on_nav,
        protocol.S_PING: _on_ping,
        protocol.S_PONG: _on_pong,
        protocol.EVENT_DONE: _on_event_done,
        protocol.ERROR: _on_error,
        protocol.CALLS: _on_calls,
    }

    def _applied(self, seq: int) -> None:
        self._seq.applied(seq)
        self.frames_applied += 1
        self._patched = True
        self._notify()

    def _on_close(self) -> None:
        ws, self._ws = self._ws, None
        self._seq.stop()
        self.state = PageState.CLOSED
        if ws is not None:
            self.closed_code = ws.close_code if ws.close_code is not None else ABNORMAL_CLOSE
            self.closed_reason = ws.close_reason
        if self._welcome is not None and not self._welcome.done():
            self._welcome.set_result([])
        for fut in self._pongs.values():
            if not fut.done():
                fut.set_exception(SessionClosed("closed before PONG", self.closed_code, self.closed_reason))
        self._notify()


def _path_of(parts: Any, *, fragment: bool = False) -> str:
    """Path and query (and #fragment) of a split URL, as vango.js's ``pathname + search``."""
    out = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return out + (f"#{parts.fragment}" if fragment and parts.fragment else "")


def _retrieve(future: asyncio.Future[Any]) -> None:
    # A write to a socket that closed meanwhile fails its future; the close
    # itself is reported through closed_code, so only mark it retrieved.
    if not future.cancelled():
        future.exception()
