"""The loop engine: informers fed by store watches, controllers on work queues.

A controller's whole contract is ``async def reconcile(key) -> Result | None``: it gets a
``namespace/name`` key, re-reads the current state from the store and drives it toward
the desired state. It never acts on the event that woke it (level-triggered), so a
missed or repeated wake-up is harmless.

Outcomes are types: return ``Result(requeue_after=...)`` to look again later; raise
:class:`TemporaryError` (or any unexpected exception, or ``Conflict``) to retry with the
key's backoff; raise :class:`PermanentError` to stop retrying until the key changes.
One handler, :meth:`Controller._process`, turns each outcome into a queue action.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.abc

from orchestra._clock import Clock
from orchestra._errors import Conflict, Gone, NotFound
from orchestra.loops._queue import ShutDown, WorkQueue

if TYPE_CHECKING:
    from orchestra._store import Store
    from orchestra.objects._base import KubeObject

log = logging.getLogger("orchestra.loops")


@dataclass(frozen=True, slots=True)
class Result:
    """What a reconcile asks of the queue: nothing (done), or another look later."""

    requeue_after: float | None = None
    requeue: bool = False


@dataclass(frozen=True)
class Counts:
    """A counter family a controller keeps of its own, which the cluster's metrics export
    under its name: label values (in the order of ``labels``) -> count."""

    help: str
    labels: tuple[str, ...]
    values: Counter[tuple[str, ...]] = field(default_factory=Counter)


class TemporaryError(Exception):
    """The reconcile could not finish now; retry with the key's exponential backoff."""


class PermanentError(Exception):
    """Retrying cannot help until the object changes; the key is dropped (and logged)."""


class Reconcile(Protocol):
    def __call__(self, key: str) -> Awaitable[Result | None]: ...


def key_of(obj: KubeObject) -> str:
    """``namespace/name`` for namespaced objects, ``name`` for cluster-scoped ones."""
    ns = obj.metadata.namespace
    return f"{ns}/{obj.metadata.name}" if ns else obj.metadata.name or ""


def split_key(key: str) -> tuple[str | None, str]:
    ns, _, name = key.rpartition("/")
    return (ns or None), name


class Controller:
    """Runs one reconcile function on its own work queue, with up to ``workers`` tasks.

    One task always waits for keys. When a key is ready and every task is busy, another
    starts (up to ``workers``); such extra tasks end as soon as the queue is empty. So an
    idle controller costs one task (a simulation runs thousands of kubelets), and a busy
    one works on ``workers`` keys at once.
    """

    def __init__(
        self, name: str, reconcile: Reconcile, clock: Clock, *, workers: int = 1,
        order: Callable[[str], Any] | None = None,
    ) -> None:
        self.name = name
        self._reconcile = reconcile
        self.queue: WorkQueue[str] = WorkQueue(clock, order=order)
        self.queue.on_starved = self._grow
        self._workers = max(1, workers)
        self._running = 0
        self._tg: anyio.abc.TaskGroup | None = None
        self.errors = 0
        # Observes each reconcile's outcome and duration (the cluster's Prometheus
        # metrics): ``reconciled(outcome, seconds)``, outcome as controller-runtime's
        # ``result`` label (success, error, requeue, requeue_after)
        self.metrics: Callable[[str, float], None] | None = None
        # counters of the controller's own (Kubernetes' names), by metric name
        self.counters: dict[str, Counts] = {}

    def enqueue(self, key: str) -> None:
        self.queue.add(key)

    def enqueue_obj(self, obj: KubeObject) -> None:
        self.queue.add(key_of(obj))

    async def run(self) -> None:
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                self._running += 1
                tg.start_soon(self._worker, True)
        finally:
            self._tg = None
            self.queue.shut_down()

    def _grow(self) -> None:
        if self._tg is not None and self._running < self._workers:
            self._running += 1
            self._tg.start_soon(self._worker, False)

    async def _worker(self, resident: bool) -> None:
        try:
            while resident or len(self.queue):
                try:
                    key = await self.queue.get()  # (returns at once when a key waits)
                except ShutDown:
                    return
                if len(self.queue):  # a backlog (keys queued before the run, say)
                    self._grow()
                try:
                    await self._process(key)
                finally:
                    self.queue.done(key)
        finally:
            self._running -= 1

    async def _process(self, key: str) -> None:
        if self.metrics is None:
            await self._outcome(key)
            return
        start = time.perf_counter()
        outcome = "error"
        try:
            outcome = await self._outcome(key)
        finally:
            self.metrics(outcome, time.perf_counter() - start)

    async def _outcome(self, key: str) -> str:
        try:
            result = await self._reconcile(key)
        except (Conflict, NotFound, TemporaryError) as exc:
            # Conflict/NotFound: our read was stale; look again soon.
            log.debug("%s: %s: retrying: %s", self.name, key, exc)
            self.queue.add_rate_limited(key)
            return "error"
        except PermanentError as exc:
            log.warning("%s: %s: giving up: %s", self.name, key, exc)
            self.queue.forget(key)
            return "error"
        except anyio.get_cancelled_exc_class():
            raise
        except Exception:
            self.errors += 1
            log.exception("%s: reconciling %s failed; retrying", self.name, key)
            self.queue.add_rate_limited(key)
            return "error"
        self.queue.forget(key)
        if result is not None:
            if result.requeue_after is not None:
                self.queue.add_after(key, result.requeue_after)
                return "requeue_after"
            if result.requeue:
                self.queue.add_rate_limited(key)
                return "requeue"
        return "success"


