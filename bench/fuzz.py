"""Fuzz a live vango-mp: many sockets send random valid and invalid frame sequences.

    python bench/fuzz.py                          # 60 s against `vango-mp --workers 2` it starts
    python bench/fuzz.py --seconds 600 --clients 32 --seed 1234
    python bench/fuzz.py --url http://127.0.0.1:8080 --seconds 30   # a server you started (pids only)

What the sockets do (a seeded ``random.Random`` per socket, so a seed replays
the same choices; timing still varies): valid sessions that click, type,
submit, ACK and PING with random hids, payloads and sequence numbers; RESYNC
floods; HELLO with forged, foreign or malformed session ids, stale or future
``last_seq``, wrong CSRF, version or path; resumes of sessions other fuzz
sockets made; events before HELLO and HELLO twice; random bytes, random
msgpack structures, valid frames mutated field by field and byte by byte,
lz4 bodies with lying sizes, text messages, oversized messages; WebSocket
pings and closes with random codes, aborted connections, raw TCP garbage.

While that runs, a *bystander* session on ``/counter`` clicks ``#inc`` twice
a second; every click must come back as its PATCHES frame, in order. After
it: every worker has the pid it had before (nothing crashed or was
replaced), the server printed no ``Traceback``, the bystander still clicks.
The summary (counts per action and close code, the checks, the seed, and the
server output around any traceback) is printed and written as JSON to
``bench/results/fuzz-<timestamp>.json``; the exit status is 1 if a check
failed. ``tests/integration/test_fuzz_live.py`` runs the same driver for ~10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import tornado.httpclient
import tornado.iostream
import tornado.websocket

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vango_mp import protocol  # noqa: E402

PAGES = ["/counter", "/todos", "/global", "/"]
_BOOT = re.compile(r"window.__vango=(\{.*?\})</script>")
_HID = re.compile(r'data-hid="(\d+)"([^>]*)')

from bench.serverproc import start_server, vango_base  # noqa: E402
from bench.fuzz_frames import (  # noqa: E402
    EVENT_NAMES, garbage, mutate, mutate_bytes, pack, payload, rand_int, rand_str)

# region Pages ----------------------------------------------------------------------


@dataclass
class Page:
    path: str
    csrf: str
    cookie: str
    ssr_hash: str | None
    hids: list[int]
    handlers: list[int]  # hids of elements with data-ve
    html: str = ""


async def fetch_page(base: str, path: str) -> Page:
    client = tornado.httpclient.AsyncHTTPClient()
    resp = await client.fetch(base + path, raise_error=False, request_timeout=10, follow_redirects=False)
    html = resp.body.decode(errors="replace")
    cookies = resp.headers.get_list("Set-Cookie")
    cookie = "; ".join(c.split(";", 1)[0] for c in cookies)
    m = _BOOT.search(html)
    boot = json.loads(m.group(1)) if m else {}
    hids, handlers = [], []
    for hm in _HID.finditer(html):
        hids.append(int(hm.group(1)))
        if "data-ve" in hm.group(2):
            handlers.append(int(hm.group(1)))
    return Page(boot.get("path", path), boot.get("csrf", ""), cookie, boot.get("h"), hids, handlers, html)


# endregion
# region The fuzzing sockets ---------------------------------------------------------


@dataclass
class Stats:
    seed: int = 0
    connections: int = 0
    messages_sent: int = 0
    bytes_sent: int = 0
    frames_received: int = 0
    welcomes_by_worker: Counter[int] = field(default_factory=Counter)
    scenarios: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    close_codes: Counter[str] = field(default_factory=Counter)
    client_errors: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed, "connections": self.connections, "messages_sent": self.messages_sent,
            "bytes_sent": self.bytes_sent, "frames_received": self.frames_received,
            "welcomes_by_worker": {str(k): v for k, v in sorted(self.welcomes_by_worker.items())},
            "scenarios": dict(self.scenarios.most_common()), "actions": dict(self.actions.most_common()),
            "close_codes": dict(self.close_codes.most_common()),
            "client_errors": dict(self.client_errors.most_common()),
        }


class Conn:
    """One fuzzing WebSocket; a reader task drains what the server sends."""

    def __init__(self, ws: tornado.websocket.WebSocketClientConnection, stats: Stats) -> None:
        self.ws, self.stats = ws, stats
        self.welcome: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        while True:
            msg = await self.ws.read_message()
            if msg is None:
                return
            self.stats.frames_received += 1
            if not self.welcome.done() and isinstance(msg, bytes):
                try:
                    frame = protocol.unpack_message(msg, 1 << 24)
                except protocol.ProtocolError:
                    continue
                if frame and frame[0] == protocol.WELCOME:
                    self.welcome.set_result(frame)

    async def send(self, message: bytes | str, action: str) -> None:
        self.stats.actions[action] += 1
        self.stats.messages_sent += 1
        self.stats.bytes_sent += len(message)
        await self.ws.write_message(message, binary=isinstance(message, bytes))

    async def wait_welcome(self, timeout: float) -> list[Any] | None:
        try:
            frame = await asyncio.wait_for(asyncio.shield(self.welcome), timeout)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            return None
        self.stats.welcomes_by_worker[frame[4] if len(frame) > 4 else -1] += 1
        return frame

    def finish(self, rng: random.Random) -> None:
        how = rng.randrange(4)
        if how == 0 and self.ws.protocol is not None and self.ws.protocol.stream is not None:
            self.stats.actions["abort"] += 1
            self.ws.protocol.stream.close()  # no close frame: a reset, as a dying client would
        elif how == 1:
            code = rng.choice([1000, 1001, 1002, 1003, 1008, 1011, 3000, 4000, 4999])
            self.stats.actions["close-code"] += 1
            self.ws.close(code, rand_str(rng, 20))
        else:
            self.ws.close()


class Fuzzer:
    def __init__(self, base: str, seed: int, *, clients: int = 12, max_size: int = protocol.MAX_MESSAGE_SIZE,
                 protect: set[str] | None = None) -> None:
        self.base, self.seed, self.clients, self.max_size = base, seed, clients, max_size
        self.protect = protect if protect is not None else set()  # session ids never resumed (the bystander's)
        self.stats = Stats(seed=seed)
        self.pages: list[Page] = []
        self.sids: list[str] = []  # sessions the fuzz made, for foreign resumes

    async def connect(self, page: Page | None, rng: random.Random) -> Conn:
        url = self.base.replace("http://", "ws://") + "/_vango/ws"
        headers = {"Origin": self.base}
        if page is not None and page.cookie and rng.random() < 0.95:
            headers["Cookie"] = page.cookie
        req = tornado.httpclient.HTTPRequest(url, headers=headers, connect_timeout=5, request_timeout=5)
        ws = await tornado.websocket.websocket_connect(req, max_message_size=1 << 24)
        self.stats.connections += 1
        return Conn(ws, self.stats)

    async def page(self, rng: random.Random) -> Page:
        if len(self.pages) < 24 or rng.random() < 0.05:
            self.pages.append(await fetch_page(self.base, rng.choice(PAGES)))
            del self.pages[:-48]
        return rng.choice(self.pages)

    def hello(self, page: Page, rng: random.Random, sid: str | None = None, last_seq: int = 0) -> list[Any]:
        return [protocol.HELLO, protocol.VERSION, page.csrf, page.path, sid, last_seq, page.ssr_hash]

    def hid(self, page: Page, rng: random.Random) -> Any:
        r = rng.random()
        if r < 0.5 and page.handlers:
            return rng.choice(page.handlers)
        if r < 0.8 and page.hids:
            return rng.choice(page.hids) + rng.choice([0, 0, 1, 1000])
        return rand_int(rng)

    def valid_frame(self, page: Page, rng: random.Random, cseq: int) -> tuple[list[Any], str]:
        r = rng.random()
        if r < 0.45:
            return [protocol.EVENT, cseq, self.hid(page, rng), rng.choice(EVENT_NAMES), payload(rng)], "event"
        if r < 0.6:
            return [protocol.ACK, rng.choice([0, cseq, rand_int(rng) & 0xFFFF])], "ack"
        if r < 0.75:
            return [protocol.RESYNC, rng.choice([0, cseq, 10**6])], "resync"
        if r < 0.9:
            return [protocol.PING, rng.randrange(2**31)], "ping"
        return [protocol.PONG, rng.randrange(2**31)], "pong"

    def forged_sid(self, rng: random.Random) -> Any:
        choices: list[Any] = [
            "", "x", "forged-" + rand_str(rng, 20), "A" * 43, "A" * 128, "A" * 129, rand_str(rng, 200), "\x00" * 16,
            "../../etc/passwd", "%00", "é" * 64, "é" * 65, 12345, ["sid"],
        ]
        others = [s for s in self.sids if s not in self.protect]
        if others:
            real = rng.choice(others)
            choices += [real, real, real[:-1], real + "x", real.upper(), " " + real]
        sid = rng.choice(choices)
        return "forged" if isinstance(sid, str) and sid in self.protect else sid

    async def scenario(self, rng: random.Random) -> None:
        kind = rng.choices(
            ["session", "forged-hello", "resume", "pre-hello", "garbage", "bad-hello", "silent", "tcp", "ws-control"],
            weights=[40, 12, 8, 5, 14, 8, 3, 5, 5],
        )[0]
        self.stats.scenarios[kind] += 1
        if kind == "tcp":
            await self.tcp_garbage(rng)
            return
        page = await self.page(rng)
        conn = await self.connect(page, rng)
        try:
            await getattr(self, "s_" + kind.replace("-", "_"))(conn, page, rng)
        except (tornado.websocket.WebSocketClosedError, tornado.iostream.StreamClosedError):
            pass
        finally:
            conn.finish(rng)
            try:
                await asyncio.wait_for(conn.reader, 2)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - the server may drop us any way it likes
                conn.reader.cancel()
            self.stats.close_codes[str(conn.ws.close_code)] += 1

    async def s_session(self, conn: Conn, page: Page, rng: random.Random) -> None:
        await conn.send(pack(self.hello(page, rng)), "hello")
        welcome = await conn.wait_welcome(3)
        if welcome is not None and isinstance(welcome[1], str):
            self.sids.append(welcome[1])
            del self.sids[:-200]
        for cseq in range(1, rng.randrange(2, 40)):
            r = rng.random()
            if r < 0.6:
                frame, action = self.valid_frame(page, rng, cseq)
                await conn.send(pack(frame, compress=rng.random() < 0.1), action)
            elif r < 0.7:
                n = rng.randrange(5, 60)
                for _ in range(n):
                    await conn.send(pack([protocol.RESYNC, rng.choice([0, cseq])]), "resync-flood")
            elif r < 0.78:
                frame, _ = self.valid_frame(page, rng, cseq)
                await conn.send(pack(mutate(rng, frame)), "mutated-frame")
            elif r < 0.84:
                frame, _ = self.valid_frame(page, rng, cseq)
                await conn.send(mutate_bytes(rng, pack(frame)), "mutated-bytes")
            elif r < 0.88:
                await conn.send(pack(self.hello(page, rng)), "hello-twice")
            elif r < 0.93:
                await conn.send(garbage(rng, self.max_size), "garbage")
            else:
                await asyncio.sleep(rng.choice([0, 0.01, 0.05, 0.2]))
            if rng.random() < 0.3:
                await asyncio.sleep(0)

    async def s_forged_hello(self, conn: Conn, page: Page, rng: random.Random) -> None:
        last_seq = rng.choice([0, 1, 5, 100, 10**6, 2**53])
        await conn.send(pack([protocol.HELLO, 1, page.csrf, page.path, self.forged_sid(rng), last_seq, page.ssr_hash]),
                        "forged-hello")
        await conn.wait_welcome(1)
        for cseq in range(rng.randrange(4)):
            frame, action = self.valid_frame(page, rng, cseq + 1)
            await conn.send(pack(frame), action)

    async def s_resume(self, conn: Conn, page: Page, rng: random.Random) -> None:
        others = [s for s in self.sids if s not in self.protect]
        sid = rng.choice(others) if others else None
        await conn.send(pack(self.hello(page, rng, sid, rng.choice([0, 1, 3, 50, 1000]))), "resume")
        await conn.wait_welcome(2)
        for cseq in range(rng.randrange(6)):
            frame, action = self.valid_frame(page, rng, cseq + 1)
            await conn.send(pack(frame), action)

    async def s_pre_hello(self, conn: Conn, page: Page, rng: random.Random) -> None:
        frame, action = self.valid_frame(page, rng, 1)
        await conn.send(pack(frame), "pre-hello-" + action)
        await conn.send(pack(self.hello(page, rng)), "hello")

    async def s_garbage(self, conn: Conn, page: Page, rng: random.Random) -> None:
        if rng.random() < 0.5:
            await conn.send(pack(self.hello(page, rng)), "hello")
            await conn.wait_welcome(1)
        for _ in range(rng.randrange(1, 4)):
            await conn.send(garbage(rng, self.max_size), "garbage")

    async def s_bad_hello(self, conn: Conn, page: Page, rng: random.Random) -> None:
        good = self.hello(page, rng)
        bad = rng.choice([
            lambda: [*good[:2], "forged." + rand_str(rng, 20), *good[3:]],
            lambda: [good[0], rng.choice([0, 2, 99, -1, "1"]), *good[2:]],
            lambda: [*good[:3], rng.choice(["", "counter", "/" + "a" * 9000, "//evil", "/\x00", "/nope"]), *good[4:]],
            lambda: [*good[:5], rand_int(rng), *good[6:]],
            lambda: [*good[:6], rand_str(rng, 80)],
            lambda: good[:rng.randrange(1, 6)],
            lambda: [*good, None, 1],
            lambda: mutate(rng, good),
        ])()
        await conn.send(pack(bad), "bad-hello")
        await conn.wait_welcome(0.5)

    async def s_silent(self, conn: Conn, page: Page, rng: random.Random) -> None:
        await asyncio.sleep(rng.uniform(0, 0.5))

    async def s_ws_control(self, conn: Conn, page: Page, rng: random.Random) -> None:
        await conn.send(pack(self.hello(page, rng)), "hello")
        await conn.wait_welcome(1)
        for _ in range(rng.randrange(1, 6)):
            self.stats.actions["ws-ping"] += 1
            conn.ws.ping(rng.randbytes(rng.randrange(126)))
            await asyncio.sleep(0)

    async def tcp_garbage(self, rng: random.Random) -> None:
        host, port = self.base.removeprefix("http://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        self.stats.connections += 1
        upgrade = (f"GET /_vango/ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                   f"Origin: {self.base}\r\n\r\n").encode()
        data = rng.choice([
            rng.randbytes(rng.randrange(1, 512)),
            upgrade + rng.randbytes(rng.randrange(1, 256)),  # upgraded, then frames that are not frames
            upgrade + b"\x82\xff" + b"\xff" * 8,  # a masked-less binary frame claiming 2**64-1 bytes
            upgrade[: rng.randrange(len(upgrade))],  # half a handshake
            b"GET /counter HTTP/1.1\r\nHost: x\r\n" + b"X: " + b"a" * 70_000 + b"\r\n\r\n",
        ])
        self.stats.actions["tcp-garbage"] += 1
        try:
            writer.write(data)
            await writer.drain()
            await asyncio.wait_for(reader.read(1024), rng.choice([0.05, 0.2]))
        except (OSError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()

    async def worker_loop(self, index: int, deadline: float) -> None:
        rng = random.Random(f"{self.seed}/{index}")
        while time.monotonic() < deadline:
            try:
                await asyncio.wait_for(self.scenario(rng), 15)
            except Exception as exc:  # noqa: BLE001 - refusals, resets: the server's call, counted
                self.stats.client_errors[f"{type(exc).__name__}: {exc}"[:100]] += 1
                await asyncio.sleep(0.01)

    async def run(self, seconds: float) -> Stats:
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(self.worker_loop(i, deadline) for i in range(self.clients)))
        return self.stats


# endregion
# region The bystander ---------------------------------------------------------------


@dataclass
class Bystander:
    """A polite session on /counter: each click must come back as the next PATCHES frame."""

    base: str
    ws: Any = None
    sid: str = ""
    worker: int = -1
    inc: int = 0
    clicks: int = 0
    cseq: int = 0
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    async def open(self) -> None:
        page = await fetch_page(self.base, "/counter")
        m = re.search(r'<button[^>]*id="inc"[^>]*>', page.html)
        assert m, "no #inc on /counter"
        self.inc = int(re.search(r'data-hid="(\d+)"', m.group(0)).group(1))  # type: ignore[union-attr]
        url = self.base.replace("http://", "ws://") + "/_vango/ws"
        req = tornado.httpclient.HTTPRequest(url, headers={"Origin": self.base, "Cookie": page.cookie})
        self.ws = await tornado.websocket.websocket_connect(req)
        await self._send([protocol.HELLO, 1, page.csrf, "/counter", None, 0, page.ssr_hash])
        welcome = await self._recv(5)
        assert welcome[0] == protocol.WELCOME, welcome
        self.sid, self.worker = welcome[1], welcome[4]
        if welcome[2] > 0:  # the SSR came from another worker (its #worker differs): a FULL follows
            full = await self._recv(5)
            assert full[0] == protocol.FULL and full[1] == welcome[2], full

    async def _send(self, frame: list[Any]) -> None:
        await self.ws.write_message(b"\x00" + msgpack.packb(frame), binary=True)

    async def _recv(self, timeout: float) -> list[Any]:
        while True:
            msg = await asyncio.wait_for(self.ws.read_message(), timeout)
            if msg is None:
                raise ConnectionError(f"bystander closed by the server: {self.ws.close_code} {self.ws.close_reason}")
            frame = protocol.unpack_message(msg, 1 << 24)
            if frame[0] == protocol.S_PING:
                await self._send([protocol.PONG, frame[1]])
                continue
            return frame

    async def click(self, timeout: float = 5.0) -> bool:
        """One click; True when its PATCHES frame came with the expected count."""
        self.cseq += 1
        start = time.monotonic()
        try:
            await self._send([protocol.EVENT, self.cseq, self.inc, "click", None])
            frame = await self._recv(timeout)
        except Exception as exc:  # noqa: BLE001 - any failure here is what we look for
            self.failures.append(f"click {self.cseq}: {type(exc).__name__}: {exc}")
            return False
        self.latencies.append(time.monotonic() - start)
        want = f"Count: {self.clicks + 1}"
        if frame[0] != protocol.PATCHES or want not in repr(frame[2]):
            self.failures.append(f"click {self.cseq}: expected PATCHES with {want!r}, got {frame!r:.200}")
            return False
        self.clicks += 1
        return True

    async def keep_clicking(self, deadline: float, period: float = 0.5) -> None:
        while time.monotonic() < deadline and not self.failures:
            await self.click()
            await asyncio.sleep(period)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        pick = (lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 1)) if lat else (lambda q: None)
        return {"worker": self.worker, "clicks": self.clicks, "failures": self.failures,
                "latency_ms": {"p50": pick(0.5), "p99": pick(0.99), "max": pick(1.0)}}


# endregion
# region Checks -------------------------------------------------------------------------


async def worker_pids(base: str, workers: int, timeout: float = 20.0) -> dict[int, int]:
    """slot -> pid, from /_vango/health (each new connection lands on some worker)."""
    client = tornado.httpclient.AsyncHTTPClient()
    seen: dict[int, int] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < workers and time.monotonic() < deadline:
        try:
            resp = await client.fetch(base + "/_vango/health", request_timeout=5)
            health = json.loads(resp.body)
            seen[health["worker"]] = health["pid"]
        except Exception:  # noqa: BLE001 - retried until the deadline
            await asyncio.sleep(0.05)
    return seen


#: Bugs already reported, by the signature of their log record (every pattern must match). A run
#: counts them apart from new tracebacks; ``--strict`` (and each bug's xfail test in
#: tests/integration/test_fuzz_live.py) treats them as failures. Remove an entry once it is fixed.
KNOWN_BUGS: dict[str, tuple[str, list[str]]] = {
}
_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[,.]\d+ ")
_LEVEL = re.compile(r" (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


def log_records(output: str) -> list[str]:
    """The server output split into log records (a record's continuation lines stay with it)."""
    records: list[list[str]] = []
    for line in output.splitlines():
        if _RECORD.match(line) or not records:
            records.append([line])
        else:
            records[-1].append(line)
    return ["\n".join(r) for r in records]


def tracebacks(output: str) -> tuple[list[str], Counter[str]]:
    """(records with a traceback that match no known bug, how many matched each known bug)."""
    new: list[str] = []
    known: Counter[str] = Counter()
    for record in log_records(output):
        if "Traceback" not in record:
            continue
        for name, (_, patterns) in KNOWN_BUGS.items():
            if all(re.search(p, record) for p in patterns):
                known[name] += 1
                break
        else:
            new.append(record)
    return new, known


async def fuzz_once(base: str, *, seconds: float, seed: int, clients: int, workers: int,
                    output: Any = None, strict: bool = False) -> dict[str, Any]:
    """Run the fuzz against ``base`` and check it; ``output()`` returns the server output so far."""
    pids_before = await worker_pids(base, workers)
    bystander = Bystander(base)
    await bystander.open()
    assert await bystander.click(), bystander.failures
    fuzzer = Fuzzer(base, seed, clients=clients, protect={bystander.sid})
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    await asyncio.gather(fuzzer.run(seconds), bystander.keep_clicking(deadline))
    fuzz_wall = time.monotonic() - started
    await asyncio.sleep(0.5)  # let the last closes land
    after_ok = all([await bystander.click(timeout=10) for _ in range(3)])
    pids_after = await worker_pids(base, workers)
    text = output() if output is not None else ""
    found, known = tracebacks(text)
    levels = Counter(m.group(1) for r in log_records(text) if (m := _LEVEL.search(r.split("\n", 1)[0])))
    others = [r.split("\n", 1)[0][:300] for r in log_records(text)
              if "Traceback" not in r and _LEVEL.search(r.split("\n", 1)[0]) and
              _LEVEL.search(r.split("\n", 1)[0]).group(1) in ("WARNING", "ERROR", "CRITICAL")]
    checks = {
        "workers_unchanged": bool(pids_before) and len(pids_before) == workers and pids_before == pids_after,
        "no_traceback": not found and not (strict and known),
        "bystander_ok": after_ok and not bystander.failures,
        "both_workers_fuzzed": len(fuzzer.stats.welcomes_by_worker) >= min(workers, 2),
    }
    bystander.ws.close()
    return {
        "seed": seed, "seconds": round(fuzz_wall, 2), "clients": clients, "workers": workers, "strict": strict,
        "ok": all(checks.values()), "checks": checks,
        "pids_before": {str(k): v for k, v in sorted(pids_before.items())},
        "pids_after": {str(k): v for k, v in sorted(pids_after.items())},
        "bystander": bystander.summary(), "fuzz": fuzzer.stats.as_dict(), "tracebacks": found[:10],
        "log_levels": dict(levels.most_common()), "warnings_and_errors": others[:20],
        "new_tracebacks": len(found), "known_bugs": {k: {"tracebacks": n, "what": KNOWN_BUGS[k][0]}
                                                    for k, n in known.most_common()},
    }


# endregion


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="how long the sockets fuzz (default 60)")
    ap.add_argument("--clients", type=int, default=16, help="concurrent fuzzing sockets (default 16)")
    ap.add_argument("--workers", type=int, default=2, help="workers of the server we start (default 2)")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: a fresh one, printed)")
    ap.add_argument("--url", help="fuzz this running server instead (no output check: its log is not ours)")
    ap.add_argument("--strict", action="store_true", help="tracebacks of known bugs (KNOWN_BUGS) fail the run too")
    ap.add_argument("--out", help="summary path (default bench/results/fuzz-<timestamp>.json)")
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"fuzz: seed {seed}, {args.clients} sockets, {args.seconds:g} s", flush=True)
    server = None
    if args.url:
        base, output = args.url.rstrip("/"), None
    else:
        server = start_server([*vango_base(), "--workers", str(args.workers)], lift_ip_limits=False,
                              keep_all_output=True)
        base, output = server.url, server.output
    try:
        summary = asyncio.run(fuzz_once(base, seconds=args.seconds, seed=seed, clients=args.clients,
                                        workers=args.workers, output=output, strict=args.strict))
    finally:
        if server is not None:
            server.stop()
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / f"fuzz-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    f = summary["fuzz"]
    print(f"fuzz: {f['connections']} connections, {f['messages_sent']} messages ({f['bytes_sent']} bytes), "
          f"{f['frames_received']} frames back; welcomes by worker {f['welcomes_by_worker']}")
    print(f"fuzz: close codes {f['close_codes']}")
    print(f"fuzz: bystander {summary['bystander']}")
    for name, ok in summary["checks"].items():
        print(f"fuzz: {'ok  ' if ok else 'FAIL'} {name}")
    print(f"fuzz: server log records by level {summary['log_levels']}")
    for line in summary["warnings_and_errors"][:10]:
        print(f"fuzz: server said: {line}")
    for name, bug in summary["known_bugs"].items():
        print(f"fuzz: known bug {name}: {bug['tracebacks']} tracebacks ({bug['what']})")
    for tb in summary["tracebacks"]:
        print("---- new server traceback ----\n" + tb)
    print(f"fuzz: summary in {out}")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
