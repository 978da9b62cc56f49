"""The controller engine: the work queue's guarantees and the controller's worker pool."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from orchestra._clock import ManualClock
from orchestra.loops._engine import Controller, Result
from orchestra.loops._queue import WorkQueue

pytestmark = pytest.mark.anyio


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_queue_dedupes_and_requeues_a_key_changed_while_processed() -> None:
    q: WorkQueue[str] = WorkQueue(ManualClock())
    q.add("a")
    q.add("a")
    q.add("b")
    assert len(q) == 2
    key = await q.get()
    assert key == "a"
    q.add("a")  # changed while processed: only marked dirty
    assert len(q) == 1
    q.done("a")  # ... and queued again now
    assert [await q.get(), await q.get()] == ["b", "a"]


async def test_queue_add_after_keeps_the_earlier_deadline() -> None:
    clock = ManualClock()
    q: WorkQueue[str] = WorkQueue(clock)
    q.add_after("a", 10)
    q.add_after("a", 5)
    q.add_after("a", 20)
    await clock.advance(4.9)
    assert len(q) == 0
    await clock.advance(0.2)
    assert len(q) == 1 and await q.get() == "a"


class _Gate:
    """A reconcile that holds every key until released, recording what ran at once."""

    def __init__(self) -> None:
        self.running: set[str] = set()
        self.most = 0
        self.seen: list[str] = []
        self.release = asyncio.Event()

    async def __call__(self, key: str) -> Result | None:
        assert key not in self.running, "a key is never processed twice at once"
        self.running.add(key)
        self.most = max(self.most, len(self.running))
        self.seen.append(key)
        try:
            await self.release.wait()
        finally:
            self.running.discard(key)
        return None


async def test_controller_runs_up_to_workers_keys_at_once_then_shrinks_to_one_task() -> None:
    gate = _Gate()
    c = Controller("test", gate, ManualClock(), workers=3)
    async with anyio.create_task_group() as tg:
        tg.start_soon(c.run)
        await _settle()
        assert c._running == 1  # idle: one task waits for keys
        for key in "abcde":
            c.enqueue(key)
        await _settle()
        assert gate.running == {"a", "b", "c"} and c._running == 3
        c.enqueue("a")  # being processed: it runs again after, never alongside
        gate.release.set()
        await _settle()
        assert sorted(gate.seen) == ["a", "a", "b", "c", "d", "e"]
        assert gate.most == 3
        assert c._running == 1 and c.queue.idle
        tg.cancel_scope.cancel()


async def test_controller_starts_workers_for_keys_queued_before_it_runs() -> None:
    gate = _Gate()
    c = Controller("test", gate, ManualClock(), workers=4)
    for key in "abcdef":
        c.enqueue(key)
    async with anyio.create_task_group() as tg:
        tg.start_soon(c.run)
        await _settle()
        assert len(gate.running) == 4
        gate.release.set()
        await _settle()
        assert sorted(gate.seen) == list("abcdef") and c._running == 1
        tg.cancel_scope.cancel()


async def test_a_single_worker_controller_processes_keys_one_at_a_time() -> None:
    gate = _Gate()
    c = Controller("test", gate, ManualClock())
    async with anyio.create_task_group() as tg:
        tg.start_soon(c.run)
        for key in "abc":
            c.enqueue(key)
        await _settle()
        assert gate.running == {"a"} and c._running == 1
        gate.release.set()
        await _settle()
        assert gate.seen == ["a", "b", "c"] and gate.most == 1
        tg.cancel_scope.cancel()


async def test_an_ordered_queue_hands_out_the_lowest_order_first_ties_in_arrival() -> None:
    rank = {"low-a": 0, "low-b": 0, "high": -100, "mid": -5}
    q: WorkQueue[str] = WorkQueue(ManualClock(), order=rank.__getitem__)
    for key in ("low-a", "low-b", "mid", "high"):
        q.add(key)
    q.add("low-a")  # already waiting: no second copy, keeps its place
    assert len(q) == 4
    out = [await q.get() for _ in range(4)]
    assert out == ["high", "mid", "low-a", "low-b"]
    q.add("low-a")  # while processed: only marked dirty
    assert len(q) == 0
    q.done("low-a")
    assert await q.get() == "low-a"
