"""With a state directory, sessions survive a full stop and restart of the server."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import pytest

from tests.conftest import start_server
from vango_mp.testing import TestClient

pytestmark = pytest.mark.timeout(90)


def test_sessions_survive_a_full_restart(tmp_path: Path) -> None:
    env = {"VANGO_STATE_DIR": str(tmp_path), "VANGO_PERSISTENCE_SECRET": secrets.token_hex(32)}
    first = start_server("--workers", "2", env=env)

    async def before() -> list:
        client = TestClient(first.url)
        pages = [await client.open("/counter") for _ in range(6)]
        for i, page in enumerate(pages):
            for _ in range(i + 1):
                await page.click("#inc")
        await asyncio.gather(*(p.disconnect() for p in pages[:3]))  # detached; the rest stay attached
        return [(p, i + 1) for i, p in enumerate(pages)]

    try:
        pages = asyncio.run(before())
    finally:
        assert first.stop() == 0
    assert (tmp_path / "sessions.sqlite3").exists()
    second = start_server("--workers", "2", env=env)
    try:
        async def after() -> None:
            client = TestClient(second.url)
            for page, count in pages:
                page.client = client
                try:
                    await page.resume()
                except Exception as err:
                    raise AssertionError(f"{err}\n--- first server:\n{first.output()[-3000:]}"
                                         f"\n--- second server:\n{second.output()[-3000:]}") from None
                assert page.text("#count") == f"Count: {count}"
                await page.click("#inc")
                assert page.text("#count") == f"Count: {count + 1}"
                await page.disconnect()

        asyncio.run(after())
    finally:
        second.stop()
