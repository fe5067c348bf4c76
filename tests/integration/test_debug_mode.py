"""--debug turns a signal write during render into a clear error."""

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
