"""docs/GUIDE.md's global-signal example, as printed, on a machine of a Redis cluster: votes count, and
a vote while Redis is down says so instead of being lost quietly."""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path

import pytest

from tests.integration.redisserver import redis_server
from tests.integration.test_guide import serve_example
from vango_mp.testing import TestClient

pytestmark = pytest.mark.timeout(90)


def test_global_signal_example_counts_and_reports_a_failed_write(tmp_path: Path) -> None:
    redis = redis_server(tmp_path)
    srv = None
    try:
        srv = serve_example(tmp_path, "guide_globals",
                            env={"VANGO_STORE_URL": redis.url, "VANGO_PERSISTENCE_SECRET": secrets.token_hex(32)})
        url, server = srv.url, srv

        async def go() -> None:
            client = TestClient(url)
            one, two = await client.open("/"), await client.open("/")
            await one.click("#vote")
            await two.click("#vote")
            await one.wait_for_text("#votes", "2 votes")
            await two.wait_for_text("#votes", "2 votes")
            redis.stop()
            deadline = time.monotonic() + 15
            while server.health().get("redis") != "down":
                assert time.monotonic() < deadline, server.health()
                await asyncio.sleep(0.1)
            await one.click("#vote")
            await one.wait_for(lambda p: "Not counted" in p.text("#note") and "redis is down" in p.text("#note"),
                               timeout=10)
            assert one.text("#votes") == "2 votes"

        asyncio.run(go())
    finally:
        if srv is not None:
            srv.stop()
        redis.stop()


def test_shared_component_example_updates_every_session_and_keeps_their_own_state(tmp_path: Path) -> None:
    srv = serve_example(tmp_path, "guide_shared")
    try:
        async def go() -> None:
            client = TestClient(srv.url)
            pages = [await client.open("/") for _ in range(3)]
            assert all(p.text("#score") == "Home 0" for p in pages)
            await pages[0].click("#cheer")
            await pages[1].click("#goal")
            for p in pages:
                await p.wait_for_text("#score", "Home 1")
            await pages[2].click("#goal")
            for p in pages:
                await p.wait_for_text("#score", "Home 2")
            assert [p.text("#cheer") for p in pages] == ["Cheered 1", "Cheered 0", "Cheered 0"]

        asyncio.run(go())
    finally:
        srv.stop()
