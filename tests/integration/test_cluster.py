"""Several machines on one Redis: two supervisors on two ports act as one cluster (issue 12)."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lz4.block
import msgpack
import pytest

from tests.conftest import Server, start_server
from tests.integration.redisserver import RedisServer, redis_server
from vango_mp.protocol import Close
from vango_mp.testing import Page, SessionClosed, TestClient

pytestmark = pytest.mark.timeout(150)

APP = "tests.apps.clusterapp:app"


def start_machine(redis: RedisServer, secret: str, *, workers: int = 2, app: str = APP, **env: str) -> Server:
    """One machine of the cluster: a supervisor with ``workers`` workers on its own port."""
    return start_server("--workers", str(workers), "--app", app,
                        env={"VANGO_STORE_URL": redis.url, "VANGO_PERSISTENCE_SECRET": secret, **env})


@contextmanager
def machines_on(tmp_path: Path, count: int = 2, *, durable: bool = False,
                **env: str) -> Iterator[tuple[RedisServer, list[Server], str]]:
    """A redis-server and ``count`` machines on it; everything started is stopped, whatever fails."""
    redis = redis_server(tmp_path, durable=durable)
    secret = secrets.token_hex(32)
    machines: list[Server] = []
    try:
        for _ in range(count):
            machines.append(start_machine(redis, secret, **env))
        yield redis, machines, secret
    finally:
        for machine in machines:
            machine.stop()
        redis.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[RedisServer, Server, Server, str]]:
    with machines_on(tmp_path, VANGO_PERSIST_INTERVAL="200ms") as (redis, (a, b), secret):
        yield redis, a, b, secret


def story(*machines: Server) -> str:
    return "".join(f"\n--- machine {i}:\n{m.output()[-4000:]}" for i, m in enumerate(machines))


def run_telling(main: Coroutine[Any, Any, None], *machines: Server) -> None:
    """``asyncio.run(main)``; a failure carries the machines' output (story) with it."""
    try:
        asyncio.run(main)
    except Exception as err:
        raise AssertionError(f"{err!r}{story(*machines)}") from err


def checkpoint_seq(redis: RedisServer, session_id: str | None) -> int | None:
    """The seq a session's checkpoint in Redis was sealed at (the blob opened without checking: the test reads)."""
    blob = redis.client().get(f"vango:s:{session_id}")
    if blob is None:
        return None
    return int(msgpack.unpackb(lz4.block.decompress(blob[3 + 32:]), raw=False)["seq"])


def test_a_session_moves_to_the_other_machine_live_and_back(cluster: tuple[RedisServer, Server, Server, str]) -> None:
    redis, a, b, _ = cluster

    async def go() -> None:
        page = await TestClient(a.url).open("/counter")
        for _ in range(3):
            await page.click("#inc")
        await page.disconnect()  # detached, still live on machine A
        page.client = TestClient(b.url)
        await page.resume()
        assert page.text("#count") == "Count: 3"
        a.wait_output(r"handing session \S+ to worker -2")  # A's owner gave it up: a live hand-over
        await page.click("#inc")
        assert page.text("#count") == "Count: 4"
        await page.disconnect()
        page.client = TestClient(a.url)
        await page.resume()
        assert page.text("#count") == "Count: 4"
        await page.click("#inc")
        assert page.text("#count") == "Count: 5"
        lease = redis.client().get(f"vango:own:{page.session_id}").decode()
        assert re.fullmatch(r"\d+\|.+", lease) and int(lease.split("|")[0]) >= 2  # fenced twice: A->B->A
        assert lease.split("|", 1)[1] == a.health()["machine"]

    run_telling(go(), a, b)


async def _pages_on_both_workers(url: str, path: str) -> list[Page]:
    """Two pages of ``path`` on different workers of one machine."""
    client = TestClient(url)
    pages = [await client.open(path)]
    for _ in range(40):
        extra = await client.open(path)
        if extra.worker != pages[0].worker:
            return [pages[0], extra]
        await extra.disconnect()
    raise AssertionError("40 pages never landed on the second worker")


