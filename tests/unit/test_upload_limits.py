"""Upload limits and their messages, file names and types, the body cut into files, and the owner's registry."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from vango_mp.sessions.states import State
from vango_mp.uploadhandler import Spool, parse_files
from vango_mp.uploads import (
    DEFAULT_MAX_FILE_SIZE, DEFAULT_MAX_FILES, DIR_PREFIX, FileInfo, Registry, Upload, UploadLimits, UploadRefused,
    type_allowed,
)


def test_reference_defaults() -> None:
    limits = UploadLimits()
    assert (limits.max_file_size, limits.max_files, limits.accept) == (DEFAULT_MAX_FILE_SIZE, DEFAULT_MAX_FILES, ())
    assert DEFAULT_MAX_FILE_SIZE == 10 * 1024 * 1024 and limits.total == 10 * DEFAULT_MAX_FILE_SIZE
    with pytest.raises(ValueError):
        UploadLimits(max_files=0)
    with pytest.raises(ValueError):
        UploadLimits(max_file_size=0)


def test_file_names_are_bare_and_types_guessed_when_missing() -> None:
    assert FileInfo.of("..\\..\\boot.ini", "", 3) == FileInfo("boot.ini", "", 3)
    assert FileInfo.of("/etc/passwd\x00.png", "", 1) == FileInfo("passwd.png", "image/png", 1)
    assert FileInfo.of("Photo.JPG", "IMAGE/JPEG ", 1).type == "image/jpeg"
    assert FileInfo.of("", "text/plain", 0).name == "file"
    for bad in [(1, "", 1), ("a", "", -1), ("a", "", 1.5), ("a", None, 1)]:
        with pytest.raises(ValueError):
            FileInfo.of(*bad)


@pytest.mark.parametrize("name, mime, accept, ok", [
    ("a.png", "image/png", [], True),
    ("a.png", "image/png", ["image/*"], True),
    ("a.png", "image/png", ["image/png"], True),
    ("a.PNG", "", [".png"], True),
    ("a.txt", "text/plain", ["image/*"], False),
    ("a.svg", "image/svg+xml", ["image/png", ".jpg"], False),
    ("a", "", ["image/*"], False),
])
def test_type_patterns(name: str, mime: str, accept: list[str], ok: bool) -> None:
    assert type_allowed(FileInfo(name, mime, 1), accept) is ok


@pytest.mark.parametrize("files, status, message", [
    ([], 400, "No file selected"),
    ([("a.txt", "text/plain", 1)] * 3, 413, "Too many files: 3 (at most 2)"),
    ([("big.png", "image/png", 101)], 413, "big.png is too large: 101 bytes (at most 100 bytes)"),
    ([("x.exe", "application/x-msdownload", 1)], 415,
     "x.exe: type application/x-msdownload is not allowed (allowed: image/*, text/plain)"),
    ([("a.png", "image/png", 100), ("b.png", "image/png", 60)], 413,
     "The files are too large together: 160 bytes (at most 150 bytes)"),
])
def test_limits_refuse_with_a_message(files: list[tuple[str, str, int]], status: int, message: str) -> None:
    limits = UploadLimits(max_file_size=100, max_files=2, max_total_size=150, accept=("image/*", "text/plain"))
    with pytest.raises(UploadRefused) as refused:
        limits.check([FileInfo(*f) for f in files])
    assert (refused.value.status, refused.value.message) == (status, message)
    limits.check([FileInfo("a.png", "image/png", 100), FileInfo("b.txt", "text/plain", 50)])  # within every limit


def test_the_files_header() -> None:
    header = quote(json.dumps([["a b.txt", "text/plain", 3], ["é.png", "image/png", 0]]))
    assert parse_files(header) == [FileInfo("a b.txt", "text/plain", 3), FileInfo("é.png", "image/png", 0)]
    for bad in ["", "not json", quote("[]"), quote(json.dumps([["a", "t"]])), quote(json.dumps([["a", "t", "3"]])),
                quote(json.dumps([["a", "t", 1]] * 101)), "x" * 40000]:
        with pytest.raises(ValueError):
            parse_files(bad)


@pytest.fixture
def upload_dir(tmp_path: Path) -> str:
    d = tmp_path / f"{DIR_PREFIX}0-test"
    d.mkdir()
    return str(d)


def test_the_body_is_cut_at_the_declared_sizes(upload_dir: str) -> None:
    spool = Spool(upload_dir, [3, 0, 5])
    for chunk in [b"ab", b"cDE", b"FGH"]:
        spool.write(chunk)
    paths = spool.close()
    assert [Path(p).read_bytes() for p in paths] == [b"abc", b"", b"DEFGH"]
    assert all(oct(os.stat(p).st_mode & 0o777) == "0o600" for p in paths)  # mkstemp: private
    with pytest.raises(ValueError, match="more bytes"):
        over = Spool(upload_dir, [1])
        over.write(b"xy")
    over.discard()
    assert sorted(os.listdir(upload_dir)) == sorted(os.path.basename(p) for p in paths)


class Root:
    def __init__(self, handlers: dict[int, Any]) -> None:
        self.handlers = handlers

    def handler(self, hid: int, name: str) -> Any:
        return self.handlers.get(hid) if name == "change" else None


class FakeSession:
    def __init__(self, upload: Upload) -> None:
        self.id, self.browser, self.state = "sid", "browser-1", State.ATTACHED
        self.root = Root({7: upload, 8: lambda: None})
        self.dispatched = 0

    @property
    def alive(self) -> bool:
        return self.state in (State.ATTACHED, State.DETACHED)

    def dispatch(self, fn: Any) -> None:
        self.dispatched += 1
        fn()


class Owner:
    def __init__(self, session: FakeSession) -> None:
        self.session = session

    def get(self, sid: str) -> FakeSession | None:
        return self.session if sid == self.session.id and self.session.alive else None


def begin(registry: Registry, **over: Any) -> Any:
    body = {"sid": "sid", "hid": 7, "browser": "browser-1", "files": [["a.txt", "text/plain", 4]], **over}
    return registry.begin(body)


def test_the_registry_checks_the_session_then_the_input_then_the_limits(upload_dir: str) -> None:
    up = Upload()
    up.limits = UploadLimits(max_file_size=4, accept=("text/plain",))
    session = FakeSession(up)
    registry = Registry(Owner(session), slot=3)  # type: ignore[arg-type]
    assert begin(registry, sid="other") is None  # not here: another worker may have it
    assert begin(registry, browser="browser-2") == {"refused": "This upload does not belong to your session",
                                                    "status": 403}
    assert begin(registry, hid=8)["status"] == 404  # an element without an upload
    assert begin(registry, files=[["a.txt", "text/plain", 5]]) == {
        "refused": "a.txt is too large: 5 bytes (at most 4 bytes)", "status": 413}
    assert (up.state.peek(), up.error.peek()) == ("refused", "a.txt is too large: 5 bytes (at most 4 bytes)")
    answer = begin(registry)
    assert answer["slot"] == 3 and up.state.peek() == "uploading" and up.error.peek() == ""
    uid = answer["id"]
    assert registry.progress({"id": uid, "received": 2}) == {} and up.progress.peek() == (2, 4)

    got: list[Any] = []
    up.on_upload = lambda files: got.extend((f.name, f.size, f.open().read()) for f in files)
    path = os.path.join(upload_dir, "up-1")
    Path(path).write_bytes(b"abcd")
    assert registry.finish({"id": uid, "paths": [path]}) == {"ok": True}
    assert got == [("a.txt", 4, b"abcd")] and up.state.peek() == "done" and up.percent == 100
    assert not os.path.exists(path)  # removed once the handler returned
    assert registry.progress({"id": uid, "received": 4}) == {"cancel": True}  # finished: nothing more


def test_cancel_and_a_new_choice_and_a_closed_session(upload_dir: str) -> None:
    up = Upload()
    session = FakeSession(up)
    registry = Registry(Owner(session), slot=0)  # type: ignore[arg-type]
    first = begin(registry)["id"]
    second = begin(registry)["id"]  # a new choice replaces the first
    assert registry.progress({"id": first, "received": 1}) == {"cancel": True}
    up.cancel()
    assert up.state.peek() == "cancelled" and registry.progress({"id": second, "received": 1}) == {"cancel": True}
    assert registry.finish({"id": second, "paths": ["/x"]}) == {"cancel": True}
    third = begin(registry)["id"]
    session.state = State.CLOSED
    registry.sweep()
    assert registry.progress({"id": third, "received": 1}) == {"cancel": True}
    registry.abort({"id": third})  # nothing left to abort: no error


def test_only_upload_files_are_ever_removed(tmp_path: Path) -> None:
    from vango_mp.uploads import remove

    keep = tmp_path / "precious"
    keep.write_text("x")
    remove([str(keep)])
    assert keep.exists()


def test_a_session_takes_a_bounded_number_of_transfers_at_once() -> None:
    from vango_mp.uploads import MAX_ACTIVE_PER_SESSION

    inputs = [Upload() for _ in range(MAX_ACTIVE_PER_SESSION + 1)]
    session = FakeSession(inputs[0])
    session.root = Root({10 + i: up for i, up in enumerate(inputs)})
    registry = Registry(Owner(session), slot=0)  # type: ignore[arg-type]
    for i in range(MAX_ACTIVE_PER_SESSION):
        assert "id" in begin(registry, hid=10 + i)
    assert begin(registry, hid=10 + MAX_ACTIVE_PER_SESSION) == {
        "refused": f"Too many uploads at once (at most {MAX_ACTIVE_PER_SESSION})", "status": 429}
    assert "id" in begin(registry, hid=10)  # the same input again: replaces its own transfer


def test_an_async_handler_keeps_its_files_until_it_ends(upload_dir: str) -> None:
    import asyncio

    up = Upload()
    session = FakeSession(up)
    registry = Registry(Owner(session), slot=0)  # type: ignore[arg-type]
    path = os.path.join(upload_dir, "up-async")
    Path(path).write_bytes(b"abcd")
    seen: list[bool] = []

    async def handler(files: list[Any]) -> None:
        await asyncio.sleep(0.01)
        seen.append(os.path.exists(files[0].path))  # still there while the handler runs

    async def run() -> None:
        up.on_upload = handler
        uid = begin(registry)["id"]
        assert registry.finish({"id": uid, "paths": [path]}) == {"ok": True}
        assert os.path.exists(path)
        while registry.handling:
            await asyncio.sleep(0.01)

    asyncio.run(run())
    assert seen == [True] and not os.path.exists(path)


def test_files_of_a_session_that_ends_before_its_handler_runs_are_removed(upload_dir: str) -> None:
    up = Upload()
    session = FakeSession(up)
    registry = Registry(Owner(session), slot=0)  # type: ignore[arg-type]
    uid = begin(registry)["id"]
    path = os.path.join(upload_dir, "up-orphan")
    Path(path).write_bytes(b"abcd")
    held: list[Any] = []
    session.dispatch = held.append  # type: ignore[method-assign]  # queued, not run yet
    assert registry.finish({"id": uid, "paths": [path]}) == {"ok": True}
    registry.sweep()
    assert os.path.exists(path)  # the session is alive: its handler will run
    session.state = State.CLOSED  # ...but it ends first (a closed session drops its queued dispatches)
    registry.sweep()
    assert not os.path.exists(path) and registry.handling == {}
