"""Global-signal ops and the local (no bus) backend."""

from __future__ import annotations

import asyncio

import pytest

from vango_mp import globals as vglobals
from vango_mp import reactive


@pytest.mark.parametrize("op,current,args,expected", [
    ("set", 1, [2], 2),
    ("incr", 1, [2], 3),
    ("incr", 1.5, [-1], 0.5),
    ("append", [1, 2], [3, None], [1, 2, 3]),
    ("append", [1, 2, 3], [4, 2], [3, 4]),
    ("append", [1], [2, 0], []),
    ("update", {"a": 1}, [{"b": 2}], {"a": 1, "b": 2}),
])
def test_ops(op: str, current: object, args: list, expected: object) -> None:
    assert vglobals.apply_op(op, current, args) == expected


@pytest.mark.parametrize("op,current,args", [
    ("incr", "x", [1]), ("incr", 1, [True]), ("append", {}, [1, None]), ("append", [], [1, -1]),
    ("update", [], [{}]), ("nope", 1, []), ("set", 1, []),
])
def test_bad_ops_raise_global_write_error(op: str, current: object, args: list) -> None:
    with pytest.raises(vglobals.GlobalWriteError):
        vglobals.apply_op(op, current, args)


def test_ops_never_mutate_the_current_value() -> None:
    current = [1, 2]
    vglobals.apply_op("append", current, [3, None])
    assert current == [1, 2]


def test_local_backend_applies_at_once_and_is_awaitable() -> None:
    sig = vglobals.GlobalSignal("test.local.n", 10)
    handle = sig.incr(5)
    assert sig.get() == 15 and sig.seq == 1
    assert asyncio.run(_await(handle)) == 1


async def _await(handle: object) -> int:
    return await handle  # type: ignore[misc]


def test_same_key_shares_one_value() -> None:
    a = vglobals.GlobalSignal("test.local.shared", 0)
    b = vglobals.GlobalSignal("test.local.shared", 99)  # the first default wins
    a.incr()
    assert b.get() == 1


def test_readers_rerun_on_change() -> None:
    sig = vglobals.GlobalSignal("test.local.render", "a")
    seen: list[str] = []
    dispose = reactive.effect(lambda: seen.append(sig.get()))
    sig.set("b")
    dispose()
    assert seen == ["a", "b"]


def test_bad_key_is_rejected() -> None:
    with pytest.raises(ValueError):
        vglobals.GlobalSignal("", 0)
