"""``SyncCluster``: the Cluster's methods without ``await``, for scripts, notebooks
without a running loop, and synchronous test suites.

The event loop runs in a daemon thread owned by the SyncCluster; each call is submitted
to it and waited for. Async iterators (``watch``, ``stream_logs``) become plain
iterators. ``close()`` (or leaving the ``with`` block) stops the cluster and the thread.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from orchestra._cluster import Cluster
from orchestra._errors import hide_from_tracebacks
from orchestra._loopthread import LoopThread

__tracebackhide__ = hide_from_tracebacks  # see orchestra._errors

T = TypeVar("T")

_ITER = {"watch", "stream_logs"}
# Attributes of the Cluster that a SyncCluster passes through as they are
_ATTRS = ("store", "name", "clock", "runtime", "network", "nodes", "options",
          "dns_address", "metrics_registry")


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
        if name in _ATTRS:
            return getattr(self._cluster, name)
        raise AttributeError(f"'SyncCluster' object has no attribute '{name}'")

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *_ATTRS})

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

    def _repr_html_(self) -> str:
        return self._cluster._repr_html_()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        self._cluster._repr_pretty_(p, cycle)


def _sync_methods() -> None:
    """Give SyncCluster each public method of Cluster, with its real signature and
    docstring (so ``help()`` and tab completion show them): coroutines are run to
    completion, async iterators become iterators, plain calls run on the loop."""

    def make(name: str, fn: Any) -> Any:
        if name in _ITER:
            def iterate(self: SyncCluster, *args: Any, **kwargs: Any) -> Iterator[Any]:
                method = getattr(self._cluster, name)
                return self._iterate(lambda: method(*args, **kwargs))
            wrapper: Any = iterate
        elif inspect.iscoroutinefunction(fn):
            def call(self: SyncCluster, *args: Any, **kwargs: Any) -> Any:
                return self._call(getattr(self._cluster, name)(*args, **kwargs))
            wrapper = call
        else:
            def plain(self: SyncCluster, *args: Any, **kwargs: Any) -> Any:
                # (the Cluster runs a plain method on its own loop thread itself)
                return getattr(self._cluster, name)(*args, **kwargs)
            wrapper = plain
        wrapper.__name__ = wrapper.__qualname__ = name
        wrapper.__doc__ = fn.__doc__
        sig = inspect.signature(fn)
        ret = sig.return_annotation
        if inspect.iscoroutinefunction(fn) or name in _ITER:
            ret = inspect.Signature.empty
        wrapper.__signature__ = sig.replace(return_annotation=ret)
        return wrapper

    for name, fn in vars(Cluster).items():
        if name.startswith("_") or name in ("start", "stop") or not inspect.isfunction(fn):
            continue
        if name in vars(SyncCluster):
            continue
        setattr(SyncCluster, name, make(name, fn))


_sync_methods()
