"""AuthCheckConfig policies: outcomes, verdicts (fail-open with max stale, fail-closed), checks run with a
timeout off the loop, one check per user, and logout reaching attached, detached and cold sessions."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from vango_mp.authcheck import (
    DEFAULT_MAX_STALE, DEFAULT_TIMEOUT, AuthCheckConfig, AuthExpiredAction, AuthExpiredConfig, AuthExpiredReason,
    AuthFailureMode, AuthRevoked, Outcome, Verdict, decide, due, outcome_of,
)
from vango_mp.authlife import AuthLife
from vango_mp.identity import identity
from vango_mp.reactive import Signal
from vango_mp.session import Session
from vango_mp.sessions.states import State

OPEN = AuthCheckConfig(interval=10, check=lambda u: True, max_stale=60)
CLOSED = AuthCheckConfig(interval=10, check=lambda u: True, failure_mode=AuthFailureMode.FAIL_CLOSED)


def test_outcomes() -> None:
    assert outcome_of(True) is Outcome.FRESH and outcome_of(None) is Outcome.FRESH
    assert outcome_of(False) is Outcome.REVOKED
    assert outcome_of(error=AuthRevoked()) is Outcome.REVOKED
    assert outcome_of(error=PermissionError()) is Outcome.REVOKED
    assert outcome_of(error=ConnectionError("db down")) is Outcome.FAILED


@pytest.mark.parametrize("config, outcome, stale_for, verdict", [
    (OPEN, Outcome.FRESH, 1000, Verdict.KEEP),
    (OPEN, Outcome.REVOKED, 0, Verdict.EXPIRE),  # revoked: whatever the mode
    (OPEN, Outcome.FAILED, 59, Verdict.GRACE),  # transient, within max_stale
    (OPEN, Outcome.FAILED, 60, Verdict.EXPIRE),  # transient, but stale too long
    (CLOSED, Outcome.FAILED, 0, Verdict.EXPIRE),
    (CLOSED, Outcome.FRESH, 0, Verdict.KEEP),
])
def test_verdicts(config: AuthCheckConfig, outcome: Outcome, stale_for: float, verdict: Verdict) -> None:
    assert decide(config, outcome, last_ok=100.0, now=100.0 + stale_for) is verdict


def test_defaults_and_validation() -> None:
    cfg = AuthCheckConfig(timeout=0, max_stale=-1)
    assert (cfg.timeout, cfg.max_stale) == (DEFAULT_TIMEOUT, DEFAULT_MAX_STALE) == (5.0, 900.0)
    assert cfg.failure_mode is AuthFailureMode.FAIL_OPEN_WITH_GRACE
    assert cfg.on_expired.action is AuthExpiredAction.FORCE_RELOAD
    with pytest.raises(ValueError, match="needs check"):
        AuthCheckConfig(interval=5)
    with pytest.raises(ValueError, match="path on this site"):
        AuthExpiredConfig(AuthExpiredAction.NAVIGATE_TO, "https://evil.example/")
    with pytest.raises(ValueError, match="handler"):
        AuthExpiredConfig(AuthExpiredAction.CUSTOM)
    assert not due(AuthCheckConfig(), last_check=0, now=1e9)  # interval 0: no periodic checks
    assert due(OPEN, last_check=0, now=10) and not due(OPEN, last_check=0, now=9.9)


class FakeSession:
    """What AuthLife touches of a session."""

    def __init__(self, user: Any, state: State = State.ATTACHED) -> None:
        self.id = f"s-{id(self)}"
        self._user = Signal(user)
        self.user_key = identity(user)
        self.authenticated = user is not None
        self.state = state
        self.created = time.monotonic() - 100
        self.expired: list[AuthExpiredReason] = []

    user = Session.user  # the real session's reactive property, over self._user

    @property
    def alive(self) -> bool:
        return self.state in (State.ATTACHED, State.DETACHED)

    def dispatch(self, fn: Any) -> None:
        fn()


class FakeOwner:
    def __init__(self, sessions: list[FakeSession]) -> None:
        self.sessions = sessions
        self.ended: list[FakeSession] = []

    def __iter__(self) -> Any:
        return iter([s for s in self.sessions if s.alive])

    def entries(self) -> list[FakeSession]:
        return list(self.sessions)

    def end(self, session: FakeSession, code: int, reason: str, metric: str) -> None:
        session.state = State.CLOSED
        self.ended.append(session)


class Recording(AuthLife):
    def expire(self, session: Any, reason: AuthExpiredReason) -> None:
        session.expired.append(reason)
        session.user = None


def test_one_check_per_user_and_only_the_revoked_expire() -> None:
    calls: list[str] = []

    async def check(user: str) -> bool:
        calls.append(user)
        return user != "mallory"

    tabs = [FakeSession("alice"), FakeSession("alice"), FakeSession("mallory"), FakeSession(None)]
    life = Recording(FakeOwner(tabs), AuthCheckConfig(interval=1, check=check))

    async def run() -> None:
        life.tick()
        while life._checking:
            await asyncio.sleep(0.01)

    asyncio.run(run())
    assert sorted(calls) == ["alice", "mallory"]  # two alice tabs, one check; the guest is never checked
    assert [s.expired for s in tabs] == [[], [], [AuthExpiredReason.ACTIVE_REVALIDATE_FAILED], []]


def test_a_slow_check_times_out_and_fail_closed_expires() -> None:
    def slow(user: str) -> bool:  # sync: runs in a thread, the loop stays free
        time.sleep(0.5)
        return True

    tab = FakeSession("alice")
    life = Recording(FakeOwner([tab]), AuthCheckConfig(interval=1, check=slow, timeout=0.05,
                                                       failure_mode=AuthFailureMode.FAIL_CLOSED))
    assert asyncio.run(life.run_check("alice")) is Outcome.FAILED
    assert asyncio.run(life.revalidate(tab)) is False  # on demand
    assert tab.expired == [AuthExpiredReason.ON_DEMAND_REVALIDATE_FAILED]
    life.close()


def test_fail_open_keeps_a_session_through_a_failing_check_until_max_stale() -> None:
    def broken(user: str) -> bool:
        raise ConnectionError("auth server down")

    now = [1000.0]
    tab = FakeSession("alice")
    life = Recording(FakeOwner([tab]), AuthCheckConfig(interval=1, check=broken, max_stale=30), clock=lambda: now[0])
    life.settle([tab], Outcome.FRESH, AuthExpiredReason.ACTIVE_REVALIDATE_FAILED)
    now[0] += 29
    assert asyncio.run(life._check("k", [tab], AuthExpiredReason.ACTIVE_REVALIDATE_FAILED)) is Verdict.GRACE
    assert tab.expired == []
    now[0] += 2
    assert asyncio.run(life._check("k", [tab], AuthExpiredReason.ACTIVE_REVALIDATE_FAILED)) is Verdict.EXPIRE
    assert tab.expired == [AuthExpiredReason.ACTIVE_REVALIDATE_FAILED]
    life.close()


def test_revalidate_fails_closed_without_a_user() -> None:
    tab = FakeSession("alice")
    tab.user = None  # authenticated once, its user gone (a resume that did not rehydrate)
    life = Recording(FakeOwner([tab]), None)
    assert asyncio.run(life.revalidate(tab)) is False


class Transport:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def broadcast(self, kind: str, body: Any = None) -> None:
        self.sent.append((kind, body))


def test_logout_expires_attached_ends_detached_and_cold_and_tells_the_other_workers() -> None:
    attached, detached, cold = FakeSession("bob"), FakeSession("bob", State.DETACHED), FakeSession("bob", State.COLD)
    cold._user.set(None)  # a cold session holds no user object, only its key
    other = FakeSession("alice")
    owner = FakeOwner([attached, detached, cold, other])
    life = Recording(owner, None)
    life.transport = transport = Transport()
    assert life.logout(identity("bob")) == 3
    assert attached.expired == [AuthExpiredReason.LOGOUT] and attached.user is None
    assert owner.ended == [detached, cold]
    assert other.expired == [] and other.state is State.ATTACHED
    assert transport.sent == [("auth.logout", {"user": identity("bob"), "reason": "logout"})]
    # The same message arriving from another worker: already expired here, nothing more to do.
    life.on_logout({"user": identity("bob"), "reason": "logout"}, 1)
    assert attached.expired == [AuthExpiredReason.LOGOUT]
    life.on_logout({"bogus": 1}, 1)  # malformed: logged, ignored


def test_expiry_rerenders_what_read_the_user_and_sends_the_configured_navigation() -> None:
    from vango_mp import protocol
    from vango_mp.navigation import mount
    from vango_mp.router import App
    from vango_mp.session import Session
    from vango_mp.settings import Settings
    from vango_mp.authlife import use_user
    from vango_mp.vdom import component, h

    @component
    def Who() -> Any:
        return h.p(f"user={use_user()}", id="who")

    class Conn:
        def __init__(self) -> None:
            self.frames: list[Any] = []

        def send(self, data: bytes) -> None:
            self.frames.append(protocol.unpack_message(data, 1 << 20))

    def live(app: App) -> tuple[Session, Conn]:
        session = Session("sid", None, settings=Settings(), ip="127.0.0.1", path="/")
        session.set_user("alice")  # before the mount, as a new live session does
        session.root = mount(app, "/", worker=0, session=session, on_dirty=session.notify_dirty)
        conn = Conn()
        session.conn = conn  # type: ignore[assignment]
        return session, conn

    seen: list[Any] = []
    custom = AuthCheckConfig(on_expired=AuthExpiredConfig(AuthExpiredAction.CUSTOM, handler=seen.append))
    session, conn = live(App({"/": Who}))
    assert "user=alice" in session.root.html()
    AuthLife(FakeOwner([]), custom).expire_now(session, AuthExpiredReason.LOGOUT)
    session.flush()
    assert "user=None" in session.root.html() and seen == [session]  # reactive: re-rendered, handler ran
    assert conn.frames and conn.frames[-1][0] == protocol.PATCHES

    navigate = AuthCheckConfig(on_expired=AuthExpiredConfig(AuthExpiredAction.NAVIGATE_TO, "/login"))
    session, conn = live(App({"/": Who}))
    AuthLife(FakeOwner([]), navigate).expire_now(session, AuthExpiredReason.LOGOUT)
    session.flush()
    assert conn.frames[-1][:4] == [protocol.NAV, 1, "/login", protocol.NAV_LOAD]

    session, conn = live(App({"/": Who}))
    AuthLife(FakeOwner([]), None).expire_now(session, AuthExpiredReason.LOGOUT)  # default: force reload
    session.flush()
    assert conn.frames[-1][:4] == [protocol.NAV, 1, "/", protocol.NAV_LOAD]


def test_broadcast_auth_from_a_session_reaches_its_users_sessions() -> None:
    import vango_mp.authlife as authlife
    from vango_mp.session import Session
    from vango_mp.settings import Settings

    mine = Session("sid", None, settings=Settings(), ip="127.0.0.1", path="/")
    mine.set_user("carol")
    tabs = [FakeSession("carol"), FakeSession("carol", State.DETACHED), FakeSession("dave")]
    owner = FakeOwner(tabs)
    life = Recording(owner, None)
    before = authlife._current
    try:
        life.install()
        assert authlife.broadcast_auth(mine, AuthExpiredReason.PASSIVE_EXPIRY) == 2
    finally:
        authlife._current = before
    assert tabs[0].expired == [AuthExpiredReason.PASSIVE_EXPIRY] and owner.ended == [tabs[1]] and tabs[2].expired == []
    assert authlife.broadcast_auth_logout("carol") == 0  # outside a worker: nothing to do
