"""DOM helpers of the test client, over :mod:`vango_mp.vdom.apply`'s ``DomNode``.

They reproduce what ``static/vango.js`` reads from the browser's DOM: the
nearest listener (``data-ve``), a form's fields (``FormData``), an input's
payload, and what a user's typing or ticking changes (DOM properties).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..vdom.apply import DomNode, apply_patches, parse_html, select, select_one

__all__ = [
    "DomNode", "apply_patches", "parse_html", "select", "select_one", "UNSET", "extract_root",
    "replace_children", "closest", "closest_listener", "hid_of", "form_of", "is_submit_control",
    "form_fields", "input_payload", "set_value", "set_checked", "text_of", "attr_of",
]

ROOT_ID = "vango-root"
A_EVENTS = "data-ve"
UNSET: Any = object()  # "not given" where None is a meaningful value (e.g. send no Origin)
_NOT_FORM_DATA = frozenset({"submit", "button", "reset", "image", "file"})


def extract_root(html: str) -> DomNode:
    """Parse a served document and return its ``#vango-root`` element."""
    root = select_one(parse_html(html), "#" + ROOT_ID)
    if root is None:
        raise ValueError(f"no #{ROOT_ID} in the page")
    return root


def replace_children(root: DomNode, html: str) -> None:
    """FULL frame: the root's inner HTML becomes ``html``."""
    for child in root.children:
        child.parent = None
    root.children = []
    for child in list(parse_html(html).children):
        root.append(child)


def closest(node: DomNode | None, test: Callable[[DomNode], bool]) -> DomNode | None:
    """The nearest ancestor-or-self element passing ``test``."""
    while node is not None and not node.is_text and node.tag != "#document":
        if test(node):
            return node
        node = node.parent
    return None


def closest_listener(node: DomNode, event: str) -> DomNode | None:
    """The nearest ancestor-or-self whose ``data-ve`` lists ``event`` (vango.js closestListener)."""
    return closest(node, lambda n: event in n.attrs.get(A_EVENTS, "").split())


def hid_of(node: DomNode) -> int:
    hid = node.hid
    if hid is None:
        raise ValueError(f"{node!r} has no data-hid")
    return hid


def form_of(node: DomNode) -> DomNode | None:
    """The form owning ``node`` (its nearest form ancestor; the ``form=`` attribute is not modelled)."""
    return closest(node.parent if node.parent is not None else node, lambda n: n.tag == "form")


def _type(node: DomNode) -> str:
    default = "submit" if node.tag == "button" else "text"
    return node.attrs.get("type", default).lower()


def is_submit_control(node: DomNode) -> bool:
    """A ``<button>`` (type submit by default) or ``<input type=submit|image>``."""
    return node.tag in ("button", "input") and _type(node) in ("submit", "image")


def _checked(node: DomNode) -> bool:
    return bool(node.props.get("checked", "checked" in node.attrs))


def _selected_value(select_node: DomNode) -> str | None:
    options = [n for n in select_node.elements() if n.tag == "option"]
    chosen = [o for o in options if o.props.get("selected", "selected" in o.attrs)]
    pick = chosen[-1] if chosen else (options[0] if options else None)
    if pick is None:
        return None
    return pick.attrs.get("value", pick.text_content())


def field_value(node: DomNode) -> str:
    """What ``el.value`` reads: the property a user or a patch set, else the attribute (textarea: its text)."""
    if "value" in node.props:
        return str(node.props["value"])
    if node.tag == "textarea":
        return node.text_content()
    if node.tag == "select":
        return _selected_value(node) or ""
    if node.tag == "input" and _type(node) in ("checkbox", "radio"):
        return node.attrs.get("value", "on")
    return node.attrs.get("value", "")


def form_fields(form: DomNode) -> dict[str, Any]:
    """``new FormData(form)`` as vango.js sends it: name -> value; a repeated name (a checkbox group,
    a multi-select) -> every value, in order."""
    out: dict[str, Any] = {}
    for node in form.elements():
        name = node.attrs.get("name")
        if not name or node.tag not in ("input", "textarea", "select") or "disabled" in node.attrs:
            continue
        kind = _type(node) if node.tag == "input" else node.tag
        if kind in _NOT_FORM_DATA or (kind in ("checkbox", "radio") and not _checked(node)):
            continue
        if node.tag == "select" and "multiple" in node.attrs:
            values = [o.attrs.get("value", o.text_content()) for o in node.elements()
                      if o.tag == "option" and o.props.get("selected", "selected" in o.attrs)]
        else:
            values = [field_value(node)]
        for value in values:
            have = out.get(name)
            out[name] = value if have is None else [*have, value] if isinstance(have, list) else [have, value]
    return out


def input_payload(node: DomNode) -> dict[str, Any]:
    """The input/change payload vango.js sends: ``value``, plus ``checked`` for checkbox/radio."""
    payload: dict[str, Any] = {"value": field_value(node)}
    if node.tag == "input" and _type(node) in ("checkbox", "radio"):
        payload["checked"] = _checked(node)
    return payload


def set_value(node: DomNode, value: str) -> None:
    """What typing does: the ``value`` property changes, the attribute does not."""
    if node.tag == "select":
        for option in (n for n in node.elements() if n.tag == "option"):
            option.props["selected"] = option.attrs.get("value", option.text_content()) == value
        return
    node.props["value"] = value


def set_checked(node: DomNode, checked: bool) -> None:
    """What ticking does: ``checked`` changes; ticking a radio unticks its named group in the form."""
    if checked and _type(node) == "radio" and node.attrs.get("name"):
        scope = form_of(node) or _top(node)
        for other in scope.elements():
            if other is not node and other.tag == "input" and _type(other) == "radio" \
                    and other.attrs.get("name") == node.attrs["name"]:
                other.props["checked"] = False
    node.props["checked"] = checked


def _top(node: DomNode) -> DomNode:
    while node.parent is not None:
        node = node.parent
    return node


def text_of(node: DomNode) -> str:
    return node.text_content()


def attr_of(node: DomNode, name: str) -> str | None:
    """An attribute; for ``value``/``checked``/``selected`` the live property wins (as a user sees it)."""
    if name in node.props:
        prop = node.props[name]
        if name == "value":
            return str(prop)
        return "" if prop else None
    return node.attrs.get(name)
