"""SessionOwner: detached index order, eviction policies, expiry, limits, cold tier, the transition table."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from tests.unit.fakes import Conn
from vango_mp.protocol import Close
from vango_mp.session import Session
from vango_mp.sessions import IllegalTransition, Refused, Sealer, SessionOwner, State
from vango_mp.settings import Settings
from vango_mp.vdom import component, h, use_signal
from vango_mp.vdom.mount import Root

_ids = itertools.count()


class Clock:
    """Stands in for the ``time`` module inside vango_mp.session."""

    now = 0.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now


clock = Clock()


@pytest.fixture(autouse=True)
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vango_mp.session.time", clock)


@component
def Tiny() -> Any:
    n = use_signal(0)
    return h.p(f"n={n.get()}")


def mount(path: str, session: Session, values: dict[str, Any] | None, render: bool = True) -> Root:
    root = Root(Tiny())
    if values:
        root.restore_signal_values(values)
    if render:
        root.render_initial()
    return root


def SessionManager(settings: Settings) -> SessionOwner:  # noqa: N802 - reads like the constructor it stands for
    return SessionOwner(settings, Sealer([b"k" * 32], schema="s", debug=True, max_age=0, mount=mount))


def make(manager: SessionOwner, ip: str = "10.0.0.1", *, t: float, browser: str = "b1") -> Session:
    clock.now = t
    admit(manager, ip, browser)
    s = manager.open("/", ip)
    s.created = t
    s.browser = browser
    return s


def admit(manager: SessionOwner, ip: str, browser: str = "b1") -> None:
    asyncio.run(manager.admit(ip, browser))


def detach_at(manager: SessionOwner, s: Session, t: float) -> None:
    manager.attach(s, Conn())
    clock.now = t  # it detaches at time t
    manager.detach(s)


def test_lru_order_under_max_detached() -> None:
    m = SessionManager(Settings(max_detached=3))
    sessions = [make(m, t=i) for i in range(5)]
    for t, s in zip([5, 1, 4, 2], sessions[:4]):
        detach_at(m, s, t)
    # four detached, limit three: the least recently active (t=1) went first
    assert sessions[1].state is State.CLOSED
    assert [s.last_active for s in m.detached_lru()] == [2, 4, 5]
    m.settings.max_detached = 1
    detach_at(m, sessions[4], 10)
    assert [s.id for s in m.detached_lru()] == [sessions[4].id]
    assert m.evictions["max_detached"] == 4
    assert sessions[4].state is State.DETACHED  # the newest survives


def test_oldest_policy_evicts_by_creation() -> None:
    m = SessionManager(Settings(max_detached=1, eviction_policy="oldest"))
    young, old = make(m, t=10), make(m, t=1)
    detach_at(m, young, 1)
    detach_at(m, old, 5)
    m._enforce_max_detached()
    assert old.state is State.CLOSED and young.state is State.DETACHED


def test_expiry_sweep_takes_only_sessions_past_resume_window() -> None:
    m = SessionManager(Settings(resume_window=10))
    expired: list[list[str]] = []
    m.keeper = Keeper(expired)  # the store deletes their checkpoints
    a, b, c = make(m, t=0), make(m, t=0), make(m, t=0)
    detach_at(m, a, 100)
    detach_at(m, b, 105)
    m.attach(c, Conn())
    assert m.sweep_expired(now=112) == 1
    assert a.state is State.CLOSED and b.alive and c.state is State.ATTACHED
    assert m.evictions["expired"] == 1
    assert expired == [[a.id]]


def test_evicted_client_is_told_session_expired() -> None:
    m = SessionManager(Settings(max_detached=0, resume_window=1))
    s = make(m, t=0)
    detach_at(m, s, 0)
    conn = Conn()
    s.conn = conn  # a socket still attached would hear why
    m.sweep_expired(now=10)
    assert conn.closed == (Close.SESSION_EXPIRED, "session expired")


def test_ip_limit_evicts_the_oldest_detached_session_of_the_same_browser_only() -> None:
    m = SessionManager(Settings(max_sessions_per_ip=3))
    a, b = make(m, "1.1.1.1", t=0), make(m, "1.1.1.1", t=0)
    neighbour = make(m, "1.1.1.1", t=0, browser="b2")  # same NAT, another browser
    detach_at(m, neighbour, 1)
    detach_at(m, a, 5)
    detach_at(m, b, 3)
    admit(m, "1.1.1.1", "b1")
    assert b.state is State.CLOSED and a.alive and neighbour.alive
    assert m.evictions["ip_limit"] == 1
    m.open("/", "1.1.1.1")
    with pytest.raises(Refused) as err:  # b2's only detached session is not b3's to evict
        admit(m, "1.1.1.1", "b3")
    assert err.value.code == Close.RATE_LIMITED and neighbour.alive


def test_ip_limit_refuses_when_nothing_to_evict() -> None:
    m = SessionManager(Settings(max_sessions_per_ip=1))
    s = make(m, "1.1.1.1", t=0)
    m.attach(s, Conn())
    with pytest.raises(Refused) as err:
        admit(m, "1.1.1.1")
    assert err.value.code == Close.RATE_LIMITED
    admit(m, "2.2.2.2")  # another IP is fine


def test_ip_limit_without_evict_refuses() -> None:
    m = SessionManager(Settings(max_sessions_per_ip=1, evict_on_ip_limit=False))
    detach_at(m, make(m, "1.1.1.1", t=0), 1)
    with pytest.raises(Refused):
        admit(m, "1.1.1.1")


def test_max_sessions_refuses_with_server_busy() -> None:
    m = SessionManager(Settings(max_sessions=1))
    m.attach(make(m, t=0), Conn())
    with pytest.raises(Refused) as err:
        admit(m, "9.9.9.9")
    assert err.value.code == Close.SERVER_BUSY


def test_refusing_under_pressure() -> None:
    m = SessionManager(Settings())
    m.refusing = "server busy"
    with pytest.raises(Refused) as err:
        admit(m, "9.9.9.9")
    assert (err.value.code, err.value.reason) == (Close.SERVER_BUSY, "server busy")


def test_chill_moves_idle_detached_sessions_to_the_cold_tier_and_thaw_restores_them() -> None:
    m = SessionManager(Settings(cold_after=30))
    idle, fresh, live = make(m, t=0), make(m, t=0), make(m, t=0)
    idle.root.restore_signal_values({"Tiny/0": 7})
    idle.flush()
    detach_at(m, idle, 10)
    detach_at(m, fresh, 95)
    m.attach(live, Conn())
    assert m.chill(now=100) == 1
    assert m.get(idle.id) is None and idle.state is State.COLD and idle.root is None and idle.blob
    assert m.entry(idle.id) is idle and m.cold_count == 1
    assert m.thaw(idle) is True  # same tree, same ids: the client needs no FULL
    assert idle.state is State.DETACHED and m.get(idle.id) is idle and m.cold_count == 0
    assert "n=7" in idle.root.html() and idle.seq == 1
    assert m.get(fresh.id) is fresh and m.get(live.id) is live


def test_cold_sessions_count_toward_limits_and_expire() -> None:
    m = SessionManager(Settings(cold_after=1, resume_window=50))
    s = make(m, t=0)
    detach_at(m, s, 0)
    m.chill(now=10)
    assert (m.detached_count, m.cold_count, len(m)) == (1, 1, 1)
    assert m.sweep_expired(now=60) == 1
    assert (m.detached_count, m.cold_count, len(m)) == (0, 0, 0)


def test_full_event_queue_drops_and_counts() -> None:
    from vango_mp import metrics, protocol

    m = SessionManager(Settings(max_event_queue=4))
    s = make(m, t=0)
    key = ("vango_events_dropped_total", (("reason", "queue_full"),))
    before = metrics.counters[key]
    results = [s.queue_event(protocol.ClientEvent(i, 1, "click", None)) for i in range(6)]
    assert results == [True] * 4 + [False] * 2
    assert metrics.counters[key] == before + 2


def test_illegal_transition_raises_in_debug_and_is_refused_otherwise(caplog: pytest.LogCaptureFixture) -> None:
    m = SessionManager(Settings(debug=True))
    s = make(m, t=0)
    m.end(s, Close.NORMAL, "bye", "test")
    with pytest.raises(IllegalTransition, match="CLOSED -> ATTACHED"):
        m.attach(s, Conn())
    m.settings.debug = False
    cold = make(m, t=0)
    detach_at(m, cold, 0)
    m.freeze(cold)
    conn = Conn()
    assert m.attach(cold, conn) is False  # COLD -> ATTACHED skips the thaw: refused, logged
    assert cold.state is State.COLD and cold.conn is None
    assert "illegal transition COLD -> ATTACHED" in caplog.text


def test_detach_of_a_session_that_moved_on_is_a_no_op() -> None:
    m = SessionManager(Settings())
    s = make(m, t=0)
    conn = Conn()
    m.attach(s, conn)
    blob = m.hand_over(s, Close.GOING_AWAY, "server stopping")
    assert blob and s.state is State.HANDED_OVER and conn.closed == (Close.GOING_AWAY, "server stopping")
    assert m.get(s.id) is None and len(m) == 0
    m.detach(s)  # the socket's own close arrives afterwards
    assert s.state is State.HANDED_OVER


def test_a_newer_socket_takes_over_and_the_old_one_hears_why() -> None:
    m = SessionManager(Settings())
    s = make(m, t=0)
    old, new = Conn(), Conn()
    m.attach(s, old)
    m.attach(s, new)
    assert old.closed == (Close.SESSION_TAKEN, "session resumed elsewhere") and s.conn is new


class Keeper:
    """Records what the owner asks the store to forget."""

    def __init__(self, forgotten: list[list[str]]) -> None:
        self.forgotten = forgotten

    def save(self, sessions: list[Session]) -> int:
        return len(sessions)

    def on_detach(self, session: Session) -> None:
        pass

    def on_open(self, session: Session) -> None:
        pass

    def forget(self, session_ids: list[str]) -> None:
        self.forgotten.append(session_ids)


def test_under_memory_pressure_unread_output_goes_before_idle_sessions() -> None:
    m = SessionManager(Settings())
    idle, reader, hog = make(m, t=0), make(m, t=50), make(m, t=100)
    conns = {s.id: Conn() for s in (idle, reader, hog)}
    for s in (idle, reader, hog):
        m.attach(s, conns[s.id])
    conns[hog.id].pending = 3 * 1024 * 1024  # its client stopped reading
    assert m.close_for_memory(1, at_most=1)[0] == 1
    assert conns[hog.id].closed == (Close.MEMORY_PRESSURE, "server under memory pressure")
    assert idle.alive and reader.alive  # the longest idle would have gone next
    m.close_for_memory(1, at_most=1)
    assert not idle.alive and reader.alive
