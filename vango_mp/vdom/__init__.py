"""Virtual DOM: nodes and ``h`` helpers, components and hooks, SSR, diff, and a DOM model.

See docs/INTERNALS.md (vango_mp.vdom) for the contracts and docs/PROTOCOL.md
for the patches the diff emits.
"""

from .component import (
    ComponentInstance,
    HookError,
    component,
    use_context,
    use_effect,
    use_held,
    use_memo,
    use_signal,
)
from .diff import assign_hids, diff
from .html import render_html, vnode_wire
from .mount import Root
from .nodes import VOID_TAGS, ComponentNode, Element, Fragment, Node, Text, fragment, h, normalize

__all__ = [
    "Node", "Element", "Text", "Fragment", "ComponentNode", "h", "fragment", "normalize", "VOID_TAGS",
    "component", "use_signal", "use_memo", "use_effect", "use_context", "use_held", "ComponentInstance", "HookError",
    "render_html", "vnode_wire", "diff", "assign_hids", "Root",
]
