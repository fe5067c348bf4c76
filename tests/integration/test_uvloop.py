"""``uvloop = true`` (VANGO_UVLOOP=1): workers run on uvloop and serve sessions as on asyncio."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.conftest import start_server
from vango_mp import protocol
from vango_mp.worker import event_loop_factory

from .rawws import Raw, fetch_page
from .test_live_protocol import find_hid

pytestmark = pytest.mark.timeout(60)


def test_off_by_default_means_asyncio() -> None:
    assert event_loop_factory(False) is None


def test_missing_uvloop_falls_back_to_asyncio_with_a_warning(monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop -> ImportError
    with caplog.at_level(logging.WARNING, "vango_mp.worker"):
        assert event_loop_factory(True) is None
    assert "uvloop is not installed" in caplog.text


def test_a_worker_on_uvloop_serves_a_click() -> None:
    pytest.importorskip("uvloop")
    srv = start_server("--workers", "1", env={"VANGO_UVLOOP": "1"})
    try:
        srv.wait_output(r"event loop: uvloop \d")

        async def go() -> None:
            page = fetch_page(srv.url, "/counter")
            ws = await Raw.connect(srv.url, cookie=page.cookie)
            assert (await ws.hello(page))[0] == protocol.WELCOME
            await ws.send([protocol.EVENT, 1, find_hid(page.html, "inc"), "click", None])
            assert (await ws.recv())[0] == protocol.PATCHES
            ws.close()

        asyncio.run(go())
    finally:
        srv.stop()
    assert "Traceback" not in srv.output()
