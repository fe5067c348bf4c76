"""The README's first-component example runs as printed."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, start_server
from vango_mp.testing import TestClient

pytestmark = pytest.mark.timeout(60)


def readme_block(marker: str) -> str:
    text = (ROOT / "README.md").read_text()
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        if marker in block:
            return block
    raise AssertionError(f"no README python block containing {marker!r}")


def test_first_component_example(tmp_path: Path) -> None:
    (tmp_path / "myapp.py").write_text(readme_block("# myapp.py"))
    srv = start_server("--workers", "1", "--app", "myapp:app", env={"PYTHONPATH": f"{tmp_path}:{ROOT}"})
    try:
        async def go() -> None:
            async with TestClient(srv.url) as client:
                page = await client.open("/")
                assert page.text("h1") == "Hello, world!"
                await page.click("button")
                await page.click("button")
                assert page.text("#clicks") == "Clicked 2 times"
                bob = await client.open("/hello/bob")
                assert bob.text("h1") == "Hello, bob!"
            # The README's own test-client example, against the same app.
            namespace: dict[str, Any] = {}
            exec(compile(readme_block("from vango_mp.testing import TestClient"), "README", "exec"), namespace)
            await namespace["test_greeter"](srv.url)

        asyncio.run(go())
    finally:
        srv.stop()


def readme_fence(lang: str, marker: str) -> str:
    text = (ROOT / "README.md").read_text()
    for block in re.findall(rf"```{lang}\n(.*?)```", text, re.S):
        if marker in block:
            return block
    raise AssertionError(f"no README {lang} block containing {marker!r}")


def test_several_machines_example(tmp_path: Path) -> None:
    """The "Several machines" config loads and validates as printed (with a secret pasted in); the balancer
    snippet has no stickiness and passes WebSockets through."""
    import secrets

    from supervisor.config import ConfigError, load_settings

    toml = readme_fence("toml", "store_url")
    config = tmp_path / "vango-mp.toml"
    config.write_text(toml.replace("PASTE-64-HEX-DIGITS", secrets.token_hex(32)))
    settings, sources = load_settings(env={}, config_file=str(config))
    assert settings.store_url == "redis://10.0.0.5:6379/0" and str(config) in sources["store_url"]
    config.write_text(toml.replace('persistence_secret = "PASTE-64-HEX-DIGITS"', ""))
    with pytest.raises(ConfigError, match="store_url.*persistence_secret"):
        load_settings(env={}, config_file=str(config))  # a cluster without a shared secret does not start
    nginx = readme_fence("nginx", "upstream")
    assert "Upgrade $http_upgrade" in nginx and not re.search(r"\b(ip_hash|sticky|hash)\b", nginx)

