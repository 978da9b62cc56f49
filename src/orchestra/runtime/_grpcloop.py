"""All of orchestra's gRPC runs on one long-lived event loop of its own.

grpc's asyncio support (``grpc.aio``) binds each channel and call to an event loop, and
its completion-queue poller delivers a call's last events to that loop even after the
call was cancelled. A loop that closes while such an event is in flight (a test's loop,
an ``asyncio.run`` that returned, a stopped cluster's) makes the poller fail inside the
*next* loop's callbacks with "Event loop is closed" (grpc/grpc#34139). So channels are
made, and every call is invoked, on a daemon loop thread that lives as long as the
process; callers on any loop await the results, and the wrappers here keep the stubs'
shapes (``await stub.M(req)``, ``async for x in stub.M(req)``, and bidirectional calls'
``write``/``read``/``done_writing``), so the code that uses them does not change.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from orchestra._loopthread import BridgedIterator, LoopThread, call_in, hop

__all__ = ["grpc_loop", "on_grpc_loop", "wrap_stub"]

_lock = threading.Lock()
_thread: LoopThread | None = None


def grpc_loop() -> asyncio.AbstractEventLoop:
    """The process's gRPC loop (started on first use, never closed)."""
    global _thread
    with _lock:
        if _thread is None:
            _thread = LoopThread("orchestra-grpc")
        return _thread.loop


def on_grpc_loop(fn: Callable[[], Any]) -> Any:
    """Run the plain callable ``fn`` (a channel's creation) on the gRPC loop."""
    loop = grpc_loop()
    if _in(loop):
        return fn()
    return call_in(loop, fn)


def _in(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class _Bidi:
    """A stream-stream or stream-unary call living on the gRPC loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, call: Any) -> None:
        self._loop = loop
        self._call = call

    async def write(self, request: Any) -> None:
        await hop(self._loop, self._call.write(request))

    async def read(self) -> Any:
        return await hop(self._loop, self._call.read())

    async def done_writing(self) -> None:
        await hop(self._loop, self._call.done_writing())

    def cancel(self) -> bool:
        self._loop.call_soon_threadsafe(self._call.cancel)
        return True

    def __await__(self) -> Any:  # stream-unary: the single response
        async def result() -> Any:
            return await self._call

        return hop(self._loop, result()).__await__()

    def __aiter__(self) -> AsyncIterator[Any]:
        call = self._call
        return BridgedIterator(self._loop, lambda: call.__aiter__())


class _Method:
    def __init__(self, loop: asyncio.AbstractEventLoop, multicallable: Any) -> None:
        self._loop = loop
        self._mc = multicallable
        name = type(multicallable).__name__  # grpc.aio's four multicallable classes
        self._streaming_request = name.startswith("Stream")
        self._streaming_response = name == "UnaryStreamMultiCallable"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        mc, loop = self._mc, self._loop
        if self._streaming_request:
            return _Bidi(loop, on_grpc_loop(lambda: mc(*args, **kwargs)))
        if self._streaming_response:
            return BridgedIterator(loop, lambda: mc(*args, **kwargs).__aiter__())

        async def invoke() -> Any:
            return await mc(*args, **kwargs)

        if _in(loop):
            return invoke()
        return hop(loop, invoke())


class _Stub:
    """A generated stub whose methods run on the gRPC loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, stub: Any) -> None:
        self._loop = loop
        self._stub = stub

    def __getattr__(self, name: str) -> Any:
        method = _Method(self._loop, getattr(self._stub, name))
        setattr(self, name, method)
        return method


def wrap_stub(stub: Any) -> Any:
    """``stub`` (made from a channel created by :func:`on_grpc_loop`) with every method
    invoked on the gRPC loop, whatever loop awaits it."""
    return _Stub(grpc_loop(), stub)
