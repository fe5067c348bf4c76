"""--debug and --dev: what each turns on or off."""

from __future__ import annotations

import pytest

from tests.conftest import start_server

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("debug", [True, False])
def test_signal_write_in_render(debug: bool) -> None:
    args = ["--workers", "1", "--app", "tests.apps.debugapp:app"] + (["--debug"] if debug else [])
    srv = start_server(*args)
    try:
        status, _, body = srv.get("/")
        if debug:
            assert status == 500
            srv.wait_output(r"SignalWriteInRender")
        else:
            assert status == 200 and b'id="renders"' in body
    finally:
        srv.stop()


def test_dev_mode_warns_and_lifts_origin_and_csrf_checks() -> None:
    import asyncio

    from vango_mp import protocol

    from .rawws import Raw

    srv = start_server("--workers", "1", "--dev")
    try:
        srv.wait_output(r"DEV MODE: origin check, CSRF and secure cookies are OFF")

        async def go() -> None:
            ws = await Raw.connect(srv.url, origin="http://elsewhere.example")  # no cookie either
            await ws.send([protocol.HELLO, 1, "", "/counter", None, 0, None])
            assert (await ws.recv())[0] == protocol.WELCOME
            ws.close()

        asyncio.run(go())
    finally:
        srv.stop()
