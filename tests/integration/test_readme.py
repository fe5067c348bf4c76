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
