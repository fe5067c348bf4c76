"""The hub in-process, driven through real Unix sockets (one thread runs its selector)."""

from __future__ import annotations

import itertools
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest

from supervisor.hub import Hub
from vango_mp import bus


class HubThread:
    """Runs a Hub's selector loop until stopped; slots are handed out 0, 1, 2, ..."""

    def __init__(self, path: str, **kwargs: object) -> None:
        self.selector = selectors.DefaultSelector()
        slots = itertools.count()
        self.hub = Hub(path, self.selector, lookup_worker=lambda pid: (next(slots), 1), **kwargs)
        self.running = True
        self.turns = 0
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self) -> None:
        while self.running:
            for key, mask in self.selector.select(0.02):
                key.data(mask)
            self.turns += 1

    def pause(self) -> None:
        """Stop the loop thread; the test may then call the hub directly."""
        self.running = False
        self.thread.join(5)

    def resume(self) -> None:
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.pause()
        self.hub.close()


class Conn:
    """A raw client: send messages, read decoded ones with a deadline."""

    def __init__(self, path: str, slot: int) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.sock.settimeout(5)
        self.decoder = bus.FrameDecoder()
        self.inbox: list[bus.Message] = []
        self.send(bus.Hello(slot, 0, 1))
        assert isinstance(self.recv(), bus.Snapshot)

    def send(self, msg: bus.Message) -> None:
        self.sock.sendall(bus.encode(msg))

    def recv(self, timeout: float = 5.0) -> bus.Message:
        deadline = time.monotonic() + timeout
        while not self.inbox:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            data = self.sock.recv(65536)
            if not data:
                raise EOFError
            self.inbox += self.decoder.feed(data)
        return self.inbox.pop(0)

    def is_closed(self, timeout: float = 5.0) -> bool:
        try:
            while True:
                self.recv(timeout)
        except (EOFError, ConnectionResetError):  # reset: the hub closed with our bytes unread
            return True
        except (TimeoutError, socket.timeout):
            return False


@pytest.fixture()
def hub(tmp_path: Path) -> Iterator[HubThread]:
    h = HubThread(str(tmp_path / "bus.sock"), max_frame=256 * 1024, max_backlog=1024 * 1024)
    yield h
    h.stop()


def connect(hub: HubThread, n: int) -> list[Conn]:
    return [Conn(hub.hub.path, slot) for slot in range(n)]


def peers(conn: Conn) -> list[list[int]]:
    conn.send(bus.Request(1, bus.HUB, "peers", None))
    reply = conn.recv()
    assert isinstance(reply, bus.Response) and reply.ok
    return reply.body


def test_garbage_drops_only_that_connection(hub: HubThread) -> None:
    good, bad = connect(hub, 2)
    bad.sock.sendall(b"\xc1garbage")
    assert bad.is_closed()
    assert len(peers(good)) == 1


def test_oversized_frame_drops_the_connection(hub: HubThread) -> None:
    good, bad = connect(hub, 2)
    try:
        bad.sock.sendall(msgpack.packb([6, 0, "x", "y" * 300_000]))
    except (BrokenPipeError, ConnectionResetError):
        pass  # the hub may drop it before the whole frame is sent: that is the point
    assert bad.is_closed()
    assert len(peers(good)) == 1


def test_first_frame_must_be_hello(hub: HubThread) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(hub.hub.path)
    sock.sendall(bus.encode(bus.Ready()))
    sock.settimeout(5)
    assert sock.recv(100) == b""


def test_slow_peer_is_dropped_and_never_blocks_the_hub(hub: HubThread) -> None:
    fast, slow = connect(hub, 2)  # ``slow`` never reads again
    payload = "z" * 50_000
    for i in range(60):  # ~3 MB to the slow peer, more than its 1 MiB backlog
        fast.send(bus.Broadcast(0, "spam", [i, payload]))
    # The hub keeps answering the fast peer while the slow one is queued and then dropped.
    deadline = time.monotonic() + 5
    while len(peers(fast)) != 1:
        assert time.monotonic() < deadline, "slow peer was not dropped"
        time.sleep(0.05)


