"""Static assets: an app's ``static_dir`` served under fingerprinted, immutable URLs; the favicon.

``App(static_dir="static")`` reads the directory once, when the app is
created (in the supervisor, before the workers fork, so they share it):
every file gets a name carrying a hash of its content —
``asset("css/app.css")`` is ``/_vango/assets/css/app.3f2a1c9b.css`` — which
is served with ``Cache-Control: public, max-age=31536000, immutable``: a
changed file is a new URL, so browsers never need to revalidate. The plain
name (``/_vango/assets/css/app.css``) is served too, revalidated by ETag.

Only what the manifest lists is served: a request names a manifest key, never
a path on disk, so ``..``, encoded dots or absolute paths find nothing
(404). Hidden files and directories (``.env``, ``.git/``) and symlinks that
leave the directory are not listed. Text-like files (CSS, JS, SVG, JSON, …)
are gzipped once, up front, and sent compressed to browsers that accept it.
New or changed files are picked up by a restart (the app is imported once,
by the supervisor).

``/favicon.ico`` is the app's ``static_dir/favicon.ico`` when it has one,
else a small built-in icon — never a 404 page render.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import mimetypes
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

log = logging.getLogger("vango_mp.assets")

PREFIX = "/_vango/assets/"
HASH_CHARS = 8  # hex digits of the content hash in a fingerprinted name
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
FAVICON_CACHE = "public, max-age=86400"
_GZIP_MIN = 256  # smaller files are sent as they are: gzip would not pay
_COMPRESSIBLE = ("text/", "application/javascript", "application/json", "application/xml", "image/svg+xml",
                 "application/manifest+json", "application/wasm", "font/ttf", "font/otf", "image/x-icon",
                 "image/vnd.microsoft.icon")


@dataclass(frozen=True, slots=True)
class Asset:
    """One file, ready to send: its bytes, their gzip (or None), type and hash."""

    name: str  # the name under static_dir, "/"-separated
    body: bytes
    gzipped: bytes | None
    content_type: str
    digest: str

    @property
    def fingerprinted(self) -> str:
        path = PurePosixPath(self.name)
        return str(path.with_name(f"{path.stem}.{self.digest}{path.suffix}"))

    def etag(self, gzipped: bool) -> str:
        return f'"{self.digest}{"-gz" if gzipped else ""}"'


def load(body: bytes, name: str, content_type: str | None = None) -> Asset:
    """An Asset of ``body`` (typed by ``name``'s extension unless given)."""
    ctype = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype in ("application/javascript", "application/json", "image/svg+xml"):
        ctype += "; charset=utf-8"
    gz = None
    if len(body) >= _GZIP_MIN and ctype.startswith(_COMPRESSIBLE):
        packed = gzip.compress(body, compresslevel=9, mtime=0)
        gz = packed if len(packed) < len(body) else None
    return Asset(name, body, gz, ctype, hashlib.blake2b(body, digest_size=HASH_CHARS // 2).hexdigest())


class Assets:
    """The manifest of one ``static_dir``: logical name -> Asset, and URL name -> Asset."""

    def __init__(self, directory: str | os.PathLike[str] | None) -> None:
        self.directory = Path(directory).resolve() if directory is not None else None
        self.by_name: dict[str, Asset] = {}
        self.by_url: dict[str, tuple[Asset, bool]] = {}  # URL name -> (asset, fingerprinted)
        self._warned: set[str] = set()
        if self.directory is not None:
            if not self.directory.is_dir():
                raise ValueError(f"static_dir {str(directory)!r} is not a directory")
            for name, path in _walk(self.directory):
                self.add(load(path.read_bytes(), name))

    def add(self, asset: Asset) -> None:
        self.by_name[asset.name] = asset
        self.by_url[asset.name] = (asset, False)
        self.by_url[asset.fingerprinted] = (asset, True)

    def url(self, name: str) -> str:
        """The fingerprinted URL of ``name`` (as under static_dir, e.g. ``"css/app.css"``).

        An unknown name is logged once and gets its plain URL (a 404), as
        the reference's resolver passes unknown paths through.
        """
        found = self.by_name.get(name.lstrip("/"))
        if found is None:
            if name not in self._warned:
                self._warned.add(name)
                log.warning("asset(%r): no such file in static_dir %s", name, self.directory)
            return PREFIX + name.lstrip("/")
        return PREFIX + found.fingerprinted

    def find(self, url_name: str) -> tuple[Asset, bool] | None:
        """The asset a request under ``/_vango/assets/`` names, and whether the name was fingerprinted."""
        return self.by_url.get(url_name)

    def favicon(self) -> Asset:
        return self.by_name.get("favicon.ico") or DEFAULT_FAVICON


def _walk(root: Path) -> list[tuple[str, Path]]:
    """Files under ``root`` as ("a/b.css", path): no hidden entries, no symlinks leaving ``root``."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for filename in sorted(filenames):
            if filename.startswith("."):
                continue
            path = Path(dirpath) / filename
            real = path.resolve()
            if not real.is_file() or not real.is_relative_to(root):
                log.warning("static_dir: skipping %s (not a regular file inside %s)", path, root)
                continue
            found.append((path.relative_to(root).as_posix(), path))
    return found


# Set by the worker for the app it serves (asset() in components); else the last app created.
_active: Assets | None = None


def activate(assets: Assets) -> None:
    global _active
    _active = assets


def asset(name: str) -> str:
    """The URL of ``name`` in the app's ``static_dir``, fingerprinted: use it in ``href``/``src``.

    ``h.link(rel="stylesheet", href=asset("app.css"))`` renders
    ``/_vango/assets/app.3f2a1c9b.css``.
    """
    if _active is None:
        raise LookupError(f"asset({name!r}): the app has no static_dir")
    return _active.url(name)


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` value allows gzip (``gzip;q=0`` does not)."""
    for part in accept_encoding.lower().split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip() in ("gzip", "*"):
            q = params.strip()
            return not (q.startswith("q=") and float(q[2:] or 0) == 0)
    return False


def _default_favicon() -> bytes:
    """A 16x16 icon (a PNG inside an ICO): a dark rounded square with a light 'v'."""
    size = 16
    dark, light, clear = (0x2B, 0x2D, 0x42, 0xFF), (0xED, 0xF2, 0xF4, 0xFF), (0, 0, 0, 0)
    rows = []
    for y in range(size):
        row = bytearray([0])  # PNG filter byte: none
        for x in range(size):
            corner = (x in (0, size - 1)) and (y in (0, size - 1))
            v = 3 <= y <= 12 and (abs(x - 7.5) - (12 - y) * 0.45) ** 2 < 1.2
            row += bytes(clear if corner else light if v else dark)
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b""))
    header = struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", size, size, 0, 0, 1, 32, len(png), 22)
    return header + png


DEFAULT_FAVICON = load(_default_favicon(), "favicon.ico", "image/x-icon")
