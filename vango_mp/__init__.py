"""vango-mp: a server-driven UI runtime for Python.

The names an app author needs::

    from vango_mp import App, component, h, use_signal

See README.md ("Write your first component") and docs/INTERNALS.md.
"""

from .assets import asset
from .events import Event
from .globals import GlobalSignal
from .headers import CSPOptions, default_csp_options, hardened_csp_options
from .reactive import batch, computed, effect, signal, untracked
from .routes import Request, Response, csrf_input, csrf_token, redirect, use_request, use_response
from .router import App
from .vdom import Node, component, fragment, h, use_context, use_effect, use_memo, use_signal

__all__ = [
    "App", "Event", "GlobalSignal", "Node", "batch", "component", "computed", "effect", "fragment", "h",
    "signal", "untracked", "use_context", "use_effect", "use_memo", "use_signal",
    "CSPOptions", "default_csp_options", "hardened_csp_options", "csrf_input", "csrf_token",
    "Request", "Response", "redirect", "use_request", "use_response", "asset",
]
