"""CSP profiles and the security headers' text."""

from __future__ import annotations

import pytest

from vango_mp.headers import CSPOptions, HeaderPolicy, build_csp, default_csp_options, hardened_csp_options


def directives(policy: str) -> dict[str, list[str]]:
    out = {}
    for part in policy.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


def test_default_profile_scripts_only_self_and_nonce() -> None:
    d = directives(build_csp(default_csp_options(), "abc"))
    assert d["script-src"] == ["'self'", "'nonce-abc'"]
    assert d["frame-ancestors"] == ["'none'"]
    assert d["object-src"] == ["'none'"] and d["base-uri"] == ["'self'"]
    assert "'unsafe-inline'" in d["style-src"] and "data:" in d["img-src"]
    assert d["connect-src"] == ["'self'"]


def test_hardened_profile_has_no_inline_styles() -> None:
    d = directives(build_csp(hardened_csp_options(), "abc"))
    assert d["style-src"] == ["'self'"]
    assert hardened_csp_options() == CSPOptions(allow_inline_styles=False)


def test_options_adjust_the_policy() -> None:
    opts = CSPOptions(allow_https_images=True, include_wss=True, additional_script_src=["https://cdn.example"],
                      additional_directives=["upgrade-insecure-requests", "report-uri /csp"])
    d = directives(build_csp(opts, "n"))
    assert d["script-src"] == ["'self'", "'nonce-n'", "https://cdn.example"]
    assert "https:" in d["img-src"] and "wss:" in d["connect-src"]
    assert d["upgrade-insecure-requests"] == [] and d["report-uri"] == ["/csp"]
    assert CSPOptions(report_only=True).header_name == "Content-Security-Policy-Report-Only"


@pytest.mark.parametrize("bad", ["https://a.example; script-src *", "a b", "'self',x", "x\r\nSet-Cookie: a=b"])
def test_a_source_cannot_smuggle_a_directive(bad: str) -> None:
    with pytest.raises(ValueError):
        CSPOptions(additional_script_src=[bad])


def test_a_bare_string_is_refused() -> None:
    with pytest.raises(TypeError):
        CSPOptions(additional_img_src="https://cdn.example")  # type: ignore[arg-type]


def test_each_response_gets_a_fresh_nonce() -> None:
    policy = HeaderPolicy()
    n1, h1 = policy.headers()
    n2, h2 = policy.headers()
    assert n1 != n2 and len(n1) >= 22
    assert dict(h1)["Content-Security-Policy"] == build_csp(default_csp_options(), n1)
    assert dict(h1)["X-Frame-Options"] == "DENY" and dict(h1)["X-Content-Type-Options"] == "nosniff"
    assert dict(h2)["Referrer-Policy"] == "strict-origin-when-cross-origin"
