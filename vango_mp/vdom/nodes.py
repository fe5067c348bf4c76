"""Virtual DOM nodes and the ``h`` element helpers.

Nodes are treated as immutable once built: the diff skips a subtree when the
old and new trees hold the *same object* there, and it writes an element's
``hid`` exactly once (0 means "not assigned yet"). Child lists are
normalised when built (flattened, adjacent text merged, empty text dropped)
so that the DOM the browser parses from our HTML has the same child list,
index for index, as the resolved tree: patch indexes depend on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from types import GeneratorType
from typing import Any, Union

from ..reactive import Computed, Signal
from .listeners import Listener, options_attr
from .safety import UnsafeAttributeError, name_problem

__all__ = [
    "Element", "Text", "Fragment", "ComponentNode", "Node", "Child",
    "h", "fragment", "normalize", "VOID_TAGS", "EVENT_NAMES",
]

#: Elements that never have children (the HTML parser closes them at once).
VOID_TAGS = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr",
})
#: Events a handler may be registered for (``on_<name>=fn``); mirrors protocol.EVENT_NAMES (a test compares).
EVENT_NAMES = frozenset({
    "click", "dblclick", "mousedown", "mouseup", "mousemove", "mouseenter", "mouseleave", "contextmenu",
    "keydown", "keyup", "input", "change", "submit", "focus", "blur", "scroll", "resize",
    "touchstart", "touchmove", "touchend", "touchcancel",
})
_ATTR_NAME = re.compile(r"^[a-zA-Z_:][-a-zA-Z0-9_:.]*$")
_EMPTY: dict[str, Any] = {}  # shared "no attrs / no events"; never mutated

# Texts and attribute dicts are immutable once built and carry no hid, so equal
# ones are one object for every session of the worker: the nav, the labels and
# the ids of a page cost nothing per session (an idle /counter session built 17
# Texts and 12 attribute dicts, ~2.7 KiB, all equal to other sessions'). Only
# short values are shared (user data stays out of long-lived memory as much as
# possible), and each table is emptied when full, so it holds at most
# SHARED_MAX entries however many distinct values pages render.
SHARED_MAX = 4096
SHARED_TEXT_LEN = 64  # characters; a longer text gets a Text of its own
SHARED_ATTRS_LEN = 128  # characters per value, and at most SHARED_ATTRS_ITEMS values
SHARED_ATTRS_ITEMS = 4
_texts: dict[str, Text] = {}
_text_lists: dict[str, StaticList] = {}  # the child list of an element whose only child is one shared Text
_attrs: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}


class Text:
    """A text node; it has no hid (SET_TEXT addresses it by parent and index)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Text({self.text!r})"


class Element:
    """An element: tag, attrs (str values, "" for boolean true), event handlers, children, key, hid."""

    __slots__ = ("tag", "attrs", "events", "children", "key", "hid")

    def __init__(
        self,
        tag: str,
        attrs: dict[str, str] | None = None,
        events: dict[str, Callable[..., Any]] | None = None,
        children: list[Node] | None = None,
        key: Any = None,
    ) -> None:
        self.tag = tag
        self.attrs = attrs if attrs is not None else _EMPTY
        self.events = events if events is not None else _EMPTY
        self.children: list[Node] = children if children is not None else []
        self.key = key
        self.hid = 0

    def clone(self) -> Element:
        """Deep copy with hids cleared: for a node already placed elsewhere in some tree."""
        kids = [_clone(c) for c in self.children]
        return Element(self.tag, self.attrs, self.events, StaticList(kids) if is_static(self) else kids, self.key)

    def __repr__(self) -> str:
        key = f", key={self.key!r}" if self.key is not None else ""
        return f"<{self.tag} hid={self.hid}{key} attrs={self.attrs!r} children={len(self.children)}>"


class Fragment:
    """A group of children without a wrapper element; flattened into its parent."""

    __slots__ = ("children",)

    def __init__(self, children: Iterable[Any] = ()) -> None:
        self.children = normalize(children)


