"""An event loop of its own in a daemon thread, and the bridges that let code on another
loop (or in plain synchronous code) use what runs on it.

A Cluster belongs to the loop that started it: its loops, its store's watches and its
runtime's gRPC channels all live there. ``SyncCluster`` and the pytest fixtures start
their cluster on a ``LoopThread``, so the cluster works the same whatever runs the
caller: no loop (scripts), anyio, pytest-asyncio, or a module-wide fixture shared by
tests that each get a fresh loop. The Cluster's public methods hop onto their home loop
when called from elsewhere (see ``_cluster._cluster._guard_methods``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from orchestra._errors import hide_from_tracebacks

__tracebackhide__ = hide_from_tracebacks  # see orchestra._errors

T = TypeVar("T")


class LoopThread:
    """A running event loop in a daemon thread; ``run`` waits for a coroutine on it."""

    def __init__(self, name: str = "orchestra-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name=name)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Stop the loop and its thread (what still runs on it is abandoned)."""
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
        if not self.loop.is_running() and not self.loop.is_closed():
            self.loop.close()


async def hop(home: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` on ``home`` from another loop; cancelling the caller cancels it."""
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, home))


def call_in(home: asyncio.AbstractEventLoop, fn: Callable[[], T]) -> T:
    """Run the plain callable ``fn`` on ``home``'s thread and wait for its result."""

    async def run() -> T:
        return fn()

    return asyncio.run_coroutine_threadsafe(run(), home).result()


_END = object()


class BridgedIterator:
    """An async iterator made on ``home`` (``make()``), consumed from another loop.

    A task on ``home`` drives the iterator and hands each item over thread-safely;
    ``aclose`` (or garbage) cancels that task, which closes the iterator on its own loop.
    """

    def __init__(self, home: asyncio.AbstractEventLoop,
                 make: Callable[[], AsyncIterator[Any]]) -> None:
        self._home = home
        self._make = make
        self._queue: asyncio.Queue[Any] | None = None
        self._producer: Future[None] | None = None

    def __aiter__(self) -> BridgedIterator:
        return self

    def _start(self) -> asyncio.Queue[Any]:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        here = asyncio.get_running_loop()

        async def produce() -> None:
            try:
                async for item in self._make():
                    here.call_soon_threadsafe(queue.put_nowait, item)
            except asyncio.CancelledError:
                pass
            except BaseException as exc:  # handed over: the consumer raises it
                here.call_soon_threadsafe(queue.put_nowait, _Raise(exc))
            finally:
                if not here.is_closed():
                    here.call_soon_threadsafe(queue.put_nowait, _END)

        self._producer = asyncio.run_coroutine_threadsafe(produce(), self._home)
        return queue

    async def __anext__(self) -> Any:
        if self._queue is None:
            self._queue = self._start()
        item = await self._queue.get()
        if item is _END:
            self._queue.put_nowait(_END)  # stays exhausted
            raise StopAsyncIteration
        if isinstance(item, _Raise):
            raise item.exc
        return item

    async def aclose(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.cancel()

    def __del__(self) -> None:
        if self._producer is not None:
            self._producer.cancel()


class _Raise:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
