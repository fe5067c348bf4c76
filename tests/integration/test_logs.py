"""``log_format = "json"``: every line parses; worker, session short id and request id on the lines they concern."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Server, start_server
from vango_mp.security import redact
from vango_mp.testing import SessionClosed, TestClient

from .test_http_security import request

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def json_server() -> Iterator[Server]:
    srv = start_server("--workers", "1", "--app", "tests.apps.logapp:app",
                       env={"VANGO_LOG_FORMAT": "json", "VANGO_ACCESS_LOG": "1"})
    yield srv
    srv.stop()


def records(srv: Server) -> list[dict[str, Any]]:
    lines = [line for line in srv.output().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # raises on any line that is not one JSON object


def wait_for(srv: Server, pred: Any) -> dict[str, Any]:
    async def poll() -> dict[str, Any]:
        for _ in range(200):
            found = [r for r in records(srv) if pred(r)]
            if found:
                return found[-1]
            await asyncio.sleep(0.05)
        raise AssertionError("no such log line:\n" + srv.output()[-3000:])

    return asyncio.run(poll())


def test_every_line_is_json_with_worker_session_and_request_ids(json_server: Server) -> None:
    async def script() -> str:
        async with TestClient(json_server.url) as c:
            page = await c.open("/")
            await page.click("#log")
            await page.click("#boom", wait=False)
            assert page.text("#n") == "n=1"  # the session survived its handler raising
            return page.session_id or ""

    sid = asyncio.run(script())
    clicked = wait_for(json_server, lambda r: r["msg"] == "clicked 1")
    assert clicked["worker"] == 0 and clicked["session"] == redact(sid) and sid not in json.dumps(clicked)
    raised = wait_for(json_server, lambda r: r["level"] == "ERROR" and "handler raised" in r["msg"])
    assert "RuntimeError: boom" in raised["exc"] and raised["session"] == redact(sid)

    status, headers, _ = request(json_server, "/?token=secret", headers={"X-Request-Id": "req-42"})
    assert status == 200 and headers["X-Request-Id"] == "req-42"
    line = wait_for(json_server, lambda r: r.get("request_id") == "req-42" and r["logger"] == "vango_mp.access")
    assert (line["method"], line["path"], line["status"]) == ("GET", "/", 200) and "secret" not in json.dumps(line)
    assert request(json_server, "/", headers={"X-Request-Id": "bad id\""})[1]["X-Request-Id"] != "bad id\""
    assert all("ts" in r and "level" in r and "pid" in r for r in records(json_server))


def test_one_line_per_refusal_with_its_reason_code(json_server: Server) -> None:
    async def refused() -> None:
        async with TestClient(json_server.url, origin="http://evil.example") as bad:
            with pytest.raises(SessionClosed):
                await bad.open("/")

    before = len([r for r in records(json_server) if r["logger"] == "vango_mp.refusal"])
    asyncio.run(refused())
    line = wait_for(json_server, lambda r: r["logger"] == "vango_mp.refusal")
    assert line["reason"] == "origin" and line["worker"] == 0
    assert len([r for r in records(json_server) if r["logger"] == "vango_mp.refusal"]) == before + 1