class Bound:
    """A Signal or Computed placed as a child: stands for its current value, kept up to date by the mount."""

    __slots__ = ("source",)

    def __init__(self, source: Signal[Any] | Computed[Any]) -> None:
        self.source = source


class ComponentNode:
    """A component call not yet rendered: ``fn(**props)``, identified among siblings by ``key``."""

    __slots__ = ("fn", "props", "key")

    def __init__(self, fn: Callable[..., Any], props: dict[str, Any], key: Any = None) -> None:
        self.fn = fn
        self.props = props
        self.key = key

    def __repr__(self) -> str:
        return f"<component {getattr(self.fn, '__name__', self.fn)!r} key={self.key!r}>"


Node = Union[Element, Text, Fragment, ComponentNode]
#: hid -> element, for a session's elements that have event handlers (kept up to date by the diff).
Registry = dict[int, Element]
Child = Union[Node, str, int, float, bool, None, Iterable[Any]]


def _clone(node: Node) -> Node:
    return node.clone() if type(node) is Element else node


def fragment(*children: Child) -> Fragment:
    """Group children without a wrapper element."""
    return Fragment(children)


# region Children -------------------------------------------------------------


class StaticList(list):  # type: ignore[type-arg]
    """A child list with no component anywhere below it (``normalize`` saw to it): the mount's plan
    never walks it (``plan.compile_plan``). Any other list is walked; same size as a list."""

    __slots__ = ()


def is_static(el: Element) -> bool:
    """No component and no bound signal anywhere below ``el`` (``normalize`` saw to its child list)."""
    return not el.children or type(el.children) is StaticList


def normalize(items: Iterable[Any]) -> list[Node]:
    """Flatten children into nodes: merge adjacent text, drop empty text, None and bools.

    A :class:`StaticList` when no component is in it or below it.
    """
    if type(items) is tuple and len(items) == 1:
        # One element or one text, the usual case: a list built at its size (an
        # appended-to list reserves 4 slots, 24 B more, kept as long as the node).
        c = items[0]
        t = type(c)
        if t is Element:
            return StaticList(items) if is_static(c) else [c]
        if t is ComponentNode:
            return [c]
        if t is str:
            return text_list(c) if c else []
        if t is int or t is float:
            return text_list(str(c))
    out: list[Node] = StaticList()
    buf: list[str] = []
    static = _flatten(items, out, buf)
    if buf:
        text = "".join(buf)
        if text:
            if not out:
                return text_list(text)
            out.append(shared_text(text))
    return out if static else list(out)


def text_list(text: str) -> StaticList:
    """``[Text(text)]`` as a child list: the worker's shared one when ``text`` is short (see SHARED_MAX).

    An element with one text child is most elements (labels, links, headings):
    one list per worker instead of one per element per session. Child lists
    of the resolved tree are never written to, so sharing it is safe; the
    lists the mount rebuilds are its own.
    """
    if len(text) > SHARED_TEXT_LEN:
        return StaticList((Text(text),))
    lst = _text_lists.get(text)
    if lst is None:
        if len(_text_lists) >= SHARED_MAX:
            _text_lists.clear()
        lst = _text_lists[text] = StaticList((shared_text(text),))
    return lst


def shared_text(text: str) -> Text:
    """A Text for ``text``: the worker's shared one when ``text`` is short (see SHARED_MAX)."""
    if len(text) > SHARED_TEXT_LEN:
        return Text(text)
    node = _texts.get(text)
    if node is None:
        if len(_texts) >= SHARED_MAX:
            _texts.clear()
        node = _texts[text] = Text(text)
    return node