def test_global_increments_are_exact_on_two_machines_with_two_workers_each(
        cluster: tuple[RedisServer, Server, Server, str]) -> None:
    redis, a, b, _ = cluster

    async def go() -> None:
        pages = await _pages_on_both_workers(a.url, "/shared") + await _pages_on_both_workers(b.url, "/shared")

        async def clicks(page: Page) -> None:
            for _ in range(50):
                await page.click("#add")

        await asyncio.gather(*(clicks(p) for p in pages))
        for page in pages:
            await page.wait_for_text("#shared", "200", timeout=20)
            assert page.text("#error") == ""
        client = redis.client()
        assert msgpack.unpackb(client.hget("vango:g:v", "cluster.shared")) == 200
        assert int(client.hget("vango:g:s", "cluster.shared")) == 200  # one sequence number per write

    run_telling(go(), a, b)


def test_sessions_of_a_killed_machine_resume_on_the_other_from_checkpoints(
        cluster: tuple[RedisServer, Server, Server, str]) -> None:
    redis, a, b, _ = cluster
    workers = a.per_worker("pid")

    async def go() -> None:
        client = TestClient(a.url)
        pages = [await client.open("/counter") for _ in range(6)]
        for i, page in enumerate(pages):
            for _ in range(i + 1):
                await page.click("#inc")
        await pages[0].disconnect()  # one detached, the others attached when the machine dies
        deadline = time.monotonic() + 10
        while not all(checkpoint_seq(redis, p.session_id) == p.last_seq for p in pages):
            assert time.monotonic() < deadline, "no up-to-date checkpoint of every session in 10 s"
            await asyncio.sleep(0.05)
        for pid in [a.pid, *workers.values()]:
            os.kill(pid, signal.SIGKILL)
        a.proc.wait(10)
        for pid in workers.values():
            _wait_gone(pid)
        other = TestClient(b.url)
        for i, page in enumerate(pages):
            if page.state.value == "open":
                page.drop()
                await page.wait_closed(5)
            page.client = other
            await _resume(page)
            assert page.text("#count") == f"Count: {i + 1}"
            await page.click("#inc")
            assert page.text("#count") == f"Count: {i + 2}"

    run_telling(go(), a, b)
    assert "does not listen: resuming from its checkpoint" in b.output()


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)
    raise AssertionError(f"worker {pid} still alive")


async def _resume(page: Page, attempts: int = 40) -> None:
    """Resume as the browser would: again after 1013 (the owner could not be asked yet)."""
    for attempt in range(attempts):
        try:
            await page.resume(timeout=5)
            return
        except SessionClosed as err:
            if err.code not in (None, 1006, Close.SERVER_BUSY) or attempt == attempts - 1:
                raise
            await asyncio.sleep(0.1)


def test_redis_restarted_mid_test(tmp_path: Path) -> None:
    """Down: live sessions go on, global writes fail with a clear error, health says so. Back: all catch up."""
    async def go() -> None:
        pa = await TestClient(a.url).open("/shared")
        pb = await TestClient(b.url).open("/shared")
        await pa.click("#add")
        await pb.wait_for_text("#shared", "1")
        redis.stop()
        for machine in (a, b):
            await _redis_said(machine, "down", 15)
        await pa.click("#add")
        await pa.wait_for(lambda p: "redis is down" in p.text("#error"), timeout=10)
        assert pa.text("#shared") == "1"
        await pa.click("#local-inc")  # the live session keeps working on its machine
        assert pa.text("#local") == "1"
        redis.start()
        for machine in (a, b):
            await _redis_said(machine, "up", 20)
        await _add_until_it_counts(pb, pa, "2")  # the hub's link reconnects with backoff: a write may still fail once
        assert pb.text("#error") == ""

    with machines_on(tmp_path, durable=True) as (redis, (a, b), _):
        run_telling(go(), a, b)


async def _redis_said(machine: Server, state: str, seconds: float) -> None:
    """Wait until every worker of ``machine`` says ``redis: <state>`` in its health."""
    deadline = time.monotonic() + seconds
    while set(machine.per_worker("redis").values()) != {state}:
        assert time.monotonic() < deadline, f"health never said redis: {state}: {machine.health()}"
        await asyncio.sleep(0.1)


async def _add_until_it_counts(writer: Page, reader: Page, shared: str) -> None:
    """Click #add on ``writer`` until ``reader`` shows #shared == ``shared`` (within 20 s), then ``writer`` too."""
    deadline = time.monotonic() + 20
    while True:
        await writer.click("#add")
        try:
            await reader.wait_for_text("#shared", shared, timeout=2)
            break
        except Exception:
            assert time.monotonic() < deadline, f"writes never worked again: {writer.text('#error')}"
    await writer.wait_for_text("#shared", shared)


