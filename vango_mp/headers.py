"""Security headers on every response: CSP with a per-response nonce, framing, sniffing, referrer.

The reference runtime's ``CSPOptions`` with its two profiles:

- :func:`default_csp_options` (``CSPOptions()``): scripts only from our own
  origin plus the nonce of the response (the page's bootstrap
  ``<script nonce=...>``), inline ``style`` attributes allowed (app markup
  often carries them), ``data:`` images;
- :func:`hardened_csp_options`: the same without inline styles.

Neither allows ``'unsafe-inline'`` or ``'unsafe-eval'`` for scripts: the thin
client needs neither. An app adjusts the policy with ``App(csp=...)``, e.g.
``CSPOptions(additional_img_src=("https://cdn.example",))``. Every response
of a worker also gets ``X-Frame-Options: DENY`` (and ``frame-ancestors
'none'``), ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy:
strict-origin-when-cross-origin``.

The WebSocket upgrade uses ``'self'`` in ``connect-src`` (CSP Level 3 lets it
match ``ws:``/``wss:`` to the same host); ``include_wss``/``include_ws`` add
the bare schemes for browsers that predate it.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

NONCE_BYTES = 16  # 128 bits from ``secrets`` per response, as CSP asks ("at least 128 bits")
# What may appear in one source expression: no separators, quotes or whitespace
# that would end the directive or the header early.
_SOURCE = re.compile(r"^[A-Za-z0-9*:/._\-'+=%\[\]@]+$")
_DIRECTIVE = re.compile(r"^[a-z][a-z-]*( [^;,\r\n]+)?$")

STATIC_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
)


def _sources(name: str, values: Sequence[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        raise TypeError(f"CSPOptions.{name} must be a sequence of sources, not a string")
    for value in values:
        if not _SOURCE.match(value):
            raise ValueError(f"CSPOptions.{name}: {value!r} is not a CSP source expression")
    return tuple(values)


@dataclass(frozen=True, slots=True)
class CSPOptions:
    """What the Content-Security-Policy of every response allows (reference ``CSPOptions``).

    ``report_only`` sends ``Content-Security-Policy-Report-Only`` instead
    (nothing is blocked; add a ``report-to``/``report-uri`` directive through
    ``additional_directives`` to collect reports). There is no
    ``allow_inline_scripts``: inline scripts need the response's nonce
    (``request.csp_nonce`` in an app route), so the policy never carries
    ``'unsafe-inline'`` for scripts.
    """

    report_only: bool = False
    allow_inline_styles: bool = True
    allow_data_images: bool = True
    allow_https_images: bool = False
    include_wss: bool = False
    include_ws: bool = False
    additional_connect_src: Sequence[str] = field(default=())
    additional_script_src: Sequence[str] = field(default=())
    additional_style_src: Sequence[str] = field(default=())
    additional_img_src: Sequence[str] = field(default=())
    additional_font_src: Sequence[str] = field(default=())
    additional_directives: Sequence[str] = field(default=())

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if f.name.startswith("additional_") and f.name != "additional_directives":
                object.__setattr__(self, f.name, _sources(f.name, getattr(self, f.name)))
        directives = self.additional_directives
        if isinstance(directives, str):
            raise TypeError("CSPOptions.additional_directives must be a sequence of directives, not a string")
        for d in directives:
            if not _DIRECTIVE.match(d):
                raise ValueError(f"CSPOptions.additional_directives: {d!r} is not one CSP directive")
        object.__setattr__(self, "additional_directives", tuple(directives))

    @property
    def header_name(self) -> str:
        return "Content-Security-Policy-Report-Only" if self.report_only else "Content-Security-Policy"


def default_csp_options() -> CSPOptions:
    """The default profile: own-origin scripts plus the nonce, inline styles, ``data:`` images."""
    return CSPOptions()


def hardened_csp_options() -> CSPOptions:
    """The default profile without inline styles (``style`` attributes and ``<style>`` blocks)."""
    return CSPOptions(allow_inline_styles=False)


def build_csp(opts: CSPOptions, nonce: str | None = None) -> str:
    """The policy text; ``nonce`` (base64) allows the inline scripts carrying it."""
    script = ["'self'", *([f"'nonce-{nonce}'"] if nonce else []), *opts.additional_script_src]
    style = ["'self'", *(["'unsafe-inline'"] if opts.allow_inline_styles else []), *opts.additional_style_src]
    img = ["'self'", *(["data:"] if opts.allow_data_images else []),
           *(["https:"] if opts.allow_https_images else []), *opts.additional_img_src]
    connect = ["'self'", *(["wss:"] if opts.include_wss else []), *(["ws:"] if opts.include_ws else []),
               *opts.additional_connect_src]
    directives = [
        "default-src 'self'",
        "script-src " + " ".join(script),
        "style-src " + " ".join(style),
        "img-src " + " ".join(img),
        "font-src " + " ".join(["'self'", *opts.additional_font_src]),
        "connect-src " + " ".join(connect),
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        *opts.additional_directives,
    ]
    return "; ".join(directives)


class HeaderPolicy:
    """The security headers of one app, with the policy text prebuilt around a nonce slot."""

    __slots__ = ("options", "csp_name", "_before", "_after")

    def __init__(self, options: CSPOptions | None = None) -> None:
        self.options = options if options is not None else default_csp_options()
        self.csp_name = self.options.header_name
        marker = "NONCE-SLOT"
        self._before, self._after = build_csp(self.options, marker).split(marker)

    def csp(self, nonce: str) -> str:
        return f"{self._before}{nonce}{self._after}"

    def headers(self) -> tuple[str, list[tuple[str, str]]]:
        """A fresh nonce and the headers that carry it."""
        nonce = new_nonce()
        return nonce, [(self.csp_name, self.csp(nonce)), *STATIC_HEADERS]


def new_nonce() -> str:
    return secrets.token_urlsafe(NONCE_BYTES)