def _shared_attrs(attrs: dict[str, str]) -> dict[str, str]:
    """``attrs``, or an equal dict built before (see SHARED_MAX); never mutate the result."""
    if len(attrs) > SHARED_ATTRS_ITEMS:
        return attrs
    for v in attrs.values():
        if len(v) > SHARED_ATTRS_LEN:
            return attrs
    key = tuple(attrs.items())
    shared = _attrs.get(key)
    if shared is None:
        if len(_attrs) >= SHARED_MAX:
            _attrs.clear()
        shared = _attrs[key] = attrs
    return shared


def _flush_text(out: list[Node], buf: list[str]) -> None:
    """The text gathered in ``buf`` as one node of ``out`` (adjacent texts are one DOM text node)."""
    text = "".join(buf)
    buf.clear()
    if text:
        out.append(shared_text(text))


def _flatten(items: Iterable[Any], out: list[Node], buf: list[str]) -> bool:
    """Append ``items`` to ``out``; False if a component is among them or below them."""
    static = True
    for c in items:
        t = type(c)
        if t is Element or t is ComponentNode:
            if buf:
                _flush_text(out, buf)
            out.append(c)
            if static and (t is ComponentNode or not is_static(c)):  # type: ignore[arg-type]
                static = False
        elif t is str:
            buf.append(c)
        elif c is None or t is bool:
            continue
        elif t is Text:
            buf.append(c.text)
        elif t is int or t is float:
            buf.append(str(c))
        elif t is Fragment:
            static = _flatten(c.children, out, buf) and static
        elif isinstance(c, (Signal, Computed)):
            # A bound value: resolved (not rendered) in place, so a change re-resolves the component
            # that placed it without rendering it (Preact Signals' text binding; vdom.mount).
            if buf:
                _flush_text(out, buf)
            out.append(Bound(c))
            static = False
        elif t is list or t is tuple or t is StaticList or t is GeneratorType or isinstance(c, (map, filter, range, zip)):
            static = _flatten(c, out, buf) and static
        elif isinstance(c, str):  # str subclasses (enum.StrEnum, markup-ish types): their text
            buf.append(str.__str__(c))
        elif isinstance(c, (int, float)):
            buf.append(str(c))
        else:
            raise TypeError(
                f"cannot render {t.__name__} as a child: use a node, str, int, float, None, or a list of them"
            )
    return static


# endregion
# region Props ----------------------------------------------------------------

# keyword name -> ("a", attr name) | ("e", event name) | ("k", None); filled lazily
_KWARGS: dict[str, tuple[str, str | None]] = {"key": ("k", None)}


def _kwarg(name: str, tag: str = "") -> tuple[str, str | None]:
    """Classify one keyword argument (cached: the same few names recur on every render)."""
    kind = _KWARGS.get(name)
    if kind is not None:
        return kind
    if name.startswith("on_"):
        event = name[3:]
        if event not in EVENT_NAMES and event != "hook":  # on_hook: a client hook's pushEvent (interop)
            raise ValueError(f"unknown event {event!r} in {name}=: expected one of {sorted(EVENT_NAMES)}")
        kind = ("e", event)
    else:
        attr = name[:-1] if name.endswith("_") else name
        attr = attr.replace("_", "-")
        if not _ATTR_NAME.match(attr):
            raise ValueError(f"invalid attribute name {attr!r}")
        problem = name_problem(attr)  # on* handler text, data-hid/data-ve in any case: refused early too
        if problem is None and attr.lower() == "data-vo":
            problem = "'data-vo' is reserved for the runtime: give listener options with on(fn, ...)"
        if problem is not None:
            raise UnsafeAttributeError(f"<{tag or '?'}> attribute {problem}")
        kind = ("a", attr)
    _KWARGS[name] = kind
    return kind


def _attr_value(value: Any) -> str | None:
    """Attribute value as sent: True -> "", False/None -> omitted, lists -> space-joined truthy items."""
    t = type(value)
    if t is str:
        return value
    if value is True:
        return ""
    if value is False or value is None:
        return None
    if t is list or t is tuple:
        return " ".join(str(v) for v in value if v)
    return str(value)


