"""supervisor.watch: which files --reload watches and what it reports as changed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from supervisor.watch import SourceWatch, source_files, watch_root


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def touch(path: Path, text: str = "x = 1\n", mtime: float | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def test_python_files_only_and_never_in_hidden_cache_or_environment_dirs(tmp_path: Path) -> None:
    touch(tmp_path / "app.py")
    touch(tmp_path / "pages" / "home.py")
    touch(tmp_path / "static" / "app.js")
    touch(tmp_path / ".git" / "hooks.py")
    touch(tmp_path / "__pycache__" / "app.py")
    touch(tmp_path / "node_modules" / "x.py")
    touch(tmp_path / "myenv" / "pyvenv.cfg")
    touch(tmp_path / "myenv" / "lib" / "site.py")
    assert sorted(Path(p).relative_to(tmp_path).as_posix() for p in source_files(str(tmp_path))) == \
        ["app.py", "pages/home.py"]
    assert len(source_files(str(tmp_path), limit=1)) == 1


def test_changes_are_reported_once_and_not_before_the_interval(tmp_path: Path) -> None:
    touch(tmp_path / "app.py", mtime=1000)
    clock = Clock()
    watch = SourceWatch(str(tmp_path), interval=0.2, clock=clock)
    touch(tmp_path / "app.py", "x = 2\n", mtime=2000)
    assert watch.changed() == []  # not time yet
    assert watch.due_in() == pytest.approx(0.2)
    clock.t += 0.2
    assert watch.changed() == [str(tmp_path / "app.py")]
    clock.t += 0.2
    assert watch.changed() == []  # reported once
    touch(tmp_path / "new.py")
    (tmp_path / "app.py").unlink()
    clock.t += 0.2
    assert watch.changed() == [str(tmp_path / "app.py"), str(tmp_path / "new.py")]


def test_the_root_is_where_the_app_module_lives_found_without_importing_it(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    touch(tmp_path / "solo_mod_x1.py", "raise SystemExit('imported!')\n")
    touch(tmp_path / "pkg_x1" / "__init__.py", "raise SystemExit('imported!')\n")
    touch(tmp_path / "pkg_x1" / "app.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert watch_root("solo_mod_x1:app") == str(tmp_path)
    assert watch_root("pkg_x1.app:app") == str(tmp_path)  # a package: its parent, siblings included
    assert "solo_mod_x1" not in sys.modules and "pkg_x1" not in sys.modules
    assert watch_root("no_such_module_x1:app", cwd="/somewhere") == "/somewhere"
