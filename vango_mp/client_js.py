"""The thin client as served: ``static/vango.js`` minified (rjsmin) and gzipped once, when a process first loads it.

The repository keeps the readable source; nothing is built ahead. rjsmin
only drops comments and whitespace (no renaming), so what runs in the
browser is the same code, line for line, and the node tests and the
Chromium tests hold for both (tests/unit/test_client_min.py runs the node
tests against the minified file). The version in the page's
``/_vango/vango.js?v=<hash>`` is the hash of the bytes served.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import rjsmin

from . import assets

SOURCE = Path(__file__).parent / "static" / "vango.js"


BANNER = "/*! vango.js, minified from vango_mp/static/vango.js (the readable source) */\n"


def minify(source: str) -> str:
    """``source`` without comments and needless whitespace (rjsmin; ``/*! ... */`` notices kept), under a banner."""
    return BANNER + rjsmin.jsmin(source, keep_bang_comments=True).strip() + "\n"


def build(source: str | None = None) -> tuple[assets.Asset, str]:
    """The served client (body minified, gzip alongside) and its version hash."""
    text = SOURCE.read_text(encoding="utf-8") if source is None else source
    body = minify(text).encode()
    version = hashlib.blake2b(body, digest_size=6).hexdigest()
    client = dataclasses.replace(assets.load(body, "vango.js", "application/javascript"), digest=version)
    return client, version
