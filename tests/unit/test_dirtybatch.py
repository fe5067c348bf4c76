"""DirtyBatch: idle sessions dirtied outside an event are flushed in order, BATCH per loop callback."""

from __future__ import annotations

import asyncio

from vango_mp.dirtybatch import DirtyBatch


class Idle:
    def __init__(self, log: list[tuple[int, int]], n: int, turns: list[int], fail: bool = False) -> None:
        self.log, self.n, self.turns, self.fail = log, n, turns, fail

    def flush_idle(self) -> None:
        self.log.append((self.n, self.turns[0]))
        if self.fail:
            raise RuntimeError("boom")


def test_sessions_flush_in_order_a_batch_per_loop_turn_and_a_failure_stalls_nobody() -> None:
    async def go() -> None:
        loop = asyncio.get_running_loop()
        batch = DirtyBatch()
        batch.BATCH = 3
        log: list[tuple[int, int]] = []
        turns = [0]
        for n in range(7):
            batch.add(Idle(log, n, turns, fail=(n == 1)), loop)
        assert log == []  # nothing happens inside add()
        errors: list[object] = []
        loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx.get("exception")))
        for _ in range(20):
            if len(log) == 7:
                break
            await asyncio.sleep(0)
            turns[0] += 1
        assert [n for n, _ in log] == list(range(7))  # in order, the one after the failure too
        per_turn = [sum(1 for _, t in log if t == turn) for turn in set(t for _, t in log)]
        assert max(per_turn) <= 3 and len(per_turn) == 3  # 3 + 3 + 1, a loop turn between batches
        assert len(errors) == 1 and isinstance(errors[0], RuntimeError)  # reported by the loop
        batch.add(Idle(log, 7, turns), loop)  # an empty batch schedules itself again
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert log[-1][0] == 7

    asyncio.run(go())