def test_request_to_a_slot_is_answered_by_that_worker(hub: HubThread) -> None:
    a, b = connect(hub, 2)
    a.send(bus.Request(7, 1, "echo", {"x": 1}))
    forwarded = b.recv()
    assert isinstance(forwarded, bus.Request) and forwarded.peer == 0 and forwarded.body == {"x": 1}
    b.send(bus.Response(forwarded.rid, True, "pong"))
    assert a.recv() == bus.Response(7, True, "pong")


def test_request_to_an_empty_slot_fails_at_once(hub: HubThread) -> None:
    (a,) = connect(hub, 1)
    a.send(bus.Request(3, 5, "echo", None))
    reply = a.recv()
    assert isinstance(reply, bus.Response) and not reply.ok and "slot 5" in reply.body


def test_request_any_takes_the_first_yes(hub: HubThread) -> None:
    a, b, c = connect(hub, 3)
    a.send(bus.Request(9, bus.ANY, "adopt", "sid"))
    rb, rc = b.recv(), c.recv()
    b.send(bus.Response(rb.rid, True, None))  # "not mine"
    c.send(bus.Response(rc.rid, True, {"blob": 1}))
    assert a.recv() == bus.Response(9, True, {"blob": 1})


def test_request_any_answers_none_when_all_decline_or_leave(hub: HubThread) -> None:
    a, b, c = connect(hub, 3)
    a.send(bus.Request(4, bus.ANY, "adopt", "sid"))
    rb, _ = b.recv(), c.recv()
    b.send(bus.Response(rb.rid, False, "boom"))
    c.sock.close()  # leaving counts as declining
    assert a.recv() == bus.Response(4, True, None)


class BrokenSock:
    """A peer socket whose sends fail as if the worker had just died."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, data: bytes) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def close(self) -> None:
        self.sock.close()


def test_a_target_dying_mid_fan_out_is_dropped_and_the_request_still_answered(hub: HubThread) -> None:
    a, b, c = connect(hub, 3)
    hub.pause()
    by_slot = {p.slot: p for p in hub.hub.peers.values()}
    by_slot[2].sock = BrokenSock(by_slot[2].sock)  # type: ignore[assignment]
    hub.hub.handle_request(by_slot[0], bus.Request(5, bus.ANY, "adopt", "sid"))
    hub.resume()
    rb = b.recv()
    b.send(bus.Response(rb.rid, True, None))
    assert a.recv() == bus.Response(5, True, None)
    assert c.is_closed()
    assert len(peers(a)) == 2


def test_broadcast_reaches_everyone_but_the_sender(hub: HubThread) -> None:
    a, b, c = connect(hub, 3)
    a.send(bus.Broadcast(-1, "hello", 42))
    assert b.recv() == bus.Broadcast(0, "hello", 42) == c.recv()
    assert not a.inbox


def test_global_writes_are_sequenced_and_broadcast_in_order(hub: HubThread) -> None:
    a, b = connect(hub, 2)
    for i in range(50):
        (a if i % 2 else b).send(bus.GlobalWrite(i, "n", "incr", [1], 0))
    for conn in (a, b):
        updates = [conn.recv() for _ in range(50)]
        assert [u.seq for u in updates] == list(range(1, 51))
        assert [u.value for u in updates] == list(range(1, 51))


def test_snapshot_carries_every_key(hub: HubThread) -> None:
    (a,) = connect(hub, 1)
    a.send(bus.GlobalWrite(1, "log", "append", ["x", 2], []))
    a.recv()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(hub.hub.path)
    sock.sendall(bus.encode(bus.Hello(1, 0, 1)))
    sock.settimeout(5)
    assert bus.FrameDecoder().feed(sock.recv(65536)) == [bus.Snapshot({"log": [1, ["x"]]})]


def test_rejected_op_answers_the_writer_only(hub: HubThread) -> None:
    a, b = connect(hub, 2)
    a.send(bus.GlobalWrite(5, "s", "incr", [1], "text"))
    err = a.recv()
    assert isinstance(err, bus.GlobalError) and err.wid == 5
    a.send(bus.GlobalWrite(6, "s", "set", ["ok"], "text"))
    update = b.recv()
    assert isinstance(update, bus.GlobalUpdate) and (update.seq, update.value, update.wid) == (1, "ok", 6)
