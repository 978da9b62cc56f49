"""The work queue every controller runs on.

Guarantees (client-go's, kept exactly):

- A key is queued at most once: adding a key that is already waiting does nothing.
- A key is never processed by two workers at once: while a worker holds it (between
  ``get`` and ``done``), adding it again only marks it dirty.
- A key that changed while it was processed is queued again by ``done``.
- ``add_rate_limited`` delays a key by its own exponential backoff (``base * 2**failures``
  up to ``max_delay``) combined with an overall token bucket; ``forget`` clears the
  key's failures. Delays run on the injected clock, so tests can use fake time.
- Keys come out first in, first out; given ``order``, the waiting key with the lowest
  ``order(key)`` comes out first, ties in arrival order (kube-scheduler's activeQ: higher
  priority first, then the earlier arrival). ``order`` is read when a key is queued.
"""

from __future__ import annotations

import asyncio
import heapq
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any, Generic, Protocol, TypeVar

from orchestra._clock import Clock, TimerHandle

K = TypeVar("K", bound=Hashable)


class ShutDown(Exception):
    """``get`` on a queue that was shut down."""


class RateLimiter(Generic[K]):
    """Per-key exponential backoff, bounded by an overall token bucket (as client-go's
    DefaultControllerRateLimiter: 5 ms doubling to 1000 s; 10 qps with a burst of 100)."""

    def __init__(
        self,
        clock: Clock,
        *,
        base: float = 0.005,
        max_delay: float = 1000.0,
        qps: float = 10.0,
        burst: int = 100,
    ) -> None:
        self._clock = clock
        self._base = base
        self._max = max_delay
        self._failures: dict[K, int] = {}
        self._qps = qps
        self._burst = burst
        self._tokens = float(burst)
        self._last = clock.monotonic()

    def when(self, key: K) -> float:
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        per_item = min(self._max, self._base * (2.0**n)) if n < 64 else self._max
        now = self._clock.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._qps)
        self._last = now
        self._tokens -= 1.0
        bucket = 0.0 if self._tokens >= 0 else -self._tokens / self._qps
        return max(per_item, bucket)

    def failures(self, key: K) -> int:
        return self._failures.get(key, 0)

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)


class _Ordered(Generic[K]):
    """The part of ``deque`` the queue uses, popping the lowest ``(order(key), arrival)``."""

    def __init__(self, order: Callable[[K], Any]) -> None:
        self._order = order
        self._heap: list[tuple[Any, int, K]] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._heap)

    def append(self, key: K) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (self._order(key), self._seq, key))

    def popleft(self) -> K:
        return heapq.heappop(self._heap)[2]


class QueueMetrics(Protocol):
    """What a queue reports (client-go's workqueue metrics): ``depth`` is the number
    of keys queued after the change."""

    def added(self, key: Any, depth: int) -> None: ...

    def got(self, key: Any, depth: int) -> None: ...

    def done(self, key: Any, depth: int) -> None: ...

    def retried(self) -> None: ...


class WorkQueue(Generic[K]):
    """A deduplicating, delaying, rate-limited queue of keys (see module docstring)."""

    def __init__(self, clock: Clock, *, rate_limiter: RateLimiter[K] | None = None,
                 order: Callable[[K], Any] | None = None) -> None:
        self._clock = clock
        self._queue: deque[K] | _Ordered[K] = deque() if order is None else _Ordered(order)
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._timers: dict[K, tuple[float, TimerHandle]] = {}
        self._shutdown = False
        self.rate_limiter: RateLimiter[K] = rate_limiter or RateLimiter(clock)
        # Called when a key becomes ready and no ``get`` is waiting for one (every
        # consumer is busy): a pool can start another consumer.
        self.on_starved: Callable[[], None] | None = None
        # Observes adds, gets, dones and retries (the cluster's Prometheus metrics)
        self.metrics: QueueMetrics | None = None

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def idle(self) -> bool:
        """Nothing queued, nothing being processed, nothing waiting on a timer."""
        return not self._queue and not self._processing and not self._timers

    def add(self, key: K) -> None:
        if self._shutdown or key in self._dirty:
            return
        self._dirty.add(key)
        if self.metrics is not None:
            self.metrics.added(key, len(self._queue) + (key not in self._processing))
        if key in self._processing:
            return
        self._queue.append(key)
        self._wake()

    def add_after(self, key: K, delay: float) -> None:
        """Add ``key`` once ``delay`` has passed; an earlier pending deadline wins."""
        if self._shutdown:
            return
        if delay <= 0:
            self.add(key)
            return
        deadline = self._clock.monotonic() + delay
        pending = self._timers.get(key)
        if pending is not None:
            if pending[0] <= deadline:
                return
            pending[1].cancel()

        def fire() -> None:
            self._timers.pop(key, None)
            self.add(key)

        self._timers[key] = (deadline, self._clock.call_later(delay, fire))

    def add_rate_limited(self, key: K) -> None:
        if self.metrics is not None:
            self.metrics.retried()
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: K) -> None:
        self.rate_limiter.forget(key)

    async def get(self) -> K:
        while not self._queue:
            if self._shutdown:
                raise ShutDown
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut in self._waiters:
                    self._waiters.remove(fut)
                raise
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        if self.metrics is not None:
            self.metrics.got(key, len(self._queue))
        return key

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if self.metrics is not None:
            self.metrics.done(key, len(self._queue) + (key in self._dirty))
        if key in self._dirty:
            self._queue.append(key)
            self._wake()

    def shut_down(self) -> None:
        self._shutdown = True
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)

    def _wake(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        if self.on_starved is not None:
            self.on_starved()
