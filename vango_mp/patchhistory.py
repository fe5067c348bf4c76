"""A session's patch history: the frames it sent that its client has not acknowledged yet.

A client that reconnects names the last seq it applied; the frames after it
are replayed from here, and past the history it gets a FULL (the
reference's ``PatchHistory``). A session holds one only while frames are
unacknowledged: the ACK that covers the newest drops it, so an idle session
keeps no container (an empty deque alone was 760 B). Frames are kept as
sent, the same ``bytes`` objects the fan-out shares between sessions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

__all__ = ["PatchHistory"]

Frame = tuple[int, bytes]  # (seq, the encoded frame)


class PatchHistory:
    """Frames sent and not yet acknowledged, oldest first, at most ``limit`` of them; ``size`` is their bytes."""

    __slots__ = ("frames", "size")

    def __init__(self, seq: int, frame: bytes) -> None:
        self.frames: list[Frame] = [(seq, frame)]
        self.size = len(frame)

    @classmethod
    def of(cls, frames: Iterable[Frame], limit: int) -> PatchHistory | None:
        """A history holding the newest ``limit`` of ``frames`` (a moved session's), or None if that is none."""
        kept = list(frames)[-limit:] if limit > 0 else []
        if not kept:
            return None
        history = cls(*kept[0])
        history.frames = kept
        history.size = sum(len(f) for _, f in kept)
        return history

    def add(self, seq: int, frame: bytes, limit: int) -> None:
        """Keep ``frame``, forgetting the oldest past ``limit`` (a client that far behind gets a FULL)."""
        frames = self.frames
        if len(frames) >= limit:
            self.size -= len(frames.pop(0)[1])
        frames.append((seq, frame))
        self.size += len(frame)

    def ack(self, seq: int) -> bool:
        """The client applied every frame up to ``seq``: forget those; True when none is left."""
        frames = self.frames
        done = 0
        while done < len(frames) and frames[done][0] <= seq:
            self.size -= len(frames[done][1])
            done += 1
        del frames[:done]
        return not frames

    def after(self, last_seq: int) -> list[bytes] | None:
        """The frames after ``last_seq``, oldest first; None when the oldest needed one is gone."""
        frames = self.frames
        if frames[0][0] > last_seq + 1:
            return None
        return [frame for seq, frame in frames if seq > last_seq]

    def tail(self, max_bytes: int) -> list[Frame]:
        """The newest frames whose bytes add up to at most ``max_bytes``, oldest first (what a blob carries)."""
        out: list[Frame] = []
        size = 0
        for seq, frame in reversed(self.frames):
            size += len(frame)
            if size > max_bytes:
                break
            out.append((seq, frame))
        out.reverse()
        return out

    def __iter__(self) -> Iterator[Frame]:
        return iter(self.frames)

    def __len__(self) -> int:
        return len(self.frames)
