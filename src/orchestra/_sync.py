"""``SyncCluster``: the Cluster's methods without ``await``, for scripts, notebooks
without a running loop, and synchronous test suites.

The event loop runs in a daemon thread owned by the SyncCluster; each call is submitted
to it and waited for. Async iterators (``watch``, ``stream_logs``) become plain
iterators. ``close()`` (or leaving the ``with`` block) stops the cluster and the thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from orchestra._cluster import Cluster
from orchestra._errors import hide_from_tracebacks
from orchestra._loopthread import LoopThread

__tracebackhide__ = hide_from_tracebacks  # see orchestra._errors

T = TypeVar("T")

_ASYNC = {"apply", "create", "get", "list", "update", "patch", "delete", "edit", "wait_for",
          "scale", "rollout_history", "rollout_undo", "logs", "exec", "add_node", "cordon",
          "uncordon", "drain", "fail_node", "evict"}
_PLAIN = {"endpoint", "describe", "events", "store", "name", "clock", "runtime", "network",
          "nodes", "traffic_stats", "access_log"}
_ITER = {"watch", "stream_logs"}


class SyncCluster:
    """A :class:`Cluster` driven from synchronous code (same arguments)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._thread = LoopThread("orchestra-sync")
        self._loop = self._thread.loop
        try:
            self._cluster: Cluster = self._call(self._make(args, kwargs))
        except BaseException:
            self._thread.close()  # a refused argument must not leave the thread running
            raise
        self._started = False

    @staticmethod
    async def _make(args: Any, kwargs: Any) -> Cluster:
        return Cluster(*args, **kwargs)

    def _call(self, coro: Any, timeout: float | None = None) -> Any:
        return self._thread.run(coro, timeout)

    def start(self) -> SyncCluster:
        if not self._started:
            self._call(self._cluster.start())
            self._started = True
        return self

    def stop(self) -> None:
        if self._started:
            self._started = False
            self._call(self._cluster.stop())

    def close(self) -> None:
        """Stop the cluster and its event-loop thread."""
        try:
            self.stop()
        finally:
            self._thread.close()

    def __enter__(self) -> SyncCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def cluster(self) -> Cluster:
        """The underlying async Cluster (use it only from its own loop)."""
        return self._cluster

    def __getattr__(self, name: str) -> Any:
        if name in _ASYNC:
            method = getattr(self._cluster, name)

            def call(*args: Any, **kwargs: Any) -> Any:
                return self._call(method(*args, **kwargs))

            call.__name__ = name
            call.__doc__ = method.__doc__
            return call
        if name in _ITER:
            method = getattr(self._cluster, name)

            def iterate(*args: Any, **kwargs: Any) -> Iterator[Any]:
                return self._iterate(lambda: method(*args, **kwargs))

            return iterate
        if name in _PLAIN:
            attr = getattr(self._cluster, name)
            if callable(attr):
                return self._in_loop(attr)
            return attr
        raise AttributeError(name)

    def _in_loop(self, fn: Callable[..., T]) -> Callable[..., T]:
        async def run(*args: Any, **kwargs: Any) -> T:
            return fn(*args, **kwargs)

        def call(*args: Any, **kwargs: Any) -> T:
            result: T = self._call(run(*args, **kwargs))
            return result

        return call

    def _iterate(self, make: Callable[[], Any]) -> Iterator[Any]:
        it = self._call(self._aiter(make))
        try:
            while True:
                try:
                    yield self._call(it.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            closer = getattr(it, "aclose", None)
            if closer is not None and self._loop.is_running():
                self._call(closer())

    @staticmethod
    async def _aiter(make: Callable[[], Any]) -> Any:
        return make().__aiter__()

    def __repr__(self) -> str:
        return f"<SyncCluster {self._cluster!r}>"
