"""Fuzz a live two-worker server (issue 17, point 12): for ~10 s many sockets send random
valid and invalid frame sequences (bench/fuzz.py; ``python bench/fuzz.py --seconds 600`` is
the long run). Nothing may crash a worker, print a traceback, or disturb a bystander
session that keeps clicking throughout.

The seed is random per run and printed on failure; ``FUZZ_SEED=<seed>`` replays the
same choices (timing still varies), ``FUZZ_SECONDS`` changes the duration (not VANGO_*:
the server refuses unknown VANGO_ variables).

Bugs reported but not fixed yet go in ``bench.fuzz.KNOWN_BUGS`` (their tracebacks are
counted apart) with a strict xfail test; the fixed ones keep a plain test below.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest

from bench.fuzz import fuzz_once, tracebacks
from vango_mp import protocol
from vango_mp.protocol import Close

from tests.conftest import Server, start_server
from .rawws import Raw, fetch_page

pytestmark = pytest.mark.timeout(180)

SECONDS = float(os.environ.get("FUZZ_SECONDS", "10"))
WORKERS = 2


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    # Every fuzzing socket comes from 127.0.0.1: the per-IP limits (server-wide) would soon
    # refuse them all, and this test is about robustness, not limits (test_limits.py).
    srv = start_server("--workers", str(WORKERS), env={"VANGO_MAX_SESSIONS_PER_IP": "0",
                                                       "VANGO_MAX_CONCURRENT_HANDSHAKES_PER_IP": "0"})
    yield srv
    srv.stop()


def test_live_fuzz_crashes_nothing_and_leaves_a_bystander_alone(server: Server) -> None:
    seed = int(os.environ.get("FUZZ_SEED") or random.SystemRandom().randrange(2**32))
    start = len(server.output())
    summary = asyncio.run(fuzz_once(server.url, seconds=SECONDS, seed=seed, clients=12, workers=WORKERS,
                                    output=lambda: server.output()[start:]))
    short = {k: summary[k] for k in ("checks", "pids_before", "pids_after", "bystander", "known_bugs")}
    why = f"fuzz seed {seed} (replay: FUZZ_SEED={seed}):\n{json.dumps(short, indent=1)}"
    assert server.proc.poll() is None, why
    assert summary["checks"]["workers_unchanged"], why
    assert summary["checks"]["bystander_ok"], why
    assert summary["checks"]["no_traceback"], why + "\n\n".join(["", *summary["tracebacks"]])
    fuzz = summary["fuzz"]
    # The fuzz did what it says: both workers took sessions, and hostile frames were refused.
    assert summary["checks"]["both_workers_fuzzed"], why
    assert fuzz["connections"] >= 50 and fuzz["close_codes"].get(str(int(Close.PROTOCOL_ERROR)), 0) >= 5, fuzz
    assert summary["bystander"]["clicks"] >= SECONDS, summary["bystander"]  # it clicked all along


# region Bugs the fuzz found, one test each (fixed; kept so they stay fixed) ---------------


async def _session(server: Server) -> Raw:
    page = fetch_page(server.url, "/counter")
    ws = await Raw.connect(server.url, cookie=page.cookie)
    assert (await ws.hello(page))[0] == protocol.WELCOME
    return ws


def _closes_cleanly(server: Server, message: bytes) -> tuple[Any, list[str]]:
    start = len(server.output())

    async def go() -> Any:
        ws = await _session(server)
        await ws.send_bytes(message)
        try:
            return (await ws.closed())[0]
        finally:
            ws.close()

    code = asyncio.run(go())
    deadline = time.monotonic() + 10.0
    while "closing socket from" not in server.output()[start:]:  # wait for its log record
        assert time.monotonic() < deadline, server.output()[start:]
        time.sleep(0.02)
    new, known = tracebacks(server.output()[start:])
    return code, new + list(known.elements())


def test_deep_frame_type_closes_cleanly(server: Server) -> None:
    code, found = _closes_cleanly(server, b"\x00" + b"\x91" * 1000 + b"\xc0")
    assert (code, found) == (Close.PROTOCOL_ERROR, [])


def test_long_close_reason_closes_cleanly(server: Server) -> None:
    code, found = _closes_cleanly(server, b"\x00" + msgpack.packb(["x" * 200]))
    assert (code, found) == (Close.PROTOCOL_ERROR, [])


def test_short_reasons_close_cleanly(server: Server) -> None:
    """The same path with a short reason works: what the two tests above expect."""
    code, found = _closes_cleanly(server, b"\x00" + msgpack.packb(["x" * 10]))
    assert (code, found) == (Close.PROTOCOL_ERROR, [])


# endregion
