"""The asset manifest without a server: names, hashes, gzip, the default favicon."""

from __future__ import annotations

import gzip
import logging
import struct
import zlib
from pathlib import Path

import pytest

from vango_mp import assets


def test_fingerprinted_names_follow_the_content(tmp_path: Path) -> None:
    (tmp_path / "css").mkdir()
    (tmp_path / "css" / "app.min.css").write_text("a{}")
    (tmp_path / "LICENSE").write_text("MIT")
    manifest = assets.Assets(tmp_path)
    url = manifest.url("css/app.min.css")
    digest = url.split(".")[-2]
    assert url == f"/_vango/assets/css/app.min.{digest}.css" and len(digest) == assets.HASH_CHARS
    assert manifest.url("/css/app.min.css") == url
    assert manifest.find(url.removeprefix(assets.PREFIX)) == (manifest.by_name["css/app.min.css"], True)
    assert manifest.find("css/app.min.css") == (manifest.by_name["css/app.min.css"], False)
    assert manifest.url("LICENSE").startswith("/_vango/assets/LICENSE.")
    (tmp_path / "css" / "app.min.css").write_text("b{}")
    assert assets.Assets(tmp_path).url("css/app.min.css") != url


def test_an_unknown_name_passes_through_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    manifest = assets.Assets(tmp_path)
    with caplog.at_level(logging.WARNING, "vango_mp.assets"):
        assert manifest.url("nope.css") == "/_vango/assets/nope.css"
        manifest.url("nope.css")
    assert len(caplog.records) == 1 and "nope.css" in caplog.text


def test_only_text_like_files_worth_it_are_gzipped() -> None:
    big_css = assets.load(b"a { color: red }\n" * 100, "x.css")
    assert big_css.gzipped is not None and gzip.decompress(big_css.gzipped) == big_css.body
    assert assets.load(b"a{}", "x.css").gzipped is None  # too small
    assert assets.load(bytes(range(256)) * 8, "x.png").gzipped is None  # not text-like
    assert big_css.etag(True) != big_css.etag(False)


@pytest.mark.parametrize("header, ok", [
    ("gzip", True), ("gzip, deflate, br", True), ("br;q=1.0, gzip;q=0.8", True), ("*", True),
    ("gzip;q=0", False), ("identity", False), ("", False), ("deflate", False),
])
def test_accept_encoding(header: str, ok: bool) -> None:
    assert assets.accepts_gzip(header) is ok


def test_the_default_favicon_is_a_16px_png_icon() -> None:
    icon = assets.DEFAULT_FAVICON.body
    reserved, kind, count = struct.unpack("<HHH", icon[:6])
    width, height, _, _, _, bits, size, offset = struct.unpack("<BBBBHHII", icon[6:22])
    assert (reserved, kind, count, width, height, bits) == (0, 1, 1, 16, 16, 32)
    png = icon[offset:offset + size]
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(icon) == offset + size
    idat = png[png.index(b"IDAT") + 4:png.index(b"IEND") - 8]
    assert len(zlib.decompress(idat)) == 16 * (1 + 16 * 4)


def test_asset_without_a_static_dir_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(assets, "_active", None)
    with pytest.raises(LookupError, match="static_dir"):
        assets.asset("app.css")


def test_a_missing_static_dir_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a directory"):
        assets.Assets(tmp_path / "nope")
