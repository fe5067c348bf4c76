"""Global signals across real worker processes: the hub sequences every write."""

from __future__ import annotations

import asyncio
import re

import pytest

from .test_supervisor import LiveSession, cleanup, launch, run  # noqa: F401

pytestmark = pytest.mark.timeout(120)


def test_global_counter_is_exact_across_workers() -> None:
    server = launch("--workers", "2")

    async def go() -> None:
        sessions = [await LiveSession.open(server.url, "/global") for _ in range(8)]
        while len({s.worker for s in sessions}) < 2:  # make sure both workers take part
            extra = await LiveSession.open(server.url, "/global")
            if extra.worker != sessions[0].worker:
                sessions[-1] = extra
        start = int(re.search(r'id="global-count"[^>]*>(\d+)<', sessions[0].page.html).group(1))  # type: ignore[union-attr]

        async def clicks(s: LiveSession) -> None:
            for _ in range(25):
                await s.click("global-inc")

        await asyncio.gather(*(clicks(s) for s in sessions))
        await asyncio.gather(*(s.read_until(rf"\b{start + 200}\b", timeout=20) for s in sessions))

    run(go())
