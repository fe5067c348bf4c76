"""RedisStore against a real redis-server: leases, fencing, one claimant, write-behind, signed messages."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgpack
import pytest

from tests.integration.redisserver import RedisServer, redis_server
from vango_mp.stores.base import OwnerRefused, StoreBusy
from vango_mp.stores.redis import RedisStore
from vango_mp.stores.wire import Rejected, Signer, decode_update, machine_key

pytestmark = pytest.mark.timeout(60)

SECRET = b"s" * 32


@pytest.fixture
def redis(tmp_path: Path):  # type: ignore[no-untyped-def]
    server = redis_server(tmp_path)
    yield server
    server.stop()


def store(redis: RedisServer, machine: str) -> RedisStore:
    return RedisStore(redis.url, ttl=60, secret=SECRET, timeout=2.0, machine=machine)


def test_a_stale_owner_cannot_overwrite_a_session_another_machine_claimed(redis: RedisServer) -> None:
    async def go() -> None:
        a, b = store(redis, "A"), store(redis, "B")
        stale: list[list[str]] = []
        a.on_stale = stale.append
        a.on_open("sid")
        a.save("sid", "ip", b"blob-1")
        assert await a.drain(2)
        assert redis.client().get("vango:own:sid") == b"1|A"
        # A is not alive (no heartbeat key): B takes the checkpoint and the lease, with the next fence.
        assert await b.claim("sid") == b"blob-1"
        assert redis.client().get("vango:own:sid") == b"2|B"  # the fencing counter only grows
        a.save("sid", "ip", b"blob-from-the-past")  # A comes back and checkpoints its copy
        assert await a.drain(2)
        assert stale == [["sid"]]  # refused: A is told to close its copy
        assert redis.client().get("vango:s:sid") is None  # and nothing of A's was written
        b.save("sid", "ip", b"blob-2")
        assert await b.drain(2)
        assert redis.client().get("vango:s:sid") == b"blob-2"
        for s in (a, b):
            await s.aclose()

    asyncio.run(go())


def test_of_two_racing_claims_exactly_one_gets_the_session(redis: RedisServer) -> None:
    async def go() -> None:
        owner = store(redis, "A")
        claimants = [store(redis, f"C{i}") for i in range(8)]
        for n in range(20):
            owner.save(f"s{n}", "ip", f"blob{n}".encode())
        assert await owner.drain(2)
        for n in range(20):
            got = await asyncio.gather(*(c.claim(f"s{n}") for c in claimants))
            assert sorted(g for g in got if g is not None) == [f"blob{n}".encode()]
        for s in (owner, *claimants):
            await s.aclose()

    asyncio.run(go())


def test_a_live_owner_is_asked_and_its_answer_is_checked(redis: RedisServer) -> None:
    """The lease names a live machine: the claim asks it over Redis; a refusal or silence is not a checkpoint."""
    async def go() -> None:
        import redis.asyncio as aioredis

        a, b = store(redis, "A"), store(redis, "B")
        a.on_open("sid")
        a.save("sid", "ip", b"old-checkpoint")
        assert await a.drain(2)
        raw = aioredis.Redis.from_url(redis.url)
        await raw.set(machine_key("A"), "1", px=60_000)  # A is alive
        pubsub = raw.pubsub()
        await pubsub.subscribe("vango:req:A")
        signer = Signer(SECRET)

        async def answer(reply: object) -> None:  # plays A's hub for one request
            async for message in pubsub.listen():
                if message["type"] == "message":
                    request = signer.unpack(message["data"])
                    assert request["id"] == "sid" and request["creds"] == ["browser"]
                    await raw.rpush(request["reply"], signer.pack({"rid": request["rid"], "answer": reply}))
                    return

        responder = asyncio.create_task(answer({"refused": "another browser"}))
        with pytest.raises(OwnerRefused):
            await b.claim("sid", ["browser"])
        await responder
        responder = asyncio.create_task(answer({"blob": b"live-blob"}))
        assert await b.claim("sid", ["browser"]) == b"live-blob"  # handed over live, not the old checkpoint
        await responder
        assert (await raw.get("vango:own:sid")).decode().endswith("|B")
        # A forged answer (not signed with the cluster's secret) is not trusted.
        c = store(redis, "C")
        forged = Signer(b"x" * 32)

        async def forge() -> None:
            async for message in pubsub.listen():
                if message["type"] == "message":
                    request = signer.unpack(message["data"])
                    await raw.rpush(request["reply"], forged.pack({"rid": request["rid"], "answer": {"blob": b"evil"}}))
                    return

        await raw.set("vango:own:sid", "5|A", px=60_000)
        responder = asyncio.create_task(forge())
        with pytest.raises(StoreBusy):
            await c.claim("sid", ["browser"])
        await responder
        for s in (a, b, c):
            await s.aclose()
        await raw.aclose()

    asyncio.run(go())


def test_writes_queue_while_redis_is_down_and_land_when_it_is_back(tmp_path: Path) -> None:
    server = redis_server(tmp_path, durable=False)

    async def go() -> None:
        s = store(server, "A")
        assert s.status() == "connecting"
        server.stop()
        s.save("sid", "ip", b"blob")
        assert not await s.drain(0.5)  # it cannot be written now ...
        assert s.status() == "down"
        with pytest.raises(StoreBusy):
            await s.claim("other")  # a resume that needs Redis is refused with 1013, not "expired"
        server.start()
        assert await s.drain(10)  # ... and is, once Redis is back (the writer retries with backoff)
        assert server.client().get("vango:s:sid") == b"blob"
        assert s.status() == "up"
        await s.aclose()

    try:
        asyncio.run(go())
    finally:
        server.stop()


def test_signed_messages_and_updates_refuse_foreign_data() -> None:
    signer = Signer(SECRET)
    data = signer.pack({"rid": "1"})
    assert signer.unpack(data) == {"rid": "1"}
    with pytest.raises(Rejected):
        signer.unpack(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(Rejected):
        Signer(b"t" * 32).unpack(data)
    with pytest.raises(Rejected):
        signer.unpack(b"short")
    good = b"".join(msgpack.packb(v) for v in ("k", 3, "m", 1, 2, [1, 2]))
    assert decode_update(good) == ("k", 3, "m", 1, 2, [1, 2])
    for bad in (b"\x93junk", good + b"\x01", good[:-2], b"".join(msgpack.packb(v) for v in (1, 3, "m", 1, 2, 0))):
        with pytest.raises(Rejected):
            decode_update(bad)


def test_a_checkpoint_tick_writes_lost_leases_again_and_finds_stolen_ones(redis: RedisServer) -> None:
    async def go() -> None:
        a = store(redis, "A")
        stale: list[list[str]] = []
        a.on_stale = stale.append
        a.on_open("s1")
        a.on_open("s2")
        assert await a.drain(2)
        redis.client().flushdb()  # Redis came back without its data
        redis.client().set("vango:own:s2", "7|B")  # ... and s2 was claimed by machine B meanwhile
        a.touch(["s1", "s2"])
        assert await a.drain(2)
        assert redis.client().get("vango:own:s1").decode().endswith("|A")  # resumable elsewhere again
        assert stale == [["s2"]]  # ours is stale: closed here
        await a.aclose()

    asyncio.run(go())
