"""Clocks: everything in orchestra that waits, waits on one of these.

A clock gives wall time (``now``, seconds since the epoch, for timestamps), monotonic
time (``monotonic``, for deadlines), ``sleep`` and ``call_later``. The three clocks
agree on one invariant: ``monotonic()`` never goes backwards and a timer never fires
before its deadline on that clock. ``ScaledClock`` and ``ManualClock`` let a test or a
simulation cover minutes of backoff, probe periods or heartbeat timeouts in
milliseconds of real time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


@runtime_checkable
class Clock(Protocol):
    """What orchestra needs of time."""

    def now(self) -> float:
        """Wall time on this clock, seconds since the epoch."""
        ...

    def monotonic(self) -> float:
        """Time for deadlines and durations; never goes backwards."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return after ``seconds`` have passed on this clock."""
        ...

    def call_later(self, delay: float, callback: Callable[[], object]) -> TimerHandle:
        """Call ``callback`` on the running event loop once ``delay`` has passed."""
        ...


class RealClock:
    """Real time: the default."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def call_later(self, delay: float, callback: Callable[[], object]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback)

    def __repr__(self) -> str:
        return "RealClock()"


class ScaledClock:
    """Time that runs ``speed`` times faster than real time (``speed=60``: a minute a second).

    Wall time starts at the real wall time when the clock is made and advances ``speed``
    seconds per real second.
    """

    def __init__(self, speed: float) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.speed = float(speed)
        self._real0 = time.monotonic()
        self._wall0 = time.time()

    def monotonic(self) -> float:
        return (time.monotonic() - self._real0) * self.speed

    def now(self) -> float:
        return self._wall0 + self.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)

    def call_later(self, delay: float, callback: Callable[[], object]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(max(0.0, delay) / self.speed, callback)

    def __repr__(self) -> str:
        return f"ScaledClock({self.speed:g})"


class _ManualTimer:
    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], object]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """Time that moves only when a test calls ``advance(seconds)``.

    ``advance`` fires, in deadline order, every timer and sleeper whose deadline it
    passes, yielding to the event loop between them so that the woken tasks run (and may
    set new, earlier timers) before time moves on.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._wall0 = start
        self._mono = 0.0
        self._seq = itertools.count()
        self._timers: list[tuple[float, int, _ManualTimer]] = []
        self._home: asyncio.AbstractEventLoop | None = None

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop whose timers this clock fires (the cluster's): ``advance`` called
        from another loop runs there, so a test on its own loop can move the time."""
        self._home = loop

    def monotonic(self) -> float:
        return self._mono

    def now(self) -> float:
        return self._wall0 + self._mono

    def call_later(self, delay: float, callback: Callable[[], object]) -> TimerHandle:
        timer = _ManualTimer(callback)
        heapq.heappush(self._timers, (self._mono + max(0.0, delay), next(self._seq), timer))
        return timer

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def done() -> None:
            if not fut.done():
                fut.set_result(None)

        def wake() -> None:  # advance() may run on another loop's thread
            if loop is self._home or self._home is None:
                done()
            else:
                loop.call_soon_threadsafe(done)

        handle = self.call_later(seconds, wake)
        try:
            await fut
        finally:
            handle.cancel()

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, running everything that falls due."""
        home = self._home
        if home is not None and home.is_running() and asyncio.get_running_loop() is not home:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(
                self.advance(seconds), home))
            return
        target = self._mono + max(0.0, seconds)
        await _settle()
        while self._timers and self._timers[0][0] <= target:
            deadline, _, timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._mono = max(self._mono, deadline)
            timer.callback()
            await _settle()
        self._mono = target
        await _settle()

    def __repr__(self) -> str:
        return f"ManualClock(t={self._mono:g})"


async def _settle(rounds: int = 20) -> None:
    """Let woken tasks run: a few trips around the event loop."""
    for _ in range(rounds):
        await asyncio.sleep(0)