def test_a_tampered_blob_and_foreign_messages_in_redis_are_refused(
        cluster: tuple[RedisServer, Server, Server, str]) -> None:
    redis, a, b, _ = cluster
    client = redis.client()

    async def go() -> None:
        page = await TestClient(a.url).open("/counter")
        await page.click("#inc")
        honest = await TestClient(a.url).open("/counter")
        await honest.click("#inc")
        a.stop()  # the whole machine stops: its sessions wait in Redis
        key = f"vango:s:{page.session_id}"
        blob = client.get(key)
        assert blob is not None and client.get(f"vango:s:{honest.session_id}") is not None
        client.set(key, blob[:-1] + bytes([blob[-1] ^ 1]), px=60_000)
        await page.wait_closed(5)  # 1001 from the stopping machine
        await honest.wait_closed(5)
        page.client = honest.client = TestClient(b.url)
        with pytest.raises(SessionClosed) as closed:
            await page.resume()
        assert closed.value.code == Close.SESSION_EXPIRED
        await honest.resume()  # the untouched one resumes: the refusal was the tampering
        assert honest.text("#count") == "Count: 1"
        # Garbage on the update channel and an unsigned request to B's hub: refused, nothing breaks.
        machine = b.health()["machine"]
        assert client.publish("vango:g", b"\x93junk") >= 1
        assert client.publish(f"vango:req:{machine}", msgpack.packb({"rid": "x", "id": page.session_id,
                                                                        "reply": "vango:rep:x"})) == 1
        b.wait_output(r"refused a message on vango:req:")
        b.wait_output(r"refused a message on vango:g")
        shared = await TestClient(b.url).open("/shared")
        await shared.click("#add")
        await shared.wait_for_text("#shared", "1")

    run_telling(go(), a, b)
    metrics = b.get("/_vango/metrics")[2].decode()
    rejected = re.search(r'vango_blobs_rejected_total\{[^}]*reason="tampered"[^}]*\}', metrics)
    assert rejected, metrics[-2000:]
    assert f'machine="{b.health()["machine"]}"' in rejected.group(0)  # /_vango/metrics labelled by machine


def test_session_limits_count_every_machine(tmp_path: Path) -> None:
    """max_sessions_per_ip = 3 over two machines: a fourth session from one IP is refused wherever it lands."""
    limits = {"VANGO_MAX_SESSIONS_PER_IP": "3", "VANGO_EVICT_ON_IP_LIMIT": "false", "VANGO_RESUME_WINDOW": "1s"}

    async def go() -> None:
        ca, cb = TestClient(a.url), TestClient(b.url)
        pages = [await ca.open("/counter"), await ca.open("/counter"), await cb.open("/counter")]
        for client in (cb, ca):
            with pytest.raises(SessionClosed) as refused:
                await client.open("/counter")
            assert refused.value.code == Close.RATE_LIMITED
            assert "too many sessions from this IP address" in str(refused.value)
        await pages[0].disconnect()  # detached: it expires after the (short) resume window ...
        deadline = time.monotonic() + 15
        while True:  # ... and its place comes free on every machine
            try:
                extra = await cb.open("/counter")
                break
            except SessionClosed as err:
                assert err.code == Close.RATE_LIMITED and time.monotonic() < deadline, f"never came free: {err}"
                await asyncio.sleep(0.2)
        assert extra.text("#count") == "Count: 0"

    with machines_on(tmp_path, **limits) as (_, (a, b), _):
        run_telling(go(), a, b)


def test_redis_restarted_without_its_data(tmp_path: Path) -> None:
    """A Redis that comes back empty: the globals it lost go back to their defaults everywhere and count again."""

    async def go() -> None:
        pa = await TestClient(a.url).open("/shared")
        pb = await TestClient(b.url).open("/shared")
        for _ in range(3):
            await pa.click("#add")
        await pb.wait_for_text("#shared", "3")
        redis.restart()
        await pa.wait_for_text("#shared", "0", timeout=20)  # reset to the default, not stuck at 3
        await pb.wait_for_text("#shared", "0", timeout=20)
        await _add_until_it_counts(pb, pa, "1")  # the link may still be on its way back: a write can fail once

    with machines_on(tmp_path) as (redis, (a, b), _):  # no append-only file: a restart loses everything
        run_telling(go(), a, b)


