"""``/_vango/metrics`` after a scripted session: histograms, bytes, gauges, reasons, each labelled ``worker``."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Server, module_server
from vango_mp.observability.prom import EVICTION_CODES, REFUSAL_CODES
from vango_mp.testing import SessionClosed, TestClient

pytestmark = pytest.mark.timeout(90)


two = module_server("--workers", "2")


def samples(srv: Server) -> list[tuple[str, dict[str, str], float]]:
    status, _, body = srv.get("/_vango/metrics")
    assert status == 200
    return [(s.name, s.labels, s.value) for fam in text_string_to_metric_families(body.decode()) for s in fam.samples]


def total(rows: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    return sum(v for n, lab, v in rows if n == name and all(lab.get(k) == x for k, x in labels.items()))


def test_a_scripted_session_shows_in_every_family(two: Server) -> None:
    async def script() -> None:
        async with TestClient(two.url) as c:
            page = await c.open("/counter")
            for _ in range(3):
                await page.click("#inc")
            await page.click_link("Todos")
            await page.disconnect()
            await page.resume()
            assert page.text("#worker")
        async with TestClient(two.url, origin="http://evil.example") as bad:  # refused: origin
            with pytest.raises(SessionClosed, match="4004"):
                await bad.open("/counter")

    asyncio.run(script())
    rows = samples(two)
    workers = {lab.get("worker") for _, lab, _ in rows}
    assert workers == {"0", "1"}, workers  # every sample is labelled, both workers answer
    assert total(rows, "vango_event_latency_seconds_count", route="/counter") >= 3
    assert total(rows, "vango_patches_per_event_sum") >= 3  # each +1 patches the count
    assert total(rows, "vango_navigation_seconds_count", route="/todos") >= 1
    assert total(rows, "vango_handshake_seconds_count", kind="new") >= 1
    assert total(rows, "vango_handshake_seconds_count", kind="resume") >= 1
    assert sum(total(rows, "vango_resume_seconds_count", kind=k) for k in ("same_worker", "adopted")) >= 1
    assert total(rows, "vango_bytes_received_total") > 0 and total(rows, "vango_bytes_sent_total") > 0
    assert total(rows, "vango_bus_round_trip_seconds_count") >= 1  # census, stats
    assert total(rows, "vango_refusals_total", reason="origin") >= 1
    for state in ("attached", "detached", "cold"):
        assert {lab["worker"] for n, lab, _ in rows if n == "vango_sessions" and lab["state"] == state} == {"0", "1"}
    assert "# TYPE vango_gc_pause_seconds histogram" in two.get("/_vango/metrics")[2].decode()
    assert total(rows, "vango_metrics_peer_stale") == 0
    for name, codes in (("vango_refusals_total", REFUSAL_CODES), ("vango_evictions_total", EVICTION_CODES)):
        assert {lab["reason"] for n, lab, _ in rows if n == name} <= codes | {"other"}
