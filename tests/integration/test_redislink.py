"""The hub's Redis link in-process against a real redis-server: globals, broadcasts, requests, outages."""

from __future__ import annotations

import selectors
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

from supervisor.redislink import DOWN, RedisLink
from tests.integration.redisserver import RedisServer, redis_server
from vango_mp.stores import wire

pytestmark = pytest.mark.timeout(60)
SECRET = b"k" * 32


class Machine:
    """One link with the selector loop a hub would run, recording what it delivers."""

    def __init__(self, redis: RedisServer, name: str) -> None:
        self.selector = selectors.DefaultSelector()
        self.events: list[tuple[Any, ...]] = []
        self.link = RedisLink(redis.url, name, SECRET, self.selector, self.events.append)
        self.link.start()

    def pump(self) -> None:
        for key, mask in self.selector.select(0.02):
            key.data(mask)

    def close(self) -> None:
        self.link.close()
        self.selector.close()


def until(machines: list[Machine], predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, [m.events[-5:] for m in machines]
        for m in machines:
            m.pump()


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = redis_server(tmp_path, durable=True)
    yield server
    server.stop()


def of(machine: Machine, kind: str) -> list[tuple[Any, ...]]:
    return [e for e in machine.events if e[0] == kind]


def test_writes_on_two_machines_are_sequenced_in_redis_and_reach_both(redis: RedisServer) -> None:
    a, b = Machine(redis, "A"), Machine(redis, "B")
    try:
        until([a, b], lambda: a.link.status == b.link.status == "up")
        for n in range(20):
            a.link.write(1, n, "k", "incr", [1], 0)
            b.link.write(2, n, "k", "incr", [2], 0)
        a.link.write(1, 100, "log", "append", ["x", 3], [])
        b.link.write(2, 100, "log", "append", ["y", 3], [])
        a.link.write(1, 101, "k", "incr", ["nope"], 0)
        b.link.write(2, 101, "cfg", "update", [{"a": 1}], {})
        until([a, b], lambda: sum(1 for e in of(a, "update") if e[1] == "k") >= 40
              and sum(1 for e in of(b, "update") if e[1] == "k") >= 40 and of(a, "error"))
        for m in (a, b):
            updates = [e for e in of(m, "update") if e[1] == "k"]
            assert [e[2] for e in updates] == list(range(1, 41))  # every seq, in order, on each machine
            assert updates[-1][3] == 60  # 20 x 1 + 20 x 2: nothing lost
        own = [e for e in of(a, "update") if e[1] == "k" and e[4] == 1]
        assert sorted(e[5] for e in own) == list(range(20))  # A's writers get their own acks (pid, wid)
        assert of(a, "error") == [("error", 1, 101, "k", "incr needs numbers, got 'nope'")]
        until([a, b], lambda: any(e[1] == "log" for e in of(a, "update")) and
              sum(1 for e in of(b, "update") if e[1] == "log") >= 2)
        assert sorted(msgpack.unpackb(redis.client().hget(wire.GLOBAL_VALUES, "log"))) == ["x", "y"]
        until([a, b], lambda: any(e[1] == "cfg" for e in of(a, "update")))
        assert [e[3] for e in of(a, "update") if e[1] == "cfg"] == [{"a": 1}]
    finally:
        a.close()
        b.close()


def test_cluster_broadcasts_and_adopt_requests_cross_machines_signed(redis: RedisServer) -> None:
    a, b = Machine(redis, "A"), Machine(redis, "B")
    try:
        until([a, b], lambda: a.link.status == b.link.status == "up")
        a.link.broadcast("auth.logout", {"user": "u1", "reason": "logout"})  # issue 11's logout, everywhere
        a.link.broadcast("cluster.ping", 1)
        until([a, b], lambda: len(of(b, "broadcast")) == 2)
        assert of(b, "broadcast") == [("broadcast", "auth.logout", {"user": "u1", "reason": "logout"}),
                                      ("broadcast", "cluster.ping", 1)]
        assert of(a, "broadcast") == []  # not echoed to the sender
        client = redis.client()
        forged = wire.Signer(b"z" * 32).pack({"from": "X", "kind": "auth.logout", "body": {"user": "u2"}})
        client.publish(wire.BROADCAST_CHANNEL, forged)
        signer = wire.Signer(SECRET)
        client.publish(wire.BROADCAST_CHANNEL, signer.pack({"from": "X", "kind": "session.adopt", "body": 1}))
        client.publish(wire.request_channel("B"), signer.pack({"rid": "r1", "id": "sid", "creds": ["c"],
                                                               "reply": wire.reply_key("r1")}))
        until([a, b], lambda: bool(of(b, "adopt")) and len(of(b, "rejected")) >= 1)
        assert of(b, "broadcast")[2:] == []  # neither the forged logout nor a non-cluster kind got through
        assert of(b, "adopt") == [("adopt", "r1", wire.reply_key("r1"), {"id": "sid", "creds": ["c"]})]
        b.link.answer(wire.reply_key("r1"), "r1", {"blob": b"sealed"})
        popped = client.blpop([wire.reply_key("r1")], timeout=5)
        assert popped is not None and signer.unpack(popped[1]) == {"rid": "r1", "answer": {"blob": b"sealed"}}
    finally:
        a.close()
        b.close()


def test_an_outage_fails_writes_clearly_and_the_link_catches_up(redis: RedisServer) -> None:
    a = Machine(redis, "A")
    try:
        until([a], lambda: a.link.status == "up")
        a.link.write(1, 1, "k", "set", [5], 0)
        until([a], lambda: bool(of(a, "update")))
        redis.stop()
        until([a], lambda: a.link.status == "down")
        a.link.write(1, 2, "k", "incr", [1], 0)
        assert of(a, "error")[-1] == ("error", 1, 2, "k", DOWN)
        redis.start()
        until([a], lambda: a.link.status == "up", timeout=15)
        snapshot = of(a, "snapshot")[-1][1]
        assert snapshot == {"k": [1, 5]}  # what workers are sent again after the reconnect
        a.link.write(1, 3, "k", "incr", [1], 0)
        until([a], lambda: of(a, "update")[-1][2:4] == (2, 6))
        assert redis.client().exists(wire.machine_key("A"))  # its heartbeat is back too
    finally:
        a.close()
