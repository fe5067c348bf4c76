"""A page of about 1 MB of HTML (what a slow reader makes the server send again and again) and a counter."""

import hashlib

from vango_mp import App, component, h
from vango_mp.demo.pages import Counter

ROWS = 12_000
# Hex digests: text lz4 cannot shrink much, so each FULL of this page is ~0.5 MB on the wire.
LINES = [hashlib.sha256(str(i).encode()).hexdigest() + hashlib.sha256(str(-i).encode()).hexdigest()[:16]
         for i in range(ROWS)]


@component
def Big():
    return h.ul([h.li(line) for line in LINES], id="big")


app = App({"/big": Big, "/counter": Counter})
