"""File uploads into a live session: the input hook, the limits, the files a handler gets.

A component asks for an upload input and says what to do with the files::

    @component
    def Avatar() -> Node:
        up = use_upload(save_avatar, accept=["image/*"], max_file_size=5 * 1024 * 1024)
        done, total = up.progress.get()
        return h.div(h.input(type="file", id="avatar", **up.props()),
                     h.progress(value=str(done), max=str(total or 1)), h.p(up.error.get()))

When the user picks files, the client POSTs them (one request, the files
one after another) to ``/_vango/upload`` with the page's CSRF token and its
session id; whichever worker receives it streams the body to temporary
files (Tornado's ``stream_request_body``: never the whole file in memory)
and reports to the worker that owns the session over the bus, which
checks the limits of *that* input before a byte is accepted (refusals set
``up.error``), moves ``up.progress`` while the body arrives and, once it is
complete, calls ``on_upload(files)`` on the session loop with
:class:`UploadedFile` objects. The temporary files are removed when the
handler returns (sync) or its coroutine ends (async) -- ``file.save(dest)``
keeps one -- and when the session ends first.

Limits (:class:`UploadLimits`, per input): ``max_file_size`` 10 MiB,
``max_files`` 10, ``max_total_size`` their product, ``accept`` any type.
The reference text names UploadHandler's knobs (``MaxFileSize``,
``AllowedTypes``) but not their defaults -- its example narrows them to
5 MiB of PNG/JPEG -- so these defaults are ours (common web-framework
values), and each input sets its own. A type is the browser's claim (or the name's extension when it
makes none): check the content itself when it matters (e.g. decode the image).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import mimetypes
import os
import re
import secrets
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from .reactive import Signal, batch
from .security import redact
from .session import Session
from .vdom import use_memo

log = logging.getLogger("vango_mp.uploads")

DEFAULT_MAX_FILE_SIZE = 10 * 1024 * 1024
DEFAULT_MAX_FILES = 10
HARD_MAX_FILES = 100  # files in one request whatever an input allows (they travel in one header)
MAX_ACTIVE_PER_SESSION = 4  # transfers in flight into one session (each input has at most one)
MAX_NAME = 255
DIR_PREFIX = "vango-uploads-"  # temporary directories of upload bodies (one per worker)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

BEGIN, PROGRESS, FINISH, ABORT = "upload.begin", "upload.progress", "upload.finish", "upload.abort"


class UploadRefused(Exception):
    """A request the limits (or the session) refuse, with the HTTP status and a message for the user."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


@dataclass(frozen=True, slots=True)
class FileInfo:
    """What the browser says of one file before sending it."""

    name: str
    type: str
    size: int

    @classmethod
    def of(cls, name: Any, mime: Any, size: Any) -> FileInfo:
        """Validated and cleaned (a bare file name, no control characters); ValueError if malformed."""
        if not isinstance(name, str) or not isinstance(mime, str) or type(size) is not int or size < 0:
            raise ValueError("each file is [name, type, size]")
        clean = _CONTROL.sub("", name.replace("\\", "/").rsplit("/", 1)[-1])[:MAX_NAME] or "file"
        mime = mime.strip().lower()[:MAX_NAME]
        if not mime:
            mime = (mimetypes.guess_type(clean)[0] or "").lower()
        return cls(clean, mime, size)


def type_allowed(info: FileInfo, accept: Sequence[str]) -> bool:
    """``accept`` as an input's: ``image/*``, ``image/png`` or ``.png``; empty allows every type."""
    if not accept:
        return True
    lower = info.name.lower()
    for pattern in accept:
        p = pattern.strip().lower()
        if p.startswith(".") and lower.endswith(p):
            return True
        if p.endswith("/*") and info.type.startswith(p[:-1]):
            return True
        if p == info.type and p:
            return True
    return False


@dataclass(frozen=True, slots=True)
class UploadLimits:
    """What one input accepts; ``max_total_size`` 0 means ``max_file_size * max_files``."""

    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    max_files: int = DEFAULT_MAX_FILES
    max_total_size: int = 0
    accept: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_file_size <= 0 or not 0 < self.max_files <= HARD_MAX_FILES or self.max_total_size < 0:
            raise ValueError(f"upload limits: sizes must be > 0 and max_files in 1..{HARD_MAX_FILES}")

    @property
    def total(self) -> int:
        return self.max_total_size or self.max_file_size * self.max_files

    def check(self, files: Sequence[FileInfo]) -> None:
        """Raise :class:`UploadRefused` with the message a user reads, when ``files`` break a limit."""
        if not files:
            raise UploadRefused("No file selected", 400)
        if len(files) > self.max_files:
            raise UploadRefused(f"Too many files: {len(files)} (at most {self.max_files})", 413)
        for info in files:
            if not type_allowed(info, self.accept):
                raise UploadRefused(f"{info.name}: type {info.type or 'unknown'} is not allowed "
                                    f"(allowed: {', '.join(self.accept)})", 415)
            if info.size > self.max_file_size:
                raise UploadRefused(f"{info.name} is too large: {info.size} bytes "
                                    f"(at most {self.max_file_size} bytes)", 413)
        total = sum(f.size for f in files)
        if total > self.total:
            raise UploadRefused(f"The files are too large together: {total} bytes (at most {self.total} bytes)", 413)


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """One received file: its (client-given, cleaned) ``name``, ``type``, ``size`` and temporary ``path``.

    The path is removed after ``on_upload`` returns; :meth:`save` moves the
    file somewhere it stays.
    """

    name: str
    type: str
    size: int
    path: str

    def open(self, mode: str = "rb") -> IO[Any]:
        """The temporary file, opened (read it in chunks: it may be large)."""
        return open(self.path, mode)

    def save(self, dest: str | os.PathLike[str]) -> int:
        """Move the file to ``dest`` (kept after the handler returns); the size in bytes."""
        shutil.move(self.path, os.fspath(dest))
        return self.size


