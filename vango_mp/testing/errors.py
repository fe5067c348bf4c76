"""The test client's errors: all AssertionErrors, so pytest reports them plainly."""

from __future__ import annotations


class VangoTestError(AssertionError):
    """Base of the test client's errors (an AssertionError, so pytest shows it plainly)."""


class ElementNotFound(VangoTestError, LookupError):
    """No element matches the selector."""


class NoHandler(VangoTestError, LookupError):
    """No ancestor-or-self of the element listens for the event (its ``data-ve``)."""


class FrameTimeout(VangoTestError, TimeoutError):
    """The awaited frame, condition or close did not come in time."""


class SessionClosed(VangoTestError, ConnectionError):
    """The socket closed while something waited on it; ``code``/``reason`` say why."""

    def __init__(self, message: str, code: int | None, reason: str | None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class UpgradeRefused(SessionClosed):
    """The server answered the WebSocket upgrade with an HTTP error (``status``)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"WebSocket upgrade refused: HTTP {status} {reason}", None, reason)
        self.status = status