Handler = Callable[[str, "KubeObject", "KubeObject | None"], None]
"""``(event_type, obj, old)``: ``old`` is the previously seen version for MODIFIED and
DELETED events, from the informer's cache."""


class Informer:
    """Watches one kind in the store, keeps the last-seen object per key (its cache),
    and calls every handler for each change. On ``Gone`` it re-lists and re-watches;
    handlers then see the current objects again (a resync), which level-triggered
    reconcilers tolerate by design."""

    def __init__(self, store: Store, kind: str) -> None:
        self.store = store
        self.kind = kind
        self.cache: dict[str, KubeObject] = {}
        self._handlers: list[Handler] = []
        self.synced = anyio.Event()

    def add_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    async def run(self) -> None:
        while True:
            try:
                await self._watch_once()
            except Gone:
                log.info("informer %s: history expired; re-listing", self.kind)
                continue

    async def _watch_once(self) -> None:
        store = self.store
        seen: set[str] = set()
        initial = store.list(self.kind)
        rv = store.resource_version
        for obj in initial:
            key = key_of(obj)
            seen.add(key)
            old = self.cache.get(key)
            self.cache[key] = obj
            self._dispatch("MODIFIED" if old is not None else "ADDED", obj, old)
        for key in [k for k in self.cache if k not in seen]:
            gone = self.cache.pop(key)
            self._dispatch("DELETED", gone, gone)
        self.synced.set()
        watch = store.watch(self.kind, resource_version=rv)
        try:
            async for ev in watch:
                obj = ev.object
                key = key_of(obj)
                if ev.type == "DELETED":
                    old = self.cache.pop(key, None)
                else:
                    old = self.cache.get(key)
                    self.cache[key] = obj
                self._dispatch(ev.type, obj, old)
        finally:
            closer = getattr(watch, "aclose", None)
            if closer is not None:
                await closer()

    def _dispatch(self, typ: str, obj: KubeObject, old: KubeObject | None) -> None:
        for handler in self._handlers:
            try:
                handler(typ, obj, old)
            except Exception:
                log.exception("informer %s: handler failed", self.kind)


class Informers:
    """One shared informer per kind, so that every controller watching Pods shares one
    watch and one cache."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._by_kind: dict[str, Informer] = {}

    def __getitem__(self, kind: str) -> Informer:
        inf = self._by_kind.get(kind)
        if inf is None:
            inf = self._by_kind[kind] = Informer(self.store, kind)
        return inf

    def all(self) -> list[Informer]:
        return list(self._by_kind.values())


class Expectations:
    """Creations and deletions a controller has asked for but not yet seen in its
    informer: while any are outstanding for a key the controller must not act on its
    (stale) count again, or it would create twice. Expectations expire after
    ``ttl`` seconds on the clock (Kubernetes: 5 minutes) in case an event was lost."""

    def __init__(self, clock: Clock, ttl: float = 300.0) -> None:
        self._clock = clock
        self._ttl = ttl
        self._pending: dict[str, tuple[int, int, float]] = {}

    def expect(self, key: str, adds: int = 0, dels: int = 0) -> None:
        a, d, _ = self._pending.get(key, (0, 0, 0.0))
        self._pending[key] = (a + adds, d + dels, self._clock.monotonic())

    def observed_add(self, key: str) -> None:
        self._lower(key, 1, 0)

    def observed_del(self, key: str) -> None:
        self._lower(key, 0, 1)

    def _lower(self, key: str, adds: int, dels: int) -> None:
        entry = self._pending.get(key)
        if entry is None:
            return
        a, d, t = entry
        a, d = max(0, a - adds), max(0, d - dels)
        if a == 0 and d == 0:
            del self._pending[key]
        else:
            self._pending[key] = (a, d, t)

    def satisfied(self, key: str) -> bool:
        entry = self._pending.get(key)
        if entry is None:
            return True
        if self._clock.monotonic() - entry[2] > self._ttl:
            del self._pending[key]
            return True
        return False

    def forget(self, key: str) -> None:
        self._pending.pop(key, None)


async def slow_start_batch(
    count: int, fn: Callable[[], Awaitable[Any]], *, initial: int = 1
) -> int:
    """Call ``fn`` ``count`` times in batches of 1, 2, 4, ... run concurrently, stopping
    at the first batch with a failure (Kubernetes' slowStartBatch): a controller whose
    creates fail (quota, admission) makes one doomed call, not ``count``. Returns the
    number of successes; the first error of the failing batch is re-raised."""
    done = 0
    batch = min(count, initial)
    while batch > 0:
        errors: list[BaseException] = []

        async def one() -> None:
            try:
                await fn()
            except Exception as exc:
                errors.append(exc)  # noqa: B023 - awaited within this iteration

        async with anyio.create_task_group() as tg:
            for _ in range(batch):
                tg.start_soon(one)
        done += batch - len(errors)
        if errors:
            raise errors[0]
        remaining = count - done
        batch = min(remaining, 2 * batch)
    return done