class Upload:
    """An upload input's state in its component: reactive ``progress`` (received, total) and ``error``.

    ``state`` is ``"idle"``, ``"uploading"``, ``"done"``, ``"refused"`` or
    ``"cancelled"``. :meth:`cancel` stops the transfer in flight.
    """

    def __init__(self) -> None:
        self.progress: Signal[tuple[int, int]] = Signal((0, 0))
        self.error: Signal[str] = Signal("")
        self.state: Signal[str] = Signal("idle")
        self.files: Signal[tuple[str, ...]] = Signal(())
        self.limits = UploadLimits()
        self.on_upload: Callable[[list[UploadedFile]], Any] = lambda files: None
        self.active: str | None = None  # the upload id in flight
        self.registry: Registry | None = None

    def __call__(self) -> None:
        """The input's ``change`` handler: a no-op (the client sends the files by POST, not as an event)."""

    def props(self) -> dict[str, Any]:
        """The attributes of the ``<input type="file">`` (its change handler, ``accept``, ``multiple``)."""
        out: dict[str, Any] = {"on_change": self, "data_vango_upload": "1"}
        if self.limits.accept:
            out["accept"] = ",".join(self.limits.accept)
        if self.limits.max_files > 1:
            out["multiple"] = True
        return out

    @property
    def percent(self) -> int:
        done, total = self.progress.get()
        return 100 if total == 0 and self.state.get() == "done" else (done * 100 // total if total else 0)

    def cancel(self) -> None:
        """Stop the upload in flight (its body is dropped, its temporary files removed)."""
        if self.active is not None and self.registry is not None:
            self.registry.cancel(self.active)

    # -- moved by the registry (on the session loop) --

    def _set(self, state: str, *, error: str | None = None, progress: tuple[int, int] | None = None) -> None:
        with batch():
            self.state.set(state)
            if error is not None:
                self.error.set(error)
            if progress is not None:
                self.progress.set(progress)


def use_upload(on_upload: Callable[[list[UploadedFile]], Any], *, max_file_size: int | None = None,
               max_files: int | None = None, max_total_size: int | None = None,
               accept: Sequence[str] | None = None) -> Upload:
    """An upload input for this component: ``h.input(type="file", **up.props())``; see the module doc.

    ``on_upload(files)`` (sync or async) runs on the session loop with the
    :class:`UploadedFile` list; the limits override the defaults for this
    input only.
    """
    upload: Upload = use_memo(Upload).peek()
    base = UploadLimits()
    upload.limits = UploadLimits(
        max_file_size=max_file_size or base.max_file_size, max_files=max_files or base.max_files,
        max_total_size=max_total_size or 0, accept=tuple(accept or ()))
    upload.on_upload = on_upload
    return upload


# -- the owner's side: uploads of this worker's sessions ---------------------------------------


class Owner(Protocol):
    def get(self, session_id: str) -> Session | None: ...


@dataclass(slots=True)
class Active:
    session: Session
    upload: Upload
    files: list[FileInfo]
    total: int
    cancelled: bool = False
    paths: list[str] = field(default_factory=list)


def remove(paths: Sequence[str]) -> None:
    """Delete temporary upload files (only ours: inside a ``vango-uploads-*`` directory)."""
    for path in paths:
        if not os.path.basename(os.path.dirname(path)).startswith(DIR_PREFIX):
            log.warning("not removing %r: not an upload file", path)
            continue
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError:
            log.exception("could not remove upload file %s", path)


class Registry:
    """The uploads into this worker's sessions; answers the receiving worker (maybe itself) over the bus."""

    def __init__(self, owner: Owner, slot: int) -> None:
        self.owner, self.slot = owner, slot
        self.active: dict[str, Active] = {}
        self.handling: dict[str, tuple[Session, list[str]]] = {}  # handed to on_upload, not yet removed

    def handlers(self) -> dict[str, Callable[[Any, int], Any]]:
        return {BEGIN: lambda body, peer: self.begin(body), PROGRESS: lambda body, peer: self.progress(body),
                FINISH: lambda body, peer: self.finish(body), ABORT: lambda body, peer: self.abort(body)}

    def begin(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """A receiver asks to start: None when the session is not here, else an id or a refusal."""
        session = self.owner.get(str(body.get("sid", "")))
        if session is None:
            return None
        if session.browser != body.get("browser"):
            return {"refused": "This upload does not belong to your session", "status": 403}
        upload = session.root.handler(int(body.get("hid", -1)), "change")
        if not isinstance(upload, Upload):
            return {"refused": "This element takes no upload", "status": 404}
        files = [FileInfo(*f) for f in body.get("files", [])]
        try:
            upload.limits.check(files)
        except UploadRefused as refused:
            message = refused.message
            session.dispatch(lambda: upload._set("refused", error=message, progress=(0, 0)))
            return {"refused": message, "status": refused.status}
        if upload.active is not None:
            self.cancel(upload.active)  # a new choice replaces the transfer in flight
        if sum(1 for e in self.active.values() if e.session is session and not e.cancelled) >= MAX_ACTIVE_PER_SESSION:
            return {"refused": f"Too many uploads at once (at most {MAX_ACTIVE_PER_SESSION})", "status": 429}
        uid = secrets.token_urlsafe(12)
        total = sum(f.size for f in files)
        self.active[uid] = Active(session, upload, files, total)
        upload.active, upload.registry = uid, self

        def started() -> None:
            upload.files.set(tuple(f.name for f in files))
            upload._set("uploading", error="", progress=(0, total))

        session.dispatch(started)
        return {"id": uid, "slot": self.slot}

    def progress(self, body: dict[str, Any]) -> dict[str, Any]:
        entry = self.active.get(str(body.get("id")))
        if entry is None or entry.cancelled or not entry.session.alive:
            return {"cancel": True}
        received = min(int(body.get("received", 0)), entry.total)
        entry.session.dispatch(lambda: entry.upload.progress.set((received, entry.total)))
        return {}

    def finish(self, body: dict[str, Any]) -> dict[str, Any]:
        """The body arrived whole: hand the files to ``on_upload`` on the session loop."""
        uid, paths = str(body.get("id")), [str(p) for p in body.get("paths", [])]
        entry = self.active.pop(uid, None)
        if entry is None or entry.cancelled or not entry.session.alive or len(paths) != len(entry.files):
            return {"cancel": True}  # the receiver removes the files
        entry.upload.active = None
        files = [UploadedFile(f.name, f.type, f.size, p) for f, p in zip(entry.files, paths)]
        self.handling[uid] = (entry.session, paths)
        entry.session.dispatch(lambda: self._deliver(uid, entry, files))
        return {"ok": True}

    def _deliver(self, uid: str, entry: Active, files: list[UploadedFile]) -> None:
        entry.upload._set("done", progress=(entry.total, entry.total))
        try:
            result = entry.upload.on_upload(files)
        except BaseException:
            self._done(uid)
            raise  # the session logs it as a handler error
        if not inspect.isawaitable(result):
            self._done(uid)
            return

        def finished(task: asyncio.Future[Any]) -> None:
            self._done(uid)
            if not task.cancelled() and task.exception() is not None:
                log.error("session %s: on_upload raised", redact(entry.session.id), exc_info=task.exception())

        asyncio.ensure_future(result).add_done_callback(finished)

    def _done(self, uid: str) -> None:
        entry = self.handling.pop(uid, None)
        if entry is not None:
            remove(entry[1])

    def abort(self, body: dict[str, Any]) -> dict[str, Any]:
        """The receiver lost the body (the browser cancelled or went away)."""
        entry = self.active.pop(str(body.get("id")), None)
        if entry is not None and not entry.cancelled:
            entry.upload.active = None
            reason = str(body.get("reason") or "Upload cancelled")
            entry.session.dispatch(lambda: entry.upload._set("cancelled", error=reason, progress=(0, 0)))
        return {}

    def cancel(self, uid: str) -> None:
        """Stop an upload from this side: the receiver drops the body at its next progress report."""
        entry = self.active.get(uid)
        if entry is None or entry.cancelled:
            return
        entry.cancelled = True
        entry.upload.active = None
        upload = entry.upload
        if entry.session.alive:
            entry.session.dispatch(lambda: upload._set("cancelled", error="Upload cancelled", progress=(0, 0)))

    def sweep(self) -> None:
        """Forget uploads of sessions that ended; remove the files their handlers never got to."""
        for uid, entry in list(self.active.items()):
            if not entry.session.alive:  # the receiver hears "cancel" at its next report, and removes its files
                self.active.pop(uid, None)
        for uid, (session, paths) in list(self.handling.items()):
            if not session.alive:
                self.handling.pop(uid, None)
                remove(paths)


__all__ = [
    "DEFAULT_MAX_FILES", "DEFAULT_MAX_FILE_SIZE", "FileInfo", "Registry", "Upload", "UploadLimits", "UploadRefused",
    "UploadedFile", "type_allowed", "use_upload",
]
