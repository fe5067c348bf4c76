"""vango-mp: a server-driven UI runtime for Python.

The names an app author needs::

    from vango_mp import App, component, h, use_signal

See README.md ("Write your first component") and docs/INTERNALS.md.
"""

from .assets import asset
from .authcheck import AuthCheckConfig, AuthExpiredAction, AuthExpiredConfig, AuthFailureMode, AuthRevoked
from .authlife import broadcast_auth_logout, revalidate_auth, use_user
from .login import login_response, logout_response, read_login
from .uploads import UploadedFile, use_upload
from .errors import AppError
from .events import (
    Event, FocusEvent, FormData, FormEvent, KeyboardEvent, MouseEvent, ResizeEvent, ScrollEvent, TouchEvent, TouchPoint,
)
from .globals import GlobalSignal
from .headers import CSPOptions, default_csp_options, hardened_csp_options
from .observability import MetricsSink, set_metrics_sink
from .reactive import StormError, batch, computed, effect, signal, untracked
from .resources import Resource, use_interval, use_resource
from .routes import Request, Response, csrf_input, csrf_token, redirect, use_request, use_response
from .router import App
from .vdom import Node, component, fragment, h, use_context, use_effect, use_memo, use_signal
from .vdom.component import use_held
from .vdom.boundary import ErrorBoundary
from .vdom.listeners import on

__all__ = [
    "App", "Event", "GlobalSignal", "Node", "batch", "component", "computed", "effect", "fragment", "h",
    "signal", "untracked", "use_context", "use_effect", "use_held", "use_memo", "use_signal",
    "CSPOptions", "default_csp_options", "hardened_csp_options", "csrf_input", "csrf_token",
    "Request", "Response", "redirect", "use_request", "use_response", "asset", "MetricsSink", "set_metrics_sink",
    "on", "MouseEvent", "KeyboardEvent", "ScrollEvent", "ResizeEvent", "TouchEvent", "TouchPoint", "FocusEvent",
    "FormEvent", "FormData", "use_user", "broadcast_auth_logout", "revalidate_auth", "AuthCheckConfig",
    "AuthExpiredAction", "AuthExpiredConfig", "AuthFailureMode", "AuthRevoked", "login_response", "logout_response",
    "read_login", "use_upload", "UploadedFile", "use_resource", "use_interval", "Resource", "ErrorBoundary", "AppError", "StormError",
]
