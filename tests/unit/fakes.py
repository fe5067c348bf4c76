"""Stand-ins shared by unit tests."""

from __future__ import annotations


class Conn:
    """A session's socket that records how it was closed."""

    def __init__(self) -> None:
        self.closed: tuple[int, str] | None = None

    def send(self, data: bytes) -> None:
        pass

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def pending_output(self) -> int:
        return self.pending

    pending = 0  # bytes the peer has not read (tests set it)
