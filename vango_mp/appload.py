"""The one way to load the app to serve: import ``module:attr`` and check it is an App.

Used by the supervisor's preload (``vango-mp --app``), the lone-worker mode
and the benches, so every entry point accepts and rejects the same specs
with the same message.
"""

from __future__ import annotations

import importlib
from typing import Any

from .router import App


class AppLoadError(Exception):
    """The app spec cannot be imported, or names something that is not an App; ``str()`` is one line."""


def load_app(spec: str) -> App:
    """Import ``module:attr`` (``attr`` may be dotted; ``module`` alone means ``module:app``).

    Any error the import raises is the spec's fault and becomes an
    :class:`AppLoadError` naming it, so a typo stops the start with one line
    instead of a traceback.
    """
    module_name, _, attr = spec.partition(":")
    if not module_name:
        raise AppLoadError(f"expected module:attr, got {spec!r}")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in (attr or "app").split("."):
            obj = getattr(obj, part)
    except Exception as exc:  # an app's import-time failure of any kind
        raise AppLoadError(f"cannot load {spec}: {type(exc).__name__}: {exc}") from None
    if not isinstance(obj, App):
        raise AppLoadError(f"{spec} is a {type(obj).__name__}, not a vango_mp.router.App")
    return obj