def _split_kwargs(
    tag: str, kwargs: dict[str, Any]
) -> tuple[dict[str, str], dict[str, Callable[..., Any]], Any]:
    attrs: dict[str, str] = {}
    events: dict[str, Callable[..., Any]] | None = None
    key = None
    for name, value in kwargs.items():
        kind, target = _KWARGS.get(name) or _kwarg(name, tag)
        if kind == "a":
            v = _attr_value(value)
            if v is not None:
                attrs[target] = v  # type: ignore[index]
        elif kind == "e":
            if value is None:
                continue
            if not callable(value):
                raise TypeError(f"<{tag}> {name}= must be callable, got {type(value).__name__}")
            if events is None:
                events = {}
            events[target] = value  # type: ignore[index]
        else:
            key = value
    if events is not None and any(type(fn) is Listener for fn in events.values()):
        vo = options_attr(events)  # the client reads the options from the element (vdom.listeners)
        if vo is not None:
            attrs["data-vo"] = vo
    return _shared_attrs(attrs) if attrs else _EMPTY, events or _EMPTY, key


# endregion
# region h --------------------------------------------------------------------


def _element_factory(tag: str) -> Callable[..., Element]:
    """Build the ``h.<tag>`` function; void tags refuse children."""
    void = tag in VOID_TAGS

    def make(*children: Child, **kwargs: Any) -> Element:
        if kwargs:
            attrs, events, key = _split_kwargs(tag, kwargs)
        else:
            attrs, events, key = _EMPTY, _EMPTY, None
        if children:
            kids = normalize(children)
            if void and kids:
                raise ValueError(f"<{tag}> is a void element and cannot have children")
        else:
            kids = []
        return Element(tag, attrs, events, kids, key)

    make.__name__ = make.__qualname__ = tag
    make.__doc__ = f"Build a <{tag}> element: h.{tag}(*children, key=..., on_click=fn, class_=..., **attrs)."
    return make


# SVG's mixed-case element names: the DOM (createElementNS in an INSERT patch) is case-sensitive.
_SVG_CASE = {name.lower(): name for name in (
    "altGlyph", "altGlyphDef", "altGlyphItem", "animateColor", "animateMotion", "animateTransform",
    "clipPath", "feBlend", "feColorMatrix", "feComponentTransfer", "feComposite", "feConvolveMatrix",
    "feDiffuseLighting", "feDisplacementMap", "feDistantLight", "feDropShadow", "feFlood", "feFuncA",
    "feFuncB", "feFuncG", "feFuncR", "feGaussianBlur", "feImage", "feMerge", "feMergeNode",
    "feMorphology", "feOffset", "fePointLight", "feSpecularLighting", "feSpotLight", "feTile",
    "feTurbulence", "foreignObject", "glyphRef", "linearGradient", "radialGradient", "textPath",
)}


class _H:
    """The element namespace: ``h.div(...)``, ``h.my_widget(...)`` -> <my-widget>; one factory per tag, cached."""

    def __getattr__(self, name: str) -> Callable[..., Element]:
        if name.startswith("_"):
            raise AttributeError(name)
        tag = (name[:-1] if name.endswith("_") else name).replace("_", "-").lower()
        factory = _element_factory(_SVG_CASE.get(tag, tag))
        setattr(self, name, factory)  # later lookups hit the instance dict, not __getattr__
        return factory

    def __call__(self, tag: str, *children: Child, **kwargs: Any) -> Element:
        """``h("my-tag", ...)``: an element by tag name."""
        return getattr(self, tag.replace("-", "_"))(*children, **kwargs)


h = _H()

# endregion


def count_nodes(nodes: list[Any]) -> int:
    """Resolved nodes (elements and texts) in a tree."""
    count = 0
    stack = list(nodes)
    while stack:
        node = stack.pop()
        count += 1
        if type(node) is Element:
            stack.extend(node.children)
    return count