def test_an_attached_session_moves_and_its_old_socket_is_told(cluster: tuple[RedisServer, Server, Server, str]) -> None:
    """The browser still attached on A (A has not seen its network go) reconnects through B: one live copy."""
    import copy

    _, a, b, _ = cluster

    async def go() -> None:
        page = await TestClient(a.url).open("/counter")
        for _ in range(2):
            await page.click("#inc")
        again = copy.copy(page)  # the same tab's reconnect, while A still holds the old socket
        again._ws = None
        again.client = TestClient(b.url)
        await again.connect()
        code, _ = await page.wait_closed(5)
        assert code == Close.SESSION_TAKEN  # A closed its socket: it no longer holds the session
        assert again.text("#count") == "Count: 2"
        await again.click("#inc")
        assert again.text("#count") == "Count: 3"
        attached = [sum(s["attached"] for s in m.per_worker("sessions").values()) for m in (a, b)]
        assert attached == [0, 1]

    run_telling(go(), a, b)


def test_racing_resumes_on_two_machines_leave_one_live_copy(
        cluster: tuple[RedisServer, Server, Server, str]) -> None:
    """The session is live on A; the same tab's reconnects reach B and C at once: exactly one gets it."""
    import copy

    redis, a, b, secret = cluster

    async def go() -> None:
        for _ in range(3):
            page = await TestClient(a.url).open("/counter")
            await page.click("#inc")
            await page.disconnect()
            racers = []
            for machine in (b, c):
                racer = copy.copy(page)
                racer._ws, racer.client = None, TestClient(machine.url)
                racers.append(racer)
            results = await asyncio.gather(*(r.connect(timeout=10) for r in racers), return_exceptions=True)
            won = [r for r, res in zip(racers, results) if not isinstance(res, BaseException)]
            lost = [res for res in results if isinstance(res, BaseException)]
            assert won and all(isinstance(e, SessionClosed) and e.code == Close.SERVER_BUSY for e in lost), results
            # A second winner can only have taken it from the first, which is told 4009 (awaited below).
            live = [r for r in won if r.state.value == "open"]
            deadline = time.monotonic() + 5
            while len(live) > 1:
                assert time.monotonic() < deadline, "two live copies"
                await asyncio.sleep(0.05)
                live = [r for r in won if r.state.value == "open"]
            assert len(live) == 1 and live[0].text("#count") == "Count: 1"
            owner = b if live[0].client.base_url.endswith(f":{b.port}") else c
            lease = redis.client().get(f"vango:own:{page.session_id}").decode()
            assert lease.split("|", 1)[1] == owner.health()["machine"]
            await live[0].disconnect()
        held = [s["attached"] + s["detached"] + s["cold"] for s in a.per_worker("sessions").values()]
        assert sum(held) == 0  # A gave every one of them up: no second copy stayed behind

    c = start_machine(redis, secret, workers=1)
    try:
        run_telling(go(), a, b, c)
    finally:
        c.stop()


def test_a_logout_on_one_machine_reaches_the_users_sessions_on_the_other(tmp_path: Path) -> None:
    """Issue 11's logout broadcast (bus kind auth.logout) crosses machines through the hub's Redis link."""
    from tests.integration.accounts import login, logout, open_live
    from vango_mp import protocol


    async def go() -> None:
        cookie, _, _ = login(a, "bob", "builder")
        other, _, _ = login(b, "alice", "wonderland")
        on_b = await open_live(b, "/profile", cookie)  # bob's login cookie works on either machine
        bystander = await open_live(b, "/profile", other)
        status, headers = logout(a, cookie)
        assert (status, headers["Location"]) == (303, "/login")
        await on_b.frames_until(lambda f: f[0] == protocol.NAV and f[3] == protocol.NAV_LOAD and f[2] == "/login")
        await bystander.ws.send([protocol.PING, 7])  # alice is not bob: her page on B stays
        assert (await bystander.ws.recv())[0] == protocol.S_PONG
        for live in (on_b, bystander):
            live.ws.close()

    with machines_on(tmp_path, app="tests.apps.accountapp:app", VANGO_TRUSTED_PROXIES="127.0.0.1") as (_, (a, b), _):
        run_telling(go(), a, b)
